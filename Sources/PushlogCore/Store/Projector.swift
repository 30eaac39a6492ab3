import LMDB

/// The derived databases (everything `replay --rebuild` can re-derive from the log).
struct Projections {
    var notifs: Database
    var heads: Database
    var receipts: Database
    var unread: Database
    var pushers: Database
    var pusherKeys: Database

    var all: [Database] { [notifs, heads, receipts, unread, pushers, pusherKeys] }
}

/// What an append changed, so the pool can poke the right pushers after the commit.
public struct AppendResult: Sendable, Equatable {
    public var firstPos: UInt64
    public var lastPos: UInt64
    /// Users with a new pushable notification.
    public var notifiedUsers: Set<String> = []
    /// Users whose receipts moved forward.
    public var receiptUsers: Set<String> = []
    /// Pushers created, replaced, disabled or removed.
    public var pusherChanges: Set<PusherID> = []
}

/// Applies log entries to the projections, inside the caller's write transaction.
///
/// With `consumers` set (live appends) it also keeps consumer state in step: a new or
/// re-enabled pusher starts at its own entry's pos, a removed one loses its state. During a
/// rebuild `consumers` is nil: consumer state is not derived and is reconciled afterwards.
struct Projector {
    let txn: Transaction
    let p: Projections
    let consumers: Database?
    let throttles: Database?
    let deadLetters: Database?
    /// Told of every change to a user's unread rows (nil for shadow projections).
    let generations: UnreadGenerations?
    /// Heads are written once per user per batch.
    var pendingHeads: [String: UInt64] = [:]
    /// Per (user, room) notified in this batch: its receipts as read and its unread row as it
    /// will be written, once, by ``flush()``. A catch-up's batch holds many notifications of one
    /// user in one room (every message of a busy room): each read both receipts and the unread
    /// row, and wrote the row, ~15% of the writer's time in a first start.
    private var rooms: [RoomKey: PendingRoom] = [:]

    init(txn: Transaction, projections: Projections, consumers: Database? = nil,
         throttles: Database? = nil, deadLetters: Database? = nil, generations: UnreadGenerations? = nil) {
        self.txn = txn
        self.generations = generations
        self.p = projections
        self.consumers = consumers
        self.throttles = throttles
        self.deadLetters = deadLetters
    }

    mutating func apply(_ entry: LogEntry, pos: UInt64, result: inout AppendResult) throws {
        switch entry {
        case .notification(let n):
            guard n.notifies else { return }
            try applyNotification(n, pos: pos)
            result.notifiedUsers.insert(n.userID)
        case .receipt(let r):
            if try applyReceipt(r) { result.receiptUsers.insert(r.userID) }
        case .pusherSet(let config):
            try applyPusherSet(config, pos: pos, result: &result)
        case .pusherRemoved(let id):
            if try removePusher(id) { result.pusherChanges.insert(id) }
        }
    }

    mutating func flush() throws {
        for (user, pos) in pendingHeads {
            try txn.put(p.heads, Keys.user(user), BigEndian.bytes(pos))
        }
        pendingHeads.removeAll(keepingCapacity: true)
        for (key, room) in rooms { try write(room, of: key) }
        rooms.removeAll(keepingCapacity: true)
    }

    /// A (user, room) of this batch.
    struct RoomKey: Hashable {
        var user: String
        var room: String
    }

    /// What the batch has read and changed of one (user, room).
    struct PendingRoom {
        var receipts: ReceiptView
        /// The unread row: read on the first unread notification, then kept here.
        var unread: UnreadValue?
        var unreadLoaded = false
        var changed = false
    }

    /// Writes a room's unread row if the batch changed it.
    private func write(_ room: PendingRoom, of key: RoomKey) throws {
        guard room.changed, let u = room.unread else { return }
        generations?.changing(user: key.user)
        try txn.put(p.unread, Keys.room(key.user, key.room), u.encoded())
    }

    // MARK: notifications and receipts

