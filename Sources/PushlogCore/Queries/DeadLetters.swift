import LMDB

/// Why a notification was not delivered.
public enum DeadLetterReason: UInt8, Sendable, CaseIterable {
    /// The pusher failed continuously for longer than `push.give_up_after`.
    case giveUp = 1
    /// The notification was older than `push.max_age` when its turn came.
    case maxAge = 2

    public var label: String { self == .giveUp ? "give_up" : "max_age" }
}

extension StoreReadView {
    /// Dead letters of a pusher: (pos, reason, ts).
    public func deadLetters(key: [UInt8]) throws -> [(pos: UInt64, reason: DeadLetterReason, ts: Int64)] {
        var out: [(UInt64, DeadLetterReason, Int64)] = []
        try txn.forEach(store.deadLetters, prefix: key) { k, v in
            guard k.count == key.count + 8, v.count == 9, let r = DeadLetterReason(rawValue: v[0]) else { return true }
            out.append((BigEndianRead.uint64(k, at: key.count), r, Int64(bitPattern: BigEndianRead.uint64(v, at: 1))))
            return true
        }
        return out
    }
}

extension StoreWriteContext {
    public func addDeadLetter(key: [UInt8], pos: UInt64, reason: DeadLetterReason, ts: Int64) throws {
        var v: [UInt8] = [reason.rawValue]
        BigEndian.append(UInt64(bitPattern: ts), to: &v)
        try txn.put(store.deadLetters, key + Keys.pos(pos), v)
    }
}
