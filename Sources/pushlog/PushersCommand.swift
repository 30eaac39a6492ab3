import ArgumentParser
import Curl
import Foundation
import PushlogConfig
import PushlogCore
import PushlogRuntime

struct Pushers: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, create, replace and remove pushers.",
        subcommands: [List.self, Set.self, Remove.self]
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One row per pusher with its config and delivery state.")
        @OptionGroup var dataDir: DataDirOption
        @Option(help: "Only this user's pushers.") var user: String?
        @Flag(help: "JSON Lines, one PusherState per line.") var json = false

        func run() throws {
            try tool {
                try checkOption(user, "--user") { try EntryDecoder.checkID($0, field: $1) }
                let store = try dataDir.openExistingStore()
                var rows: [[String]] = []
                try store.read { view in try view.forEachPusherState(user: user) { s in
                    if json { Output.json(s.json) } else {
                        rows.append([s.config.id.userID, s.config.kind.rawValue, s.config.id.appID, s.config.id.pushkey,
                                     s.config.enabled ? "yes" : "no", String(s.state.cursor), String(s.head),
                                     String(s.pending), formatTime(s.state.failingSince), formatTime(s.state.lastSuccess)])
                    }
                    return true
                } }
                if !json {
                    Output.table(["user", "kind", "app_id", "pushkey", "enabled", "cursor", "head", "pending",
                                  "failing_since", "last_success"], rows)
                }
                Output.flush()
            }
        }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or replace pushers, one JSON object per line (the PUT /v1/pushers body).",
            discussion: "All lines are validated first; `\"kind\": null` removes that pusher.")
        @OptionGroup var dataDir: DataDirOption
        @Argument(help: ArgumentHelp("JSON Lines file, or - for standard input.", valueName: "file"))
        var file: String = "-"
        @Option(help: ArgumentHelp("Pushers per commit (default 10000).", valueName: "count"), transform: Number.count)
        var batchSize: Int = 10_000
        @Flag(help: "Print the result as one JSON object: {\"set\", \"first_pos\", \"last_pos\"}.") var json = false
        @Option(help: ArgumentHelp(
            "The serve configuration whose push.ip_range_blacklist and push.ip_range_whitelist judge gateway addresses written literally in data.url (env PUSHLOG_PUSH_IP_RANGE_BLACKLIST and PUSHLOG_PUSH_IP_RANGE_WHITELIST too; default: Synapse's blocklist).",
            valueName: "file"))
        var config: String?

        func run() throws {
            try tool {
                let policy = try addressPolicy()
                let input = try readInput(file)
                let now = SystemClock.nowMS()
                let entries = try decodeLines(input, file: file, progress: ProgressBar("validate pushers", json: json)) { line in
                    let entry = try EntryDecoder.pusher(line, now: now)
                    try policy.checkGatewayAddress(entry)
                    return entry
                }
                guard !entries.isEmpty else { return report(set: 0, first: nil, last: nil) }
                let lock = try DataDirLock.appender(dataDir: dataDir.dataDir)
                defer { withExtendedLifetime(lock) {} }
                let store = try dataDir.openStore()
                let progress = ProgressBar("pushers set", json: json)
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
                report(set: entries.count, first: first, last: last)
            }
        }

        /// The result on stdout: a line of text, or one JSON object with --json.
        func report(set count: Int, first: UInt64?, last: UInt64?) {
            if json {
                Output.json(.object(["set": .int(Int64(count)), "first_pos": first.map { .int(Int64($0)) } ?? .null,
                                     "last_pos": last.map { .int(Int64($0)) } ?? .null]))
            } else if let first, let last {
                Output.line("set \(count) pusher\(count == 1 ? "" : "s") at pos \(first)...\(last)")
            } else {
                Output.line("set nothing (no pushers in the input)")
            }
            Output.flush()
        }

        /// The `push.ip_range_*` keys from `--config` and the environment; the other keys of
        /// the file are checked too, but only serve uses them.
        func addressPolicy() throws -> AddressPolicy {
            var text: String?
            if let config {
                do {
                    text = String(decoding: try FileText.read(config), as: UTF8.self)
                } catch let e as FileText.Failure {
                    throw UsageError(message: "--config: \(e)")
                }
            }
            let keys: Swift.Set = ["PUSHLOG_PUSH_IP_RANGE_BLACKLIST", "PUSHLOG_PUSH_IP_RANGE_WHITELIST"]
            let environment = ProcessInfo.processInfo.environment.filter { keys.contains($0.key) }
            do {
                return try Config.load(yaml: text, file: config ?? "config", environment: environment).push.addressPolicy
            } catch let problem as Config.Problem {
                throw UsageError(message: "\(problem)")
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove one pusher.")
        @OptionGroup var dataDir: DataDirOption
        @Option(help: "The owner.") var user: String
        @Option(name: .customLong("app-id"), help: "The app id.") var appID: String
        @Option(help: "The pushkey.") var pushkey: String
        @Flag(help: "Print the result as one JSON object: {\"removed\": {user_id, app_id, pushkey}, \"pos\"}.") var json = false

        func run() throws {
            try tool {
                try checkOption(user, "--user") { try EntryDecoder.checkID($0, field: $1) }
                try checkOption(appID, "--app-id", EntryDecoder.checkAppID)
                try checkOption(pushkey, "--pushkey", EntryDecoder.checkPushkey)
                // The appenders' lock before the store opens, as `append` takes it: `compact`
                // replaces the data file while it holds that lock, and a store opened before
                // would write to the file it replaced (exit 0, and the removal lost).
                let lock = try DataDirLock.appender(dataDir: dataDir.dataDir)
                defer { withExtendedLifetime(lock) {} }
                let store = try dataDir.openStore()
                let id = PusherID(userID: user, appID: appID, pushkey: pushkey)
                guard try store.read({ view in try view.pusherState(id) }) != nil else {
                    throw InputError(field: "pushkey", message: "no pusher \(appID)/\(pushkey) for \(user)", kind: .invalid)
                }
                let r = try store.append([.pusherRemoved(id)])
                if json {
                    Output.json(.object(["removed": .object(["user_id": .string(user), "app_id": .string(appID),
                                                             "pushkey": .string(pushkey)]),
                                         "pos": .int(Int64(r.lastPos))]))
                } else {
                    Output.line("removed pusher \(appID)/\(pushkey) of \(user) at pos \(r.lastPos)")
                }
                Output.flush()
            }
        }
    }
}
