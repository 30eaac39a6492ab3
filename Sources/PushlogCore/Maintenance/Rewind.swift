import LMDB

extension Store {
    public struct RewindFilter: Sendable {
        public var userID: String?
        public var appID: String?
        public var pushkey: String?
        public init(userID: String? = nil, appID: String? = nil, pushkey: String? = nil) {
            self.userID = userID
            self.appID = appID
            self.pushkey = pushkey
        }
        func matches(_ id: PusherID) -> Bool {
            (userID == nil || userID == id.userID) && (appID == nil || appID == id.appID)
                && (pushkey == nil || pushkey == id.pushkey)
        }
    }

    /// Moves the cursors of matching pushers back to `toPos - 1`, so everything from `toPos` on is
    /// delivered again. A cursor is never moved forward. Returns the pushers rewound.
    @discardableResult
    public func rewind(toPos: UInt64, filter: RewindFilter, dryRun: Bool = false) throws -> [PusherID] {
        let target = toPos == 0 ? 0 : toPos - 1
        return try writer.write { [self] txn in
            var moved: [(key: [UInt8], id: PusherID, state: ConsumerState)] = []
            let prefix = filter.userID.map(Keys.userPrefix) ?? []
            try txn.forEach(projections.pushers, prefix: prefix) { k, v in
                let config = try PusherRecord.decode(v)
                guard filter.matches(config.id), let raw = try txn.get(consumers, k) else { return true }
                var state = try ConsumerState.decode(raw)
                if target < state.cursor {
                    state.cursor = target
                    // A delivery loop running now drops its writes of the old generation (its
                    // higher cursor) and reads the rewound cursor again.
                    state.generation &+= 1
                    moved.append((Array(k), config.id, state))
                }
                return true
            }
            if !dryRun {
                for m in moved { try txn.put(consumers, m.key, m.state.encoded()) }
            }
            return moved.map(\.id)
        }
    }
}