    mutating func applyNotification(_ n: PushNotification, pos: UInt64) throws {
        let value = NotifIndexValue(roomID: n.roomID, streamOrdering: n.streamOrdering, threadID: n.threadID,
                                    highlight: n.highlights)
        try txn.put(p.notifs, Keys.notif(n.userID, pos), value.encoded())
        pendingHeads[n.userID] = pos
        let (txn, p) = (self.txn, self.p)
        let key = RoomKey(user: n.userID, room: n.roomID)
        // Changed in place: a room taken out of the dictionary and put back would be copied.
        try Self.notify(&rooms[key, default: PendingRoom(receipts: ReceiptView(txn: txn, db: p.receipts, user: n.userID,
                                                                                room: n.roomID))],
                        n, pos: pos, txn: txn, unread: p.unread)
    }

    private static func notify(_ room: inout PendingRoom, _ n: PushNotification, pos: UInt64, txn: Transaction,
                               unread: Database) throws {
        guard try room.receipts.isUnread(streamOrdering: n.streamOrdering, thread: n.threadID) else { return }
        if !room.unreadLoaded {
            room.unread = try txn.get(unread, Keys.room(n.userID, n.roomID)).map(UnreadValue.decode)
            room.unreadLoaded = true
        }
        var u = room.unread ?? UnreadValue(count: 0, oldestPos: pos)
        u.count += 1
        u.oldestPos = min(u.oldestPos, pos)
        room.unread = u
        room.changed = true
    }

    /// Stores the receipt when it moves forward; returns false when it is not newer than the one held.
    mutating func applyReceipt(_ r: Receipt) throws -> Bool {
        // The batch's notifications of this room so far are counted, and its receipts read
        // again, from the transaction.
        let pending = RoomKey(user: r.userID, room: r.roomID)
        if let room = rooms.removeValue(forKey: pending) { try write(room, of: pending) }
        let key = Keys.receipt(r.userID, r.roomID, thread: r.threadID)
        if let held = try txn.get(p.receipts, key), Int64(bitPattern: BigEndianRead.uint64(held, at: 0)) >= r.streamOrdering {
            return false
        }
        try txn.put(p.receipts, key, BigEndian.bytes(UInt64(bitPattern: r.streamOrdering)))
        try recountUnread(user: r.userID, room: r.roomID)
        return true
    }

    /// Recounts a room's unread notifications after a receipt, scanning the user's index from the
    /// oldest notification that was unread (nothing older can become unread again).
    func recountUnread(user: String, room: String) throws {
        let key = Keys.room(user, room)
        guard let held = try txn.get(p.unread, key).map(UnreadValue.decode) else { return }
        var receipts = ReceiptView(txn: txn, db: p.receipts, user: user, room: room)
        var count: UInt64 = 0
        var oldest = UInt64.max
        let prefix = Keys.userPrefix(user)
        let roomBytes = Array(room.utf8)
        var candidates: [(UInt64, Int64, String)] = []
        try txn.forEach(p.notifs, from: Keys.notif(user, held.oldestPos)) { k, v in
            guard k.count == prefix.count + 8, k.starts(with: prefix) else { return false }
            // Compare the room before decoding the rest.
            var r = ByteReader(v, what: "notification index")
            _ = try r.byte()
            let so = Int64(bitPattern: try r.fixed64())
            let roomRaw = try r.rawBytes()
            guard roomRaw.elementsEqual(roomBytes) else { return true }
            candidates.append((BigEndianRead.uint64(k, at: prefix.count), so, try r.string()))
            return true
        }
        for (pos, so, thread) in candidates {
            if try receipts.isUnread(streamOrdering: so, thread: thread) {
                count += 1
                oldest = min(oldest, pos)
            }
        }
        generations?.changing(user: user)
        if count == 0 {
            try txn.delete(p.unread, key)
        } else {
            try txn.put(p.unread, key, UnreadValue(count: count, oldestPos: oldest).encoded())
        }
    }

    // MARK: pushers

