import LMDB

/// A pushable notification of one user, as the index knows it.
public struct UserNotification: Sendable, Equatable {
    public var pos: UInt64
    public var roomID: String
    public var streamOrdering: Int64
    public var threadID: String
    public var highlight: Bool
    /// Read under the contract's receipt rules (covered by an unthreaded or same-thread receipt).
    public var isRead: Bool
}

/// A pusher with its consumer state, head and pending count, as `pushers list` and `cursors` show it.
public struct PusherState: Sendable, Equatable {
    public var config: PusherConfig
    public var state: ConsumerState
    public var head: UInt64
    public var pending: Int
}

public enum BadgeRule: Sendable {
    /// The number of rooms with unread notifications (the default).
    case rooms
    /// The number of unread notifications.
    case notifications
}

extension Store {
    /// The user's pushable notifications with pos > `cursor`, in log order, until `body` returns
    /// false or `limit` rows were given.
    public func forEachNotification(user: String, after cursor: UInt64, limit: Int = .max,
                                    _ body: (UserNotification) throws -> Bool) throws {
        try env.read { txn in try forEachNotification(user: user, after: cursor, limit: limit, txn: txn, body) }
    }

    func forEachNotification(user: String, after cursor: UInt64, limit: Int, txn: Transaction,
                             _ body: (UserNotification) throws -> Bool) throws {
        try walkNotifications(user: user, after: cursor, limit: limit, txn: txn) { row in
            func string(_ raw: UnsafeRawBufferPointer) throws -> String {
                guard let s = String(validating: raw, as: UTF8.self) else {
                    throw CorruptData(what: "notification index", reason: "invalid UTF-8")
                }
                return s
            }
            return try body(UserNotification(pos: row.pos, roomID: try string(row.room), streamOrdering: row.streamOrdering,
                                             threadID: try string(row.thread), highlight: row.highlight, isRead: row.isRead))
        }
    }

    public func notifications(user: String, after cursor: UInt64, limit: Int = .max) throws -> [UserNotification] {
        var out: [UserNotification] = []
        try forEachNotification(user: user, after: cursor, limit: limit) { out.append($0); return true }
        return out
    }

    /// The badge: rooms with unread notifications, or unread notifications, for `user`.
    public func badge(user: String, rule: BadgeRule = .rooms) throws -> Int {
        try env.read { txn in try badge(user: user, rule: rule, txn: txn) }
    }

    func badge(user: String, rule: BadgeRule, txn: Transaction) throws -> Int {
        var total = 0
        try txn.forEach(projections.unread, prefix: Keys.userPrefix(user)) { _, v in
            let u = try UnreadValue.decode(v)
            total += rule == .rooms ? 1 : Int(u.count)
            return true
        }
        return total
    }

    /// The newest pushable notification pos of `user` (0 when none).
    public func head(user: String) throws -> UInt64 {
        try env.read { txn in try txn.get(projections.heads, Keys.user(user)).map { BigEndianRead.uint64($0, at: 0) } ?? 0 }
    }

    /// The stored config of the pusher at `key` (as given by the pending check).
    public func pusher(key: [UInt8]) throws -> PusherConfig? {
        try env.read { txn in try txn.get(projections.pushers, key).map(PusherRecord.decode) }
    }

    public func pusherState(_ id: PusherID) throws -> PusherState? {
        try env.read { txn in
            let key = Keys.pusher(id)
            guard let raw = try txn.get(projections.pushers, key) else { return nil }
            return try pusherState(key: key, config: PusherRecord.decode(raw), txn: txn)
        }
    }

    /// Every pusher (of `user`, when given) with its state, in key order.
    public func forEachPusherState(user: String? = nil, _ body: (PusherState) throws -> Bool) throws {
        try env.read { txn in
            let prefix = user.map(Keys.userPrefix) ?? []
            try txn.forEach(projections.pushers, prefix: prefix) { k, v in
                let config = try PusherRecord.decode(v)
                return try body(try pusherState(key: Array(k), config: config, txn: txn))
            }
        }
    }

    func pusherState(key: [UInt8], config: PusherConfig, txn: Transaction) throws -> PusherState {
        let state = try txn.get(consumers, key).map(ConsumerState.decode)
            ?? ConsumerState(cursor: 0, enabled: config.enabled, kind: config.kind)
        let head = try txn.get(projections.heads, Keys.user(config.id.userID)).map { BigEndianRead.uint64($0, at: 0) } ?? 0
        var pending = 0
        if head > state.cursor {
            let prefix = Keys.userPrefix(config.id.userID)
            try txn.forEach(projections.notifs, from: Keys.notif(config.id.userID, state.cursor &+ 1)) { k, _ in
                guard k.count == prefix.count + 8, k.starts(with: prefix) else { return false }
                pending += 1
                return true
            }
        }
        return PusherState(config: config, state: state, head: head, pending: pending)
    }

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

    public func stats() throws -> Stats {
        let info = env.info
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
        return try env.read { txn in
            Stats(head: try metaUInt(txn, .head) ?? 0, firstPos: try metaUInt(txn, .first) ?? 1,
                  entries: try txn.count(log), pushers: total, pushersByKind: byKind, pendingPushers: lags.count,
                  users: try txn.count(projections.heads), deadLetters: try txn.count(deadLetters),
                  lagPercentiles: [pct(0.5), pct(0.9), pct(0.99), lags.last ?? 0],
                  mapUsedBytes: info.usedBytes, mapSizeBytes: info.mapSize)
        }
    }
}
