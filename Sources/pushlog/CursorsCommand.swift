import ArgumentParser
import Foundation
import PushlogCore

struct Cursors: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The cursor table: where each pusher stands.",
        subcommands: [Show.self, Rewind.self],
        defaultSubcommand: Show.self
    )

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "List cursors (the default).")
        @OptionGroup var dataDir: DataDirOption
        @Option(help: "Only this user's pushers.") var user: String?
        @Flag(help: "Only pending pushers, most pending first.") var lagging = false
        @Flag(help: "JSON Lines, one PusherState per line.") var json = false

        func run() throws {
            try tool {
                try checkOption(user, "--user") { try EntryDecoder.checkID($0, field: $1) }
                let store = try dataDir.openExistingStore()
                var states: [PusherState] = []
                try store.read { view in try view.forEachPusherState(user: user) { s in
                    if lagging {
                        if s.pending > 0 && s.state.enabled { states.append(s) }
                    } else if json {
                        Output.json(s.json)
                    } else {
                        states.append(s)
                    }
                    return true
                } }
                if lagging { states.sort { $0.pending > $1.pending } }
                if json {
                    for s in states where lagging { Output.json(s.json) }
                } else {
                    Output.table(["user", "app_id", "pushkey", "cursor", "head", "pending", "failing_since",
                                  "last_success", "next_attempt"],
                                 states.map { s in
                                     [s.config.id.userID, s.config.id.appID, s.config.id.pushkey, String(s.state.cursor),
                                      String(s.head), String(s.pending), formatTime(s.state.failingSince),
                                      formatTime(s.state.lastSuccess), formatTime(s.state.nextAttempt)]
                                 })
                }
                Output.flush()
            }
        }
    }

    struct Rewind: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move matching cursors back so those notifications are delivered again.",
            discussion: "A cursor is never moved forward. Refuses (exit 69) while a server holds the data dir: use POST /v1/pushers/rewind then.")
        @OptionGroup var dataDir: DataDirOption
        @Option(help: ArgumentHelp("Redeliver from this pos on (the cursor becomes POS-1).", valueName: "pos"),
                transform: Number.position)
        var to: UInt64?
        @Option(help: "Redeliver what was appended at or after TIME (RFC 3339, or a duration ago: 30m, 2h).") var since: String?
        @Option(help: "Only this user's pushers.") var user: String?
        @Option(name: .customLong("app-id"), help: "Only pushers with this app id.") var appID: String?
        @Option(help: "Only pushers with this pushkey.") var pushkey: String?
        @Flag(help: "Say what would move, move nothing.") var dryRun = false
        @Flag(help: "JSON Lines, one row per pusher moved: {user_id, app_id, pushkey, cursor, dry_run}.") var json = false

        func validate() throws {
            if (to == nil) == (since == nil) { throw ValidationError("give exactly one of --to and --since") }
            if let since, DurationText.instant(since) == nil {
                throw ValidationError("--since: '\(since)' is neither RFC 3339 nor a duration such as 30m")
            }
        }

        func run() throws {
            try tool {
                try checkOption(user, "--user") { try EntryDecoder.checkID($0, field: $1) }
                try checkOption(appID, "--app-id", EntryDecoder.checkAppID)
                try checkOption(pushkey, "--pushkey", EntryDecoder.checkPushkey)
                let lock = try DataDirLock.exclusive(dataDir: dataDir.dataDir)
                defer { withExtendedLifetime(lock) {} }
                let store = try dataDir.openStore()
                let pos = try to ?? store.read { view in try view.position(atOrAfter: DurationText.instant(since!)!) }
                let moved = try store.rewind(toPos: pos, filter: .init(userID: user, appID: appID, pushkey: pushkey),
                                             dryRun: dryRun)
                for id in moved {
                    if json {
                        Output.json(.object(["user_id": .string(id.userID), "app_id": .string(id.appID), "pushkey": .string(id.pushkey),
                                             "cursor": .int(Int64(pos - 1)), "dry_run": .bool(dryRun)]))
                    } else {
                        Output.line("\(dryRun ? "would rewind" : "rewound") \(id.userID) \(id.appID) \(id.pushkey) to \(pos - 1)")
                    }
                }
                if !json {
                    Output.line("\(dryRun ? "would rewind" : "rewound") \(moved.count) pusher\(moved.count == 1 ? "" : "s") to redeliver from pos \(pos)")
                }
                Output.flush()
            }
        }
    }
}
