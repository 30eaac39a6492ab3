import ArgumentParser
import Foundation
import PushlogCore

struct Compact: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drop log entries every cursor has passed and older than the retention; rewrite the file compactly.",
        discussion: "Pusher sets and receipts still in force are kept (in the checkpoint) so a rebuild derives the same state. Exit 69 beside a server.")
    @OptionGroup var dataDir: DataDirOption
    @Option(help: "Keep entries appended within this long (250ms, 10s, 10m, 24h, 7d).") var retain: String = "24h"

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
                report = try store.dropPassedPrefix(olderThan: SystemClock.nowMS() - DurationText.milliseconds(retain)!)
                store.close()
            }
            let sizes = try Store.rewriteCompactly(dataDir: dataDir.dataDir)
            report.bytesBefore = sizes.before
            report.bytesAfter = sizes.after
            Output.line("dropped \(report.dropped) entries; the log now starts at pos \(report.newFirst); \(report.checkpointed) entries kept in force in the checkpoint")
            Output.line("data file: \(report.bytesBefore) -> \(report.bytesAfter) bytes")
            Output.flush()
        }
    }
}
