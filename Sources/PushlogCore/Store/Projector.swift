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
    /// Per user notified in this batch: the head, written once by ``flush()``, and their rooms in
    /// `rooms`.
    private var pending: [String: PendingUser] = [:]
    /// Each (user, room) notified in this batch: its receipts as read and its unread row. A
    /// catch-up's batch holds many notifications of one user in one room (every message of a
    /// busy room): each read both receipts and the unread row, and wrote the row, ~15% of the
    /// writer's time in a first start. The row is written at its first change, where it was just
    /// read (its pages at hand), then once more by `flush` if it changed again. One array for
    /// the batch, each user's rooms chained, costs an append of 200,000 notifications to 10,000
    /// users in 997 rooms (nearly every room new) ~4% more user CPU than a read and write per
    /// notification; a dictionary by (user, room) beside `pending`, written by `flush` alone,
    /// cost ~20%.
    private var rooms: [PendingRoom] = []

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
        for (user, u) in pending {
            try txn.put(p.heads, Keys.user(user), BigEndian.bytes(u.head))
        }
        pending.removeAll(keepingCapacity: true)
        for room in rooms { try write(room) }
        rooms.removeAll(keepingCapacity: true)
    }

    /// What the batch has read and changed of one user's projections.
    struct PendingUser {
        var head: UInt64
        /// The user's newest room in `rooms` (-1: none yet); each links to the one before.
        var last = -1
        var count = 0
        /// Where each of the user's rooms is in `rooms`, once there are more than a few (a user
        /// notified in thousands of rooms in one batch would walk them all for each notification).
        var index: [String: Int]?

        init(head: UInt64) { self.head = head }

        /// Where the user's `room` is in `rooms`; nil when the batch has not notified them in it.
        func find(_ room: String, in rooms: [PendingRoom]) -> Int? {
            if let index { return index[room] }
            var i = last
            while i >= 0 {
                if rooms[i].receipts.room == room { return i }
                i = rooms[i].previous
            }
            return nil
        }

        mutating func add(_ room: PendingRoom, to rooms: inout [PendingRoom]) -> Int {
            var room = room
            room.previous = last
            rooms.append(room)
            last = rooms.count - 1
            count += 1
            if index != nil {
                index![room.receipts.room] = last
            } else if count > 16 {
                var all: [String: Int] = [:]
                var i = last
                while i >= 0 { all[rooms[i].receipts.room] = i; i = rooms[i].previous }
                index = all
            }
            return last
        }
    }

    /// What the batch has read and changed of one (user, room).
    struct PendingRoom {
        var receipts: ReceiptView
        /// The unread row: read on the first unread notification, then kept here.
        var unread: UnreadValue?
        var unreadLoaded = false
        /// Changed since it was last written.
        var changed = false
        /// The user's room before this one in `rooms` (-1: none).
        var previous = -1
    }

    /// Writes a room's unread row if it changed since it was last written.
    private func write(_ room: PendingRoom) throws {
        guard room.changed, let u = room.unread else { return }
        generations?.changing(user: room.receipts.user)
        try txn.put(p.unread, Keys.room(room.receipts.user, room.receipts.room), u.encoded())
    }

    // MARK: notifications and receipts

    mutating func applyNotification(_ n: PushNotification, pos: UInt64) throws {
        let value = NotifIndexValue(roomID: n.roomID, streamOrdering: n.streamOrdering, threadID: n.threadID,
                                    highlight: n.highlights)
        try txn.put(p.notifs, Keys.notif(n.userID, pos), value.encoded())
        let (txn, p) = (self.txn, self.p)
        // Changed in place: a value taken out of the dictionary and put back would be copied.
        let first = try Self.notify(&pending[n.userID, default: PendingUser(head: pos)], &rooms, n, pos: pos, txn: txn, p: p)
        if let first {
            generations?.changing(user: n.userID)
            try txn.put(p.unread, Keys.room(n.userID, n.roomID), first.encoded())
        }
    }

    /// Counts `n` in its user's head and room; returns the row to write now when this is the
    /// row's first change in the batch (later ones are left to ``flush()``).
    private static func notify(_ user: inout PendingUser, _ rooms: inout [PendingRoom], _ n: PushNotification,
                               pos: UInt64, txn: Transaction, p: Projections) throws -> UnreadValue? {
        user.head = pos
        let i = user.find(n.roomID, in: rooms)
            ?? user.add(PendingRoom(receipts: ReceiptView(txn: txn, db: p.receipts, user: n.userID, room: n.roomID)),
                        to: &rooms)
        guard try rooms[i].receipts.isUnread(streamOrdering: n.streamOrdering, thread: n.threadID) else { return nil }
        let first = !rooms[i].unreadLoaded
        if first {
            rooms[i].unread = try txn.get(p.unread, Keys.room(n.userID, n.roomID)).map(UnreadValue.decode)
            rooms[i].unreadLoaded = true
        }
        var u = rooms[i].unread ?? UnreadValue(count: 0, oldestPos: pos)
        u.count += 1
        u.oldestPos = min(u.oldestPos, pos)
        rooms[i].unread = u
        rooms[i].changed = !first
        return first ? u : nil
    }

    /// Stores the receipt when it moves forward; returns false when it is not newer than the one held.
    mutating func applyReceipt(_ r: Receipt) throws -> Bool {
        // The batch's notifications of this room so far are counted, and its receipts read
        // again, from the transaction.
        if let i = pending[r.userID]?.find(r.roomID, in: rooms) {
            try write(rooms[i])
            rooms[i] = PendingRoom(receipts: ReceiptView(txn: txn, db: p.receipts, user: r.userID, room: r.roomID),
                                   previous: rooms[i].previous)
        }
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
    /// The first thread asked about (nearly always the only one: "main") and its receipt, then
    /// the others: a dictionary for every view cost an allocation per notification, and kept
    /// alive for a batch (``Projector``'s rooms) ~0.8 µs per notification.
    private var thread: (id: String, receipt: Int64)?
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
        if let t = self.thread, t.id == thread { return so > t.receipt }
        if self.thread != nil, let t = threads[thread] { return so > t }
        let t = try load(thread)
        if self.thread == nil { self.thread = (thread, t) } else { threads[thread] = t }
        return so > t
    }
}
