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
        Projections(
            notifs: try env.database("shadow_notifs"), heads: try env.database("shadow_heads"),
            receipts: try env.database("shadow_receipts"), unread: try env.database("shadow_unread"),
            pushers: try env.database("shadow_pushers"), pusherKeys: try env.database("shadow_pusher_keys"))
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
    public func rebuild(repair: Bool, chunk: Int = 20_000,
                        progress: ((UInt64, UInt64) -> Void)? = nil) throws -> RebuildReport {
        let shadow = try shadowProjections()
        var report = RebuildReport()
        let head = try self.head()
        try writer.write { txn in for db in shadow.all { try txn.clear(db) } }

        // Checkpoint first (entries compaction kept), then the log, chunk by chunk.
        for source in [checkpoint, log] {
            var next: UInt64 = 0
            while true {
                let (applied, last): (UInt64, UInt64?) = try writer.write { txn in
                    var projector = Projector(txn: txn, projections: shadow)
                    var scratch = AppendResult(firstPos: 0, lastPos: 0)
                    var n: UInt64 = 0
                    var last: UInt64?
                    try txn.forEach(source, from: Keys.pos(next)) { k, v in
                        let pos = BigEndianRead.uint64(k, at: 0)
                        try projector.apply(try EntryCodec.decode(v, pos: pos).entry, pos: pos, result: &scratch)
                        n += 1
                        last = pos
                        return n < chunk
                    }
                    try projector.flush()
                    return (n, last)
                }
                report.entries += applied
                if source == log, let last { progress?(last, head) }
                guard let last, applied == chunk else { break }
                next = last + 1
            }
        }

        // Compare.
        let live = projections
        for (name, pair) in zip(Self.projectionNames, zip(live.all, shadow.all)) {
            report.differences[name] = try diff(stored: pair.0, derived: pair.1)
        }

        // Consumers against the derived registry.
        try env.read { txn in
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
        }

        if repair && !report.isClean {
            try writer.write { [self] txn in try setMeta(txn, .rebuilding, 1) }
            for (name, pair) in zip(Self.projectionNames, zip(live.all, shadow.all)) where !(report.differences[name]?.isEmpty ?? true) {
                try copy(from: pair.1, to: pair.0, chunk: chunk * 5)
            }
            unreadGenerations.invalidateAll()
            try reconcileConsumers(head: head)
            try writer.write { [self] txn in _ = try txn.delete(meta, Array(MetaKey.rebuilding.rawValue.utf8)) }
            report.repaired = true
        }
        try writer.write { txn in for db in shadow.all { try txn.clear(db) } }
        return report
    }

    /// True when a repair was interrupted (a crash during `replay --rebuild` or `recover`).
    public func rebuildInterrupted() throws -> Bool {
        try env.read { try metaUInt($0, .rebuilding) != nil }
    }

    func diff(stored: Database, derived: Database) throws -> ProjectionDiff {
        try env.read { txn in
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
    }

    func copy(from source: Database, to target: Database, chunk: Int) throws {
        try writer.write { txn in try txn.clear(target) }
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
            guard let last else { return }
            next = last
        }
    }

    /// Makes consumer state match the registry: state without a pusher goes, a pusher without
    /// state starts at the head (no history pushed), enabled and kind follow the config.
    func reconcileConsumers(head: UInt64) throws {
        try writer.write { [self] txn in
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
