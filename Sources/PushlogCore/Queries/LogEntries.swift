import LMDB

extension StoreReadView {
    /// Calls `body` for each log entry with `from <= pos <= to`, in order, until it returns false.
    public func forEachEntry(from: UInt64 = 1, to: UInt64 = .max, _ body: (LoggedEntry) throws -> Bool) throws {
        try txn.forEach(store.log, from: Keys.pos(from)) { k, v in
            let pos = BigEndianRead.uint64(k, at: 0)
            guard pos <= to else { return false }
            return try body(try EntryCodec.decode(v, pos: pos))
        }
    }

    /// The entry at `pos`, or nil when there is none (beyond the head, or compacted away).
    public func entry(at pos: UInt64) throws -> LoggedEntry? {
        try txn.get(store.log, Keys.pos(pos)).map { try EntryCodec.decode($0, pos: pos) }
    }

    /// The first pos appended at or after `ts` (ms); head + 1 when there is none.
    public func position(atOrAfter ts: Int64) throws -> UInt64 {
        let head = try head()
        var lo = try firstPos(), hi = head + 1
        while lo < hi {
            let mid = lo + (hi - lo) / 2
            guard let v = try txn.get(store.log, Keys.pos(mid)), let t = EntryCodec.timestamp(v) else {
                throw CorruptData(what: "log", reason: "entry \(mid) missing or unreadable")
            }
            if t < ts { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// The notifications logged at `positions` (those still in the log).
    public func notifications(at positions: [UInt64]) throws -> [UInt64: PushNotification] {
        var out: [UInt64: PushNotification] = [:]
        for pos in positions {
            guard let raw = try txn.get(store.log, Keys.pos(pos)),
                  case .notification(let n) = try EntryCodec.decode(raw, pos: pos).entry else { continue }
            out[pos] = n
        }
        return out
    }

    /// When each notification at `positions` was received (those still in the log), read in
    /// place: what the email planner needs of every unread notification, without decoding
    /// their events (only the few a mail shows are decoded, by ``notifications(at:)``).
    public func receivedTimes(at positions: [UInt64]) throws -> [UInt64: Int64] {
        var out: [UInt64: Int64] = [:]
        out.reserveCapacity(positions.count)
        for pos in positions {
            guard let raw = try txn.get(store.log, Keys.pos(pos)) else { continue }
            if let n = RawNotification(raw) {
                out[pos] = n.receivedTS
            } else if case .notification(let n) = try EntryCodec.decode(raw, pos: pos).entry {
                out[pos] = n.receivedTS  // a format the in-place reader does not know
            }
        }
        return out
    }

}
