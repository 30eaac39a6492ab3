import LMDB

/// Why a notification was not delivered.
public enum DeadLetterReason: UInt8, Sendable, CaseIterable {
    /// The pusher failed continuously for longer than `push.give_up_after`.
    case giveUp = 1
    /// The notification was older than `push.max_age` when its turn came.
    case maxAge = 2

    public var label: String { self == .giveUp ? "give_up" : "max_age" }
}

/// A pusher as its loop sees it.
public struct LoadedPusher: Sendable {
    public var key: [UInt8]
    public var config: PusherConfig
    public var state: ConsumerState
}

extension Store {
    /// The pushers of `user`, with their consumer state.
    public func pushers(ofUser user: String) throws -> [LoadedPusher] {
        try env.read { txn in
            var out: [LoadedPusher] = []
            try txn.forEach(projections.pushers, prefix: Keys.userPrefix(user)) { k, v in
                let config = try PusherRecord.decode(v)
                if let s = try txn.get(consumers, k) {
                    out.append(LoadedPusher(key: Array(k), config: config, state: try ConsumerState.decode(s)))
                }
                return true
            }
            return out
        }
    }

    /// The pusher stored under `key`, or nil when it was removed.
    public func loadPusher(key: [UInt8]) throws -> LoadedPusher? {
        try env.read { txn in
            guard let p = try txn.get(projections.pushers, key), let s = try txn.get(consumers, key) else { return nil }
            return LoadedPusher(key: key, config: try PusherRecord.decode(p), state: try ConsumerState.decode(s))
        }
    }

    /// Dead letters of a pusher: (pos, reason, ts).
    public func deadLetters(key: [UInt8]) throws -> [(pos: UInt64, reason: DeadLetterReason, ts: Int64)] {
        try env.read { txn in
            var out: [(UInt64, DeadLetterReason, Int64)] = []
            try txn.forEach(deadLetters, prefix: key) { k, v in
                guard k.count == key.count + 8, v.count == 9, let r = DeadLetterReason(rawValue: v[0]) else { return true }
                out.append((BigEndianRead.uint64(k, at: key.count), r, Int64(bitPattern: BigEndianRead.uint64(v, at: 1))))
                return true
            }
            return out
        }
    }
}

extension StoreWriteContext {
    /// Changes a pusher's consumer state; returns nil (and writes nothing) when the pusher is gone.
    @discardableResult
    public func updateConsumer(key: [UInt8], _ change: (inout ConsumerState) -> Void) throws -> ConsumerState? {
        guard let raw = try txn.get(store.consumers, key) else { return nil }
        var state = try ConsumerState.decode(raw)
        change(&state)
        try txn.put(store.consumers, key, state.encoded())
        return state
    }

    public func addDeadLetter(key: [UInt8], pos: UInt64, reason: DeadLetterReason, ts: Int64) throws {
        var v: [UInt8] = [reason.rawValue]
        BigEndian.append(UInt64(bitPattern: ts), to: &v)
        try txn.put(store.deadLetters, key + Keys.pos(pos), v)
    }
}
