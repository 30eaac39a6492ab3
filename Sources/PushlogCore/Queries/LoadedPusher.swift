import LMDB

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
        try env.read { txn in try loadPusher(key: key, txn: txn) }
    }

    func loadPusher(key: [UInt8], txn: Transaction) throws -> LoadedPusher? {
        do {
            guard let p = try txn.get(projections.pushers, key), let s = try txn.get(consumers, key) else { return nil }
            return LoadedPusher(key: key, config: try PusherRecord.decode(p), state: try ConsumerState.decode(s))
        }
    }
}
