import LMDB

/// A pusher with its consumer state, head and pending count, as `pushers list` and `cursors` show it.
public struct PusherState: Sendable, Equatable {
    public var config: PusherConfig
    public var state: ConsumerState
    public var head: UInt64
    public var pending: Int
}

extension StoreReadView {
    /// The newest pushable notification pos of `user` (0 when none).
    public func head(user: String) throws -> UInt64 {
        try txn.get(store.projections.heads, Keys.user(user)).map { BigEndianRead.uint64($0, at: 0) } ?? 0
    }

    /// The stored config of the pusher at `key` (as given by the pending check).
    public func pusher(key: [UInt8]) throws -> PusherConfig? {
        try txn.get(store.projections.pushers, key).map(PusherRecord.decode)
    }

    public func pusherState(_ id: PusherID) throws -> PusherState? {
        let key = Keys.pusher(id)
        guard let raw = try txn.get(store.projections.pushers, key) else { return nil }
        return try pusherState(key: key, config: PusherRecord.decode(raw))
    }

    /// Every pusher (of `user`, when given) with its state, in key order, until `body` returns false.
    public func forEachPusherState(user: String? = nil, _ body: (PusherState) throws -> Bool) throws {
        let prefix = user.map(Keys.userPrefix) ?? []
        try txn.forEach(store.projections.pushers, prefix: prefix) { k, v in
            let config = try PusherRecord.decode(v)
            return try body(try pusherState(key: Array(k), config: config))
        }
    }

    func pusherState(key: [UInt8], config: PusherConfig) throws -> PusherState {
        let state = try txn.get(store.consumers, key).map(ConsumerState.decode)
            ?? ConsumerState(cursor: 0, enabled: config.enabled, kind: config.kind)
        let head = try head(user: config.id.userID)
        var pending = 0
        if head > state.cursor {
            let prefix = Keys.userPrefix(config.id.userID)
            try txn.forEach(store.projections.notifs, from: Keys.notif(config.id.userID, state.cursor &+ 1)) { k, _ in
                guard k.count == prefix.count + 8, k.starts(with: prefix) else { return false }
                pending += 1
                return true
            }
        }
        return PusherState(config: config, state: state, head: head, pending: pending)
    }
}
