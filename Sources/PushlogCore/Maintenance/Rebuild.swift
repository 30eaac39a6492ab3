import LMDB

/// What a rebuild or a check found.
public struct RebuildReport: Sendable {
    /// Entries replayed (checkpoint and log).
    public var entries: UInt64 = 0
    /// Per projection: keys missing from what was stored, keys stored but not derived, values that differ.
    public var differences: [String: ProjectionDiff] = [:]
    /// Consumer states without a pusher (removed) and pushers without one (created at the head).
    public var orphanConsumers: Int = 0
    public var missingConsumers: Int = 0
    public var consumerFlagsFixed: Int = 0
    /// Whether the stored projections were replaced by the derived ones.
    public var repaired = false

    public var isClean: Bool {
        differences.values.allSatisfy(\.isEmpty) && orphanConsumers == 0 && missingConsumers == 0 && consumerFlagsFixed == 0
    }
}

public struct ProjectionDiff: Sendable, Equatable {
    public var missing = 0
    public var extra = 0
    public var changed = 0
    public var isEmpty: Bool { missing == 0 && extra == 0 && changed == 0 }
    public var total: Int { missing + extra + changed }
}

/// What `recover` found in the log itself.
public struct LogCheck: Sendable {
    public var first: UInt64
    public var head: UInt64
    public var entries: UInt64
    /// Positions where the log is not contiguous or an entry does not decode.
    public var problems: [String]
    public var isHealthy: Bool { problems.isEmpty }
}

extension Store {
    static let projectionNames = ["notifs", "heads", "receipts", "unread", "pushers", "pusher_keys"]

    func shadowProjections() throws -> Projections {
        let dbs = try env.databases(Self.projectionNames.map { "shadow_" + $0 })
        return Projections(notifs: dbs[0], heads: dbs[1], receipts: dbs[2], unread: dbs[3], pushers: dbs[4], pusherKeys: dbs[5])
    }

    /// Checks that the log runs from its first pos to the head with no gap and that every entry
    /// decodes.
    public func checkLog(progress: ((UInt64, UInt64) -> Void)? = nil) throws -> LogCheck {
        try env.read { txn in
            let head = try metaUInt(txn, .head) ?? 0
            let first = try metaUInt(txn, .first) ?? 1
            var problems: [String] = []
            var expected = first
            var count: UInt64 = 0
            try txn.forEach(log) { k, v in
                let pos = BigEndianRead.uint64(k, at: 0)
                if pos != expected {
                    problems.append("gap: expected pos \(expected), found \(pos)")
                    if problems.count > 20 { return false }
                }
                do { _ = try EntryCodec.decode(v, pos: pos) } catch {
                    problems.append("\(error)")
                }
                expected = pos + 1
                count += 1
                if count % 100_000 == 0 { progress?(pos, head) }
                return problems.count <= 20
            }
            if head >= first && expected != head + 1 {
                problems.append("log ends at pos \(expected - 1) but the head says \(head)")
            }
            return LogCheck(first: first, head: head, entries: count, problems: problems)
        }
    }

