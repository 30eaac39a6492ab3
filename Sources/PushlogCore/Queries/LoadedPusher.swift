import LMDB

/// A pusher as its loop sees it.
public struct LoadedPusher: Sendable {
    public var key: [UInt8]
    public var config: PusherConfig
    public var state: ConsumerState
}

extension StoreReadView {
    /// The pushers of `user`, with their consumer state.
    public func pushers(ofUser user: String) throws -> [LoadedPusher] {
        var out: [LoadedPusher] = []
        try txn.forEach(store.projections.pushers, prefix: Keys.userPrefix(user)) { k, v in
            let config = try PusherRecord.decode(v)
            if let s = try txn.get(store.consumers, k) {
                out.append(LoadedPusher(key: Array(k), config: config, state: try ConsumerState.decode(s)))
            }
            return true
        }
        return out
    }

    /// The pusher stored under `key`, or nil when it was removed.
    public func loadPusher(key: [UInt8]) throws -> LoadedPusher? {
        guard let p = try txn.get(store.projections.pushers, key), let s = try txn.get(store.consumers, key) else { return nil }
        return LoadedPusher(key: key, config: try PusherRecord.decode(p), state: try ConsumerState.decode(s))
    }
}
