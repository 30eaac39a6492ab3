import ArgumentParser
import Foundation
import PushlogCore

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Entry counts, head, pushers, pending pushers, lag, map use.")
    @OptionGroup var dataDir: DataDirOption
    @Flag(help: "One JSON object.") var json = false

    func run() throws {
        try tool {
            let store = try dataDir.openExistingStore()
            let s = try store.read { view in try view.stats() }
            if json {
                Output.json(.object([
                    "head": .int(Int64(s.head)), "first_pos": .int(Int64(s.firstPos)), "entries": .int(Int64(s.entries)),
                    "pushers": .int(Int64(s.pushers)),
                    "pushers_by_kind": .object(Dictionary(uniqueKeysWithValues: PusherKind.allCases.map { ($0.rawValue, JSON.int(Int64(s.pushersByKind[$0] ?? 0))) })),
                    "pending_pushers": .int(Int64(s.pendingPushers)), "users": .int(Int64(s.users)),
                    "dead_letters": .int(Int64(s.deadLetters)),
                    "lag_p50": .int(Int64(s.lagPercentiles[0])), "lag_p90": .int(Int64(s.lagPercentiles[1])),
                    "lag_p99": .int(Int64(s.lagPercentiles[2])), "lag_max": .int(Int64(s.lagPercentiles[3])),
                    "map_used_bytes": .int(Int64(s.mapUsedBytes)), "map_size_bytes": .int(Int64(s.mapSizeBytes)),
                ]))
            } else {
                Output.line("head             \(s.head)")
                Output.line("entries          \(s.entries) (log from pos \(s.firstPos))")
                Output.line("pushers          \(s.pushers) (http \(s.pushersByKind[.http] ?? 0), email \(s.pushersByKind[.email] ?? 0))")
                Output.line("pending pushers  \(s.pendingPushers)")
                Output.line("lag (entries)    p50 \(s.lagPercentiles[0]), p90 \(s.lagPercentiles[1]), p99 \(s.lagPercentiles[2]), max \(s.lagPercentiles[3])")
                Output.line("users            \(s.users)")
                Output.line("dead letters     \(s.deadLetters)")
                Output.line("map              \(s.mapUsedBytes) of \(s.mapSizeBytes) bytes used")
            }
            Output.flush()
        }
    }
}