    /// Re-derives every projection from the checkpoint and the log into shadow databases,
    /// compares them with what is stored, and (when `repair`) replaces what differs. Consumer
    /// state is not derived; it is reconciled with the derived pusher registry. Works in chunks,
    /// so the log can be any size; `progress(done, total)` is called now and then.
    ///
    /// A repair commits in several transactions. `meta.rebuilding` is committed before the first
    /// change to a live projection and cleared in the transaction of the last one, so a crash in
    /// between leaves a store that ``rebuildInterrupted()`` reports (and `serve` refuses); the
    /// next repair finishes the job even when what is stored already matches.
    /// `afterFirstRepairCommit` runs once, right after the first such change commits (a test
    /// hook: the moment a crash leaves the projections half-replaced).
    ///
    /// Without `repair` it writes only the shadow databases, so it may run beside a server: the
    /// comparison is made in one read transaction whose head is the one derived up to, catching
    /// up with appends made meanwhile.
    public func rebuild(repair: Bool, chunk: Int = 20_000,
                        progress: ((UInt64, UInt64) -> Void)? = nil,
                        afterFirstRepairCommit: (() -> Void)? = nil) throws -> RebuildReport {
        // The shadow databases are shared scratch space: one rebuild or check at a time.
        let shadowLock = try DataDirLock.shadows(dataDir: dataDir)
        defer { withExtendedLifetime(shadowLock) {} }
        let shadow = try shadowProjections()
        var report = RebuildReport()
        let interrupted = try rebuildInterrupted()
        try writer.write { [self] txn in
            for db in shadow.all { try txn.clear(db) }
            // Heads of notifications that compaction dropped are not in the log any more.
            try txn.forEach(compactedHeads) { k, v in try txn.put(shadow.heads, k, v); return true }
        }

        // Checkpoint first (entries compaction kept), then the log, chunk by chunk.
        report.entries += try derive(from: checkpoint, after: nil, through: .max, into: shadow, chunk: chunk).applied
        var derivedThrough = try read { try $0.head() }
        report.entries += try derive(from: log, after: nil, through: derivedThrough, into: shadow, chunk: chunk) {
            progress?($0, derivedThrough)
        }.applied

        // Compare, in one snapshot whose head is the one derived up to.
        var attempts = 0
        while true {
            let compared: RebuildReport? = try env.read { txn in
                guard (try metaUInt(txn, .head) ?? 0) == derivedThrough else { return nil }
                return try compare(shadow, in: txn)
            }
            if let compared {
                report.differences = compared.differences
                report.orphanConsumers = compared.orphanConsumers
                report.missingConsumers = compared.missingConsumers
                report.consumerFlagsFixed = compared.consumerFlagsFixed
                break
            }
            attempts += 1
            if attempts > 100 {
                throw CorruptData(what: "log", reason: "appends kept outrunning the check; run it again when the log is quieter")
            }
            let last = derivedThrough
            derivedThrough = try read { try $0.head() }
            report.entries += try derive(from: log, after: last, through: derivedThrough, into: shadow, chunk: chunk).applied
        }

        if repair && (!report.isClean || interrupted) {
            try writer.write { [self] txn in try setMeta(txn, .rebuilding, 1) }
            var hook = afterFirstRepairCommit
            for (name, pair) in zip(Self.projectionNames, zip(projections.all, shadow.all)) where !(report.differences[name]?.isEmpty ?? true) {
                try copy(from: pair.1, to: pair.0, chunk: chunk * 5) {
                    hook?()
                    hook = nil
                }
            }
            unreadGenerations.invalidateAll()
            try reconcileConsumers(head: derivedThrough, finishingRebuild: true)
            report.repaired = true
        }
        try writer.write { txn in for db in shadow.all { try txn.clear(db) } }
        return report
    }

    /// Applies the entries of `source` after `after` up to `through` to `shadow`, a chunk per
    /// commit; returns how many and the last pos applied.
    private func derive(from source: Database, after: UInt64?, through: UInt64, into shadow: Projections, chunk: Int,
                        progress: ((UInt64) -> Void)? = nil) throws -> (applied: UInt64, last: UInt64?) {
        var next: UInt64 = after.map { $0 + 1 } ?? 0
        var total: UInt64 = 0
        var lastApplied: UInt64?
        while true {
            let (applied, last): (UInt64, UInt64?) = try writer.write { txn in
                var projector = Projector(txn: txn, projections: shadow)
                var scratch = AppendResult(firstPos: 0, lastPos: 0)
                var n: UInt64 = 0
                var last: UInt64?
                try txn.forEach(source, from: Keys.pos(next)) { k, v in
                    let pos = BigEndianRead.uint64(k, at: 0)
                    guard pos <= through else { return false }
                    try projector.apply(try EntryCodec.decode(v, pos: pos).entry, pos: pos, result: &scratch)
                    n += 1
                    last = pos
                    return n < chunk
                }
                try projector.flush()
                return (n, last)
            }
            total += applied
            if let last { lastApplied = last; progress?(last) }
            guard let last, applied == chunk, last < through else { break }
            next = last + 1
        }
        return (total, lastApplied)
    }

