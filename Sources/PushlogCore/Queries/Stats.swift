import LMDB

extension Store {
    public struct Stats: Sendable {
        public var head: UInt64
        public var firstPos: UInt64
        public var entries: Int
        public var pushers: Int
        public var pushersByKind: [PusherKind: Int]
        public var pendingPushers: Int
        public var users: Int
        public var deadLetters: Int
        /// Pending entries per pending pusher: p50, p90, p99, max.
        public var lagPercentiles: [Int]
        public var mapUsedBytes: Int
        public var mapSizeBytes: Int
    }

}

extension StoreReadView {
    /// What `pushlog stats` shows, from this view's snapshot.
    public func stats() throws -> Store.Stats {
        let info = store.env.info
        var lags: [Int] = []
        var byKind: [PusherKind: Int] = [:]
        var total = 0
        try forEachPusherState { s in
            total += 1
            byKind[s.config.kind, default: 0] += 1
            if s.state.enabled && s.pending > 0 { lags.append(s.pending) }
            return true
        }
        lags.sort()
        func pct(_ p: Double) -> Int { lags.isEmpty ? 0 : lags[min(lags.count - 1, Int(Double(lags.count) * p))] }
        return Store.Stats(head: try head(), firstPos: try firstPos(),
                           entries: try txn.count(store.log), pushers: total, pushersByKind: byKind, pendingPushers: lags.count,
                           users: try txn.count(store.projections.heads), deadLetters: try txn.count(store.deadLetters),
                           lagPercentiles: [pct(0.5), pct(0.9), pct(0.99), lags.last ?? 0],
                           mapUsedBytes: info.usedBytes, mapSizeBytes: info.mapSize)
    }
}
