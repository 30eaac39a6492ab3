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
            try tool { try options.run { try EntryDecoder.notification($0, now: $1) } }
        }
    }

    struct Receipts: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Append read receipts, one JSON object per line.")
        @OptionGroup var options: AppendOptions
        func run() throws {
            try tool { try options.run { try EntryDecoder.receipt($0, now: $1) } }
        }
    }
}

struct AppendOptions: ParsableArguments {
    @OptionGroup var dataDir: DataDirOption

    @Argument(help: ArgumentHelp("JSON Lines file, or - for standard input.", valueName: "file"))
    var file: String = "-"

    @Option(help: "Entries per commit.")
    var batchSize: Int = 10_000

    func validate() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
    }

    func run<T>(_ decode: (JSON, Int64) throws -> T) throws where T: Sendable {
        let input = try readInput(file)
        let now = SystemClock.nowMS()
        let values = try decodeLines(input, file: file) { try decode($0, now) }
        let entries: [LogEntry] = values.map {
            switch $0 {
            case let n as PushNotification: .notification(n)
            case let r as Receipt: .receipt(r)
            default: fatalError("unexpected entry type")
            }
        }
        guard !entries.isEmpty else {
            note("appended nothing (no entries in the input)")
            return
        }
        let lock = try DataDirLock.appender(dataDir: dataDir.dataDir)
        defer { withExtendedLifetime(lock) {} }
        let store = try dataDir.openStore()
        let progress = Progress("append")
        var first: UInt64 = 0, last: UInt64 = 0
        var done = 0
        while done < entries.count {
            let batch = Array(entries[done..<min(done + batchSize, entries.count)])
            let r = try store.append(batch, now: SystemClock.nowMS())
            if first == 0 { first = r.firstPos }
            last = r.lastPos
            done += batch.count
            progress.update(UInt64(done), UInt64(entries.count))
        }
        progress.finish()
        Output.line("{\"first_pos\":\(first),\"last_pos\":\(last)}")
        Output.flush()
    }
}