    /// Differences between the stored projections and `shadow`, and between consumer state and
    /// the derived registry, as one snapshot sees them.
    private func compare(_ shadow: Projections, in txn: Transaction) throws -> RebuildReport {
        var report = RebuildReport()
        for (name, pair) in zip(Self.projectionNames, zip(projections.all, shadow.all)) {
            report.differences[name] = try diff(stored: pair.0, derived: pair.1, in: txn)
        }
        try txn.forEach(consumers) { k, v in
            if let p = try txn.get(shadow.pushers, k) {
                let config = try PusherRecord.decode(p)
                let state = try ConsumerState.decode(v)
                if state.enabled != config.enabled || state.kind != config.kind { report.consumerFlagsFixed += 1 }
            } else {
                report.orphanConsumers += 1
            }
            return true
        }
        try txn.forEach(shadow.pushers) { k, _ in
            if try txn.get(consumers, k) == nil { report.missingConsumers += 1 }
            return true
        }
        return report
    }

    /// True when a repair was interrupted (a crash during `replay --rebuild` or `recover`): the
    /// projections may be half-replaced, and must not be served until a repair finishes.
    public func rebuildInterrupted() throws -> Bool {
        try env.read { try metaUInt($0, .rebuilding) != nil }
    }

    func diff(stored: Database, derived: Database, in txn: Transaction) throws -> ProjectionDiff {
        var d = ProjectionDiff()
        try txn.withCursor(stored) { sc in
            try txn.withCursor(derived) { dc in
                var s = try sc.first(), r = try dc.first()
                while true {
                    switch (s, r) {
                    case (nil, nil): return
                    case (.some, nil): d.extra += 1; s = try sc.next()
                    case (nil, .some): d.missing += 1; r = try dc.next()
                    case let (.some(se), .some(re)):
                        let c = compareKeys(se.key, re.key)
                        if c < 0 { d.extra += 1; s = try sc.next() }
                        else if c > 0 { d.missing += 1; r = try dc.next() }
                        else {
                            if !se.value.elementsEqual(re.value) { d.changed += 1 }
                            s = try sc.next(); r = try dc.next()
                        }
                    }
                }
            }
        }
        return d
    }

    func copy(from source: Database, to target: Database, chunk: Int, afterCommit: () -> Void = {}) throws {
        try writer.write { txn in try txn.clear(target) }
        afterCommit()
        var next: [UInt8]? = nil
        while true {
            let last: [UInt8]? = try writer.write { txn in
                var n = 0
                var last: [UInt8]?
                try txn.forEach(source, from: next) { k, v in
                    if let next, k.elementsEqual(next) { return true }
                    try txn.put(target, k, v, flags: .append)
                    last = Array(k)
                    n += 1
                    return n < chunk
                }
                return n == chunk ? last : nil
            }
            afterCommit()
            guard let last else { return }
            next = last
        }
    }

    /// Makes consumer state match the registry: state without a pusher goes, a pusher without
    /// state starts at the head (no history pushed), enabled and kind follow the config.
    /// `finishingRebuild`: the last step of a repair, which clears its marker in the same commit.
    func reconcileConsumers(head: UInt64, finishingRebuild: Bool = false) throws {
        try writer.write { [self] txn in
            if finishingRebuild { _ = try txn.delete(meta, Array(MetaKey.rebuilding.rawValue.utf8)) }
            var doomed: [[UInt8]] = []
            try txn.forEach(consumers) { k, _ in
                if try txn.get(projections.pushers, k) == nil { doomed.append(Array(k)) }
                return true
            }
            for k in doomed { try txn.delete(consumers, k) }
            var updates: [([UInt8], ConsumerState)] = []
            try txn.forEach(projections.pushers) { k, v in
                let config = try PusherRecord.decode(v)
                var state = try txn.get(consumers, k).map(ConsumerState.decode)
                    ?? ConsumerState(cursor: head, enabled: config.enabled, kind: config.kind)
                state.enabled = config.enabled
                state.kind = config.kind
                updates.append((Array(k), state))
                return true
            }
            for (k, s) in updates { try txn.put(consumers, k, s.encoded()) }
        }
    }
}
