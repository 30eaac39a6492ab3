import ArgumentParser
import Foundation
import PushlogCore

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print log entries in order, or re-derive every projection with --rebuild.")
    @OptionGroup var dataDir: DataDirOption
    @Option(help: ArgumentHelp("First pos (default: the log's first).", valueName: "pos"), transform: Number.position)
    var from: UInt64?
    @Option(help: ArgumentHelp("Last pos (default: the head).", valueName: "pos"), transform: Number.position)
    var to: UInt64?
    @Option(help: "Only entries of this user.") var user: String?
    @Option(help: "notification, receipt or pusher (both pusher types).") var type: EntryType?
    @Flag(help: "JSON Lines, one entry per line (with --rebuild: the report as one JSON object).") var json = false
    @Flag(help: "Re-derive the projections from the log and report any difference (exit 69 beside a server).")
    var rebuild = false

    enum EntryType: String, ExpressibleByArgument, CaseIterable {
        case notification, receipt, pusher
    }

    func run() throws {
        try tool {
            if rebuild { return try runRebuild() }
            try checkOption(user, "--user") { try EntryDecoder.checkID($0, field: $1) }
            let store = try dataDir.openExistingStore()
            try store.read { view in try view.forEachEntry(from: from ?? 1, to: to ?? .max) { e in
                if let user, e.entry.userID != user { return true }
                if let type {
                    switch (type, e.entry) {
                    case (.notification, .notification), (.receipt, .receipt), (.pusher, .pusherSet), (.pusher, .pusherRemoved): break
                    default: return true
                    }
                }
                if json { Output.json(e.json) } else { Output.line(Self.summary(e)) }
                return true
            } }
            Output.flush()
        }
    }

    static func summary(_ e: LoggedEntry) -> String {
        let head = "\(e.pos)  \(formatTime(e.ts))  \(e.entry.typeName)"
        switch e.entry {
        case .notification(let n):
            return "\(head)  \(n.userID) \(n.roomID) \(n.eventID) so=\(n.streamOrdering) thread=\(n.threadID)\(n.notifies ? "" : " (no notify)")"
        case .receipt(let r):
            return "\(head)  \(r.userID) \(r.roomID) \(r.eventID) so=\(r.streamOrdering) \(r.receiptType.rawValue) thread=\(r.threadID ?? "*")"
        case .pusherSet(let c):
            return "\(head)  \(c.id.userID) \(c.kind.rawValue) \(c.id.appID) \(c.id.pushkey)\(c.enabled ? "" : " (disabled)")"
        case .pusherRemoved(let id):
            return "\(head)  \(id.userID) \(id.appID) \(id.pushkey)"
        }
    }

    func runRebuild() throws {
        // The repair replaces projections over several commits: no append may land in between.
        let locks = try DataDirLock.forRewrite(dataDir: dataDir.dataDir)
        defer { withExtendedLifetime(locks) {} }
        let store = try dataDir.openStore()
        let progress = ProgressBar("rebuild", json: json)
        let report = try store.rebuild(repair: true, progress: { progress.update($0, of: $1) },
                                       afterFirstRepairCommit: rebuildTestPause())
        progress.finish()
        printReport(report, json: json)
    }
}

func printReport(_ report: RebuildReport, json: Bool) {
    if json {
        var o: [String: JSON] = ["entries": .int(Int64(report.entries)), "clean": .bool(report.isClean),
                                 "repaired": .bool(report.repaired),
                                 "orphan_consumers": .int(Int64(report.orphanConsumers)),
                                 "missing_consumers": .int(Int64(report.missingConsumers)),
                                 "consumer_flags_fixed": .int(Int64(report.consumerFlagsFixed))]
        var diffs: [String: JSON] = [:]
        for (name, d) in report.differences {
            diffs[name] = .object(["missing": .int(Int64(d.missing)), "extra": .int(Int64(d.extra)), "changed": .int(Int64(d.changed))])
        }
        o["differences"] = .object(diffs)
        Output.json(.object(o))
    } else {
        Output.line("replayed \(report.entries) entries")
        for name in report.differences.keys.sorted() {
            let d = report.differences[name]!
            Output.line(d.isEmpty ? "  \(name): same" : "  \(name): \(d.missing) missing, \(d.extra) extra, \(d.changed) changed")
        }
        if report.orphanConsumers > 0 { Output.line("  consumer state without a pusher: \(report.orphanConsumers)") }
        if report.missingConsumers > 0 { Output.line("  pushers without consumer state: \(report.missingConsumers)") }
        if report.consumerFlagsFixed > 0 { Output.line("  consumer flags out of step: \(report.consumerFlagsFixed)") }
        Output.line(report.isClean ? "the stored projections match the log" : report.repaired ? "repaired" : "differences found (not repaired)")
    }
    Output.flush()
}
