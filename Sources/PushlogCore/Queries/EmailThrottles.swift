import LMDB

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
