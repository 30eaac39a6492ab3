import LMDB

/// An email pusher's throttle for one room: when the room was last mailed, how long it waits
/// before the next mail about it, and the pos of the newest notification of the room that a
/// mail has covered (so notifications mailed ahead of the cursor are never mailed twice).
///
/// Kept in `throttles` under the pusher's key + SHA-256 of the room id (a 255-byte user id and a
/// 255-byte room id side by side would not fit LMDB's 511-byte keys), with the room id in the
/// value; it survives updates of the pusher (its identity does not change) and is deleted with it.
public struct EmailThrottle: Sendable, Equatable {
    public var lastSentTS: Int64
    public var throttleMS: Int64
    public var mailedThrough: UInt64

    public init(lastSentTS: Int64, throttleMS: Int64, mailedThrough: UInt64) {
        self.lastSentTS = lastSentTS
        self.throttleMS = throttleMS
        self.mailedThrough = mailedThrough
    }

    static let fixedSize = 24

    static func key(pusher: [UInt8], room: String) -> [UInt8] { pusher + SHA256.hash(Array(room.utf8)) }

    func encoded(room: String) -> [UInt8] {
        BigEndian.bytes(UInt64(bitPattern: lastSentTS)) + BigEndian.bytes(UInt64(bitPattern: throttleMS))
            + BigEndian.bytes(mailedThrough) + Array(room.utf8)
    }

    static func decode(_ b: UnsafeRawBufferPointer) throws -> (room: String, throttle: EmailThrottle) {
        guard b.count > fixedSize else { throw CorruptData(what: "email throttle", reason: "\(b.count) bytes") }
        let t = EmailThrottle(lastSentTS: Int64(bitPattern: BigEndianRead.uint64(b, at: 0)),
                              throttleMS: Int64(bitPattern: BigEndianRead.uint64(b, at: 8)),
                              mailedThrough: BigEndianRead.uint64(b, at: 16))
        return (String(decoding: UnsafeRawBufferPointer(rebasing: b[fixedSize...]), as: UTF8.self), t)
    }
}

extension Store {
    /// Every room throttle of the pusher at `key`, by room id.
    public func emailThrottles(key: [UInt8]) throws -> [String: EmailThrottle] {
        try read { try $0.emailThrottles(key: key) }
    }

    /// The notifications logged at `positions` (those still in the log), in one transaction.
    public func notifications(at positions: [UInt64]) throws -> [UInt64: Notification] {
        try read { try $0.notifications(at: positions) }
    }
}

extension StoreReadView {
    /// Every room throttle of the pusher at `key`, by room id.
    public func emailThrottles(key: [UInt8]) throws -> [String: EmailThrottle] {
        var out: [String: EmailThrottle] = [:]
        try txn.forEach(store.throttles, prefix: key) { k, v in
            guard k.count == key.count + 32 else { return true }
            let (room, t) = try EmailThrottle.decode(v)
            out[room] = t
            return true
        }
        return out
    }

    /// The notifications logged at `positions` (those still in the log).
    public func notifications(at positions: [UInt64]) throws -> [UInt64: Notification] {
        var out: [UInt64: Notification] = [:]
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

    /// Calls `body` with each notification of `user` after `cursor`, in log order, read ones
    /// marked, until it returns false.
    public func forEachNotification(user: String, after cursor: UInt64, _ body: (UserNotification) throws -> Bool) throws {
        try store.forEachNotification(user: user, after: cursor, limit: .max, txn: txn, body)
    }
}

extension StoreWriteContext {
    /// Records the room throttles written after a mail was accepted; nothing when the pusher is gone.
    public func setEmailThrottles(key: [UInt8], _ throttles: [String: EmailThrottle]) throws {
        guard try txn.get(store.consumers, key) != nil else { return }
        for (room, t) in throttles {
            try txn.put(store.throttles, EmailThrottle.key(pusher: key, room: room), t.encoded(room: room))
        }
    }
}
