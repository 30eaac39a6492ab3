import ArgumentParser
import Foundation
import PushlogCore

struct Compact: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drop log entries every cursor has passed and older than the retention; rewrite the file compactly.",
        discussion: "Pusher sets and receipts still in force are kept (in the checkpoint) so a rebuild derives the same state. Exit 69 beside a server.")
    @OptionGroup var dataDir: DataDirOption
    @Option(help: "Keep entries appended within this long (250ms, 10s, 10m, 24h, 7d).") var retain: String = "24h"
    @Flag(help: "Print the result as one JSON object: {dropped, first_pos, checkpointed, bytes_before, bytes_after}.")
    var json = false

    func validate() throws {
        if DurationText.milliseconds(retain) == nil { throw ValidationError("--retain: '\(retain)' is not a duration such as 24h") }
    }

    func run() throws {
        try tool {
            // The data file is replaced: no append may be writing to the old one.
            let locks = try DataDirLock.forRewrite(dataDir: dataDir.dataDir)
            defer { withExtendedLifetime(locks) {} }
            var report: CompactReport
            do {
                let store = try dataDir.openStore()
                // Compaction reads the heads projection: not while it may be half-replaced.
                if try store.rebuildInterrupted() {
                    fail(Exit.busy, "a repair of the projections in \(dataDir.dataDir) was interrupted: run `pushlog recover` first")
                }
                let dropping = ProgressBar("compact: drop entries", json: json)
                report = try store.dropPassedPrefix(olderThan: SystemClock.nowMS() - DurationText.milliseconds(retain)!) {
                    dropping.update($0, of: $1)
                }
                dropping.finish()
                store.close()
            }
            // LMDB copies the file in one call: the bar follows the copy's size on disk, against
            // the size of the file it copies (an upper bound).
            let copying = ProgressBar("compact: rewrite file", json: json)
            let fileSize = (try? FileManager.default.attributesOfItem(atPath: dataDir.dataDir + "/data.mdb")[.size] as? Int) ?? 0
            let sizes = try copying.watching(file: dataDir.dataDir + "/compact.tmp", growingTo: UInt64(fileSize)) {
                try Store.rewriteCompactly(dataDir: dataDir.dataDir)
            }
            report.bytesBefore = sizes.before
            report.bytesAfter = sizes.after
            if json {
                Output.json(.object([
                    "dropped": .int(Int64(report.dropped)), "first_pos": .int(Int64(report.newFirst)),
                    "checkpointed": .int(Int64(report.checkpointed)),
                    "bytes_before": .int(Int64(report.bytesBefore)), "bytes_after": .int(Int64(report.bytesAfter)),
                ]))
            } else {
                Output.line("dropped \(report.dropped) entries; the log now starts at pos \(report.newFirst); \(report.checkpointed) entries kept in force in the checkpoint")
                Output.line("data file: \(report.bytesBefore) -> \(report.bytesAfter) bytes")
            }
            Output.flush()
        }
    }
}