    mutating func applyPusherSet(_ config: PusherConfig, pos: UInt64, result: inout AppendResult) throws {
        let key = Keys.pusher(config.id)
        var stored = config
        var urlChanged = false
        if let old = try txn.get(p.pushers, key) {
            // Identity is (user, app_id, pushkey): an update keeps the creation time.
            let previous = try PusherRecord.decode(old)
            stored.createdTS = previous.createdTS
            urlChanged = previous.data["url"] != config.data["url"]
        }
        try txn.put(p.pushers, key, PusherRecord.encode(stored))
        try txn.put(p.pusherKeys, Keys.pusherKeyIndex(config.id), [UInt8]())
        result.pusherChanges.insert(config.id)
        if !config.append {
            let hash = Keys.appKeyHash(appID: config.id.appID, pushkey: config.id.pushkey)
            var others: [PusherID] = []
            try txn.forEach(p.pusherKeys, prefix: hash) { k, _ in
                let user = String(decoding: UnsafeRawBufferPointer(rebasing: k[hash.count...]), as: UTF8.self)
                if user != config.id.userID {
                    others.append(PusherID(userID: user, appID: config.id.appID, pushkey: config.id.pushkey))
                }
                return true
            }
            for other in others {
                if try removePusher(other) { result.pusherChanges.insert(other) }
            }
        }
        guard let consumers else { return }
        if let old = try txn.get(consumers, key) {
            var state = try ConsumerState.decode(old)
            if config.enabled && !state.enabled { state.cursor = pos }  // re-enabled: no history
            state.enabled = config.enabled
            state.kind = config.kind
            if urlChanged {
                // A new gateway: the old one's failures say nothing about it (Synapse keeps them).
                state.failingSince = nil
                state.nextAttempt = nil
            }
            try txn.put(consumers, key, state.encoded())
        } else {
            try txn.put(consumers, key, ConsumerState(cursor: pos, enabled: config.enabled, kind: config.kind).encoded())
        }
    }

    /// Removes a pusher and everything kept for it; returns false when there was none.
    func removePusher(_ id: PusherID) throws -> Bool {
        let key = Keys.pusher(id)
        guard try txn.delete(p.pushers, key) else { return false }
        try txn.delete(p.pusherKeys, Keys.pusherKeyIndex(id))
        if let consumers { try txn.delete(consumers, key) }
        for db in [throttles, deadLetters].compactMap({ $0 }) {
            var doomed: [[UInt8]] = []
            try txn.forEach(db, prefix: key) { k, _ in doomed.append(Array(k)); return true }
            for k in doomed { try txn.delete(db, k) }
        }
        return true
    }
}

/// The receipts of one user in one room, read lazily: the contract's unread rule.
struct ReceiptView {
    let txn: Transaction
    let db: Database
    let user: String
    let room: String
    private var unthreaded: Int64?
    private var threads: [String: Int64] = [:]

    init(txn: Transaction, db: Database, user: String, room: String) {
        self.txn = txn
        self.db = db
        self.user = user
        self.room = room
    }

    private func load(_ thread: String?) throws -> Int64 {
        try Self.streamOrdering(txn.get(db, Keys.receipt(user, room, thread: thread)))
    }

    /// A stored receipt's stream ordering; -1 when there is none, so that every notification
    /// is above it.
    static func streamOrdering(_ stored: UnsafeRawBufferPointer?) -> Int64 {
        guard let stored, stored.count >= 8 else { return -1 }
        return Int64(bitPattern: BigEndianRead.uint64(stored, at: 0))
    }

    /// Unread when above both the room's unthreaded receipt and the receipt for its thread.
    mutating func isUnread(streamOrdering so: Int64, thread: String) throws -> Bool {
        if unthreaded == nil { unthreaded = try load(nil) }
        if so <= unthreaded! { return false }
        if let t = threads[thread] { return so > t }
        let t = try load(thread)
        threads[thread] = t
        return so > t
    }
}
