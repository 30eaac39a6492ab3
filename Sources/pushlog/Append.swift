import ArgumentParser
import Foundation
import PushlogCore

struct Append: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Append notifications or receipts (JSON Lines) to the log.",
        discussion: """
            Every line is validated before anything is written; one bad line stops the command \
            with exit 65, naming the line and field, and nothing is appended. Valid input is \
            committed in batches (--batch-size entries per durable commit); a crash mid-way leaves \
            a prefix of whole batches. Works beside a running server.
            """,
        subcommands: [Notifications.self, Receipts.self]
    )

    struct Notifications: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Append notifications, one JSON object per line.")
        @OptionGroup var options: AppendOptions
        func run() throws {
            try tool { try options.run("notifications") { try EntryDecoder.notification($0, now: $1) } }
        }
    }

    struct Receipts: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Append read receipts, one JSON object per line.")
        @OptionGroup var options: AppendOptions
        func run() throws {
            try tool { try options.run("receipts") { try EntryDecoder.receipt($0, now: $1) } }
        }
    }
}

struct AppendOptions: ParsableArguments {
    @OptionGroup var dataDir: DataDirOption

    @Argument(help: ArgumentHelp("JSON Lines file, or - for standard input.", valueName: "file"))
    var file: String = "-"

    @Option(help: ArgumentHelp("Entries per commit (default 10000).", valueName: "count"),
            transform: Number.count)
    var batchSize: Int = 10_000

    @Flag(help: "Print the result as one JSON object: {\"appended\", \"first_pos\", \"last_pos\"}.")
    var json = false

    /// `what`: "notifications" or "receipts", for the output.
    func run<T>(_ what: String, _ decode: (JSON, Int64) throws -> T) throws where T: Sendable {
        let input = try readInput(file)
        let now = SystemClock.nowMS()
        let values = try decodeLines(input, file: file, progress: ProgressBar("validate \(what)", json: json)) {
            try decode($0, now)
        }
        let entries: [LogEntry] = values.map {
            switch $0 {
            case let n as PushNotification: .notification(n)
            case let r as Receipt: .receipt(r)
            default: fatalError("unexpected entry type")
            }
        }
        guard !entries.isEmpty else {
            report(appended: 0, first: nil, last: nil, what: what)
            return
        }
        let lock = try DataDirLock.appender(dataDir: dataDir.dataDir)
        defer { withExtendedLifetime(lock) {} }
        let store = try dataDir.openStore()
        let progress = ProgressBar("append \(what)", json: json)
        var first: UInt64 = 0, last: UInt64 = 0
        var done = 0
        while done < entries.count {
            let batch = Array(entries[done..<min(done + batchSize, entries.count)])
            let r = try store.append(batch, now: SystemClock.nowMS())
            if first == 0 { first = r.firstPos }
            last = r.lastPos
            done += batch.count
            progress.update(UInt64(done), of: UInt64(entries.count))
        }
        progress.finish()
        report(appended: entries.count, first: first, last: last, what: what)
    }

    /// The result on stdout: a line of text, or one JSON object with --json.
    func report(appended: Int, first: UInt64?, last: UInt64?, what: String) {
        if json {
            Output.json(.object(["appended": .int(Int64(appended)), "first_pos": first.map { .int(Int64($0)) } ?? .null,
                                 "last_pos": last.map { .int(Int64($0)) } ?? .null]))
        } else if let first, let last {
            Output.line("appended \(appended) \(appended == 1 ? String(what.dropLast()) : what) at pos \(first)...\(last)")
        } else {
            Output.line("appended nothing (no \(what) in the input)")
        }
        Output.flush()
    }
}
