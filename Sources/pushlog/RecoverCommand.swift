import ArgumentParser
import Foundation
import PushlogCore

struct Recover: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The after-crash check: clear stale readers, verify the log and the projections, repair, and say who will redeliver.",
        discussion: "Exit 0 when the store is healthy or was repaired; 70 when the log itself is damaged. Exit 69 beside a server, except with --dry-run, which reads and may run beside one. Finishes a repair that a crash interrupted (serve refuses to start until then).")
    @OptionGroup var dataDir: DataDirOption
    @Flag(help: "Check and report, change nothing.") var dryRun = false
    @Flag(help: "JSON Lines: the report, then one row per pusher that will redeliver.") var json = false

    func run() throws {
        try tool {
            // The repair replaces projections over several commits: no append may land in between.
            // A dry run changes nothing the server reads, so it runs beside one (and compares
            // against one snapshot, catching up with appends; see Store.rebuild).
            if dryRun && !DataDir.hasStore(dataDir.dataDir) { throw DataDir.NoStore(path: dataDir.dataDir) }
            let locks: [DataDirLock] = dryRun ? [] : try DataDirLock.forRewrite(dataDir: dataDir.dataDir)
            defer { withExtendedLifetime(locks) {} }
            let store = try dryRun ? dataDir.openExistingStore() : dataDir.openStore()
            if !json { Output.line("stale reader slots cleared: \(store.staleReadersCleared)") }
            let interrupted = try store.rebuildInterrupted()
            if interrupted && !json {
                Output.line(dryRun ? "an earlier repair was interrupted: run recover without --dry-run to finish it"
                                   : "an earlier repair was interrupted: the projections will be rebuilt")
            }

            let progress = ProgressBar("check log", json: json)
            let check = try store.checkLog { progress.update($0, of: $1) }
            progress.finish()
            if !json {
                Output.line("log: pos \(check.first)...\(check.head), \(check.entries) entries, \(check.isHealthy ? "contiguous and readable" : "DAMAGED")")
                for p in check.problems { Output.line("  \(p)") }
            }

            let rebuildProgress = ProgressBar("verify projections", json: json)
            let report = try store.rebuild(repair: !dryRun, progress: { rebuildProgress.update($0, of: $1) },
                                           afterFirstRepairCommit: rebuildTestPause())
            rebuildProgress.finish()
            if json {
                Output.json(.object([
                    "stale_readers_cleared": .int(Int64(store.staleReadersCleared)),
                    "log_first": .int(Int64(check.first)), "log_head": .int(Int64(check.head)),
                    "log_entries": .int(Int64(check.entries)), "log_healthy": .bool(check.isHealthy),
                    "log_problems": .array(check.problems.map(JSON.string)),
                    "projections_clean": .bool(report.isClean), "repaired": .bool(report.repaired),
                    "interrupted_repair": .bool(interrupted),
                ]))
            } else {
                printReport(report, json: false)
            }

            var redeliver = 0
            try store.read { view in try view.forEachPusherState { s in
                guard s.state.enabled, s.pending > 0 else { return true }
                redeliver += 1
                if json { Output.json(s.json) } else {
                    Output.line("will deliver: \(s.config.id.userID) \(s.config.id.appID) \(s.config.id.pushkey): \(s.pending) pending from pos \(s.state.cursor + 1)")
                }
                return true
            } }
            if !json {
                Output.line("\(redeliver) pusher\(redeliver == 1 ? "" : "s") will deliver on the next start")
                if dryRun && !report.isClean { Output.line("dry run: nothing was repaired") }
            }
            Output.flush()
            if !check.isHealthy { fail(Exit.internalError, "the log is damaged; see above") }
        }
    }
}
