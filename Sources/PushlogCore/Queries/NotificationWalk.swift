import LMDB

extension StoreReadView {
    /// The pos of each of `user`'s pushable notifications after `cursor` (at most `limit`), in log
    /// order, with whether it was read: ``notifications(user:after:limit:)`` without building the
    /// room and thread strings (rooms and their receipts are compared and cached as bytes).
    public func notificationPositions(user: String, after cursor: UInt64, limit: Int) throws -> [(pos: UInt64, isRead: Bool)] {
        var out: [(pos: UInt64, isRead: Bool)] = []
        try walkNotifications(user: user, after: cursor, limit: limit) { row in
            out.append((row.pos, row.isRead))
            return true
        }
        return out
    }
}

/// One row of a user's notification index, read in place: valid only during the walk.
struct NotificationRow {
    var pos: UInt64
    var streamOrdering: Int64
    var highlight: Bool
    var room: UnsafeRawBufferPointer
    var thread: UnsafeRawBufferPointer
    /// Read under the contract's receipt rules (see ``ReceiptView/isUnread(streamOrdering:thread:)``).
    var isRead: Bool
}

extension StoreReadView {
    /// The walk behind every query of a user's pushable notifications: rows with pos > `cursor`
    /// in log order, until `body` returns false or `limit` rows were given. Rooms, threads and
    /// their receipts are compared and cached as the bytes in the map; no string is built.
    func walkNotifications(user: String, after cursor: UInt64, limit: Int,
                           _ body: (NotificationRow) throws -> Bool) throws {
        let prefix = Keys.userPrefix(user)
        var rooms: [ByteKey: RoomReceipts] = [:]
        var receiptKey = prefix
        func receipt(room: UnsafeRawBufferPointer, thread: UnsafeRawBufferPointer?) throws -> Int64 {
            receiptKey.removeSubrange(prefix.count...)
            Keys.appendReceiptTail(room: room, thread: thread, to: &receiptKey)
            return try ReceiptView.streamOrdering(txn.get(store.projections.receipts, receiptKey))
        }
        var n = 0
        try txn.forEach(store.projections.notifs, from: Keys.notif(user, cursor &+ 1)) { k, v in
            guard k.count == prefix.count + 8, k.starts(with: prefix), n < limit else { return false }
            let pos = BigEndianRead.uint64(k, at: prefix.count)
            guard pos > cursor else { return true }
            // NotifIndexValue: flags, stream ordering, room, thread.
            var r = ByteReader(v, what: "notification index")
            let flags = try r.byte()
            let so = Int64(bitPattern: try r.fixed64())
            let room = try r.rawBytes()
            let thread = try r.rawBytes()
            let roomKey = ByteKey(room)
            let known = rooms.index(forKey: roomKey)  // hashed once, for the read and the write back
            var receipts = try known.map { rooms.values[$0] } ?? RoomReceipts(unthreaded: receipt(room: room, thread: nil))
            var unread = so > receipts.unthreaded
            if unread {
                let threadKey = ByteKey(thread)
                let threadReceipt: Int64
                if let cached = receipts.thread(threadKey) {
                    threadReceipt = cached
                } else {
                    threadReceipt = try receipt(room: room, thread: thread)
                    receipts.setThread(threadKey, threadReceipt)
                }
                unread = so > threadReceipt
            }
            if let known {
                rooms.values[known] = receipts
            } else {
                // A backlog's rows are often each in another room: room for several at once.
                if rooms.isEmpty { rooms.reserveCapacity(min(limit, 64)) }
                rooms[roomKey] = receipts
            }
            n += 1
            return try body(NotificationRow(pos: pos, streamOrdering: so, highlight: flags & 1 != 0,
                                            room: room, thread: thread, isRead: !unread))
        }
    }
}

/// A room's receipts as read for one walk of a user's notifications.
private struct RoomReceipts {
    var unthreaded: Int64
    /// The first thread looked up (most rooms have one in a walk: the main timeline), kept
    /// without a dictionary, which would cost an allocation per room.
    private var first: (thread: ByteKey, receipt: Int64)?
    private var threads: [ByteKey: Int64] = [:]

    init(unthreaded: Int64) { self.unthreaded = unthreaded }

    func thread(_ key: ByteKey) -> Int64? {
        if let first, first.thread == key { return first.receipt }
        return threads[key]
    }

    mutating func setThread(_ key: ByteKey, _ receipt: Int64) {
        if first == nil { first = (key, receipt) } else { threads[key] = receipt }
    }
}

/// Bytes in the LMDB map as a dictionary key, hashed in one go. Trap: valid only inside the
/// read transaction the bytes come from (no copy is made).
private struct ByteKey: Hashable {
    let bytes: UnsafeRawBufferPointer

    init(_ raw: UnsafeRawBufferPointer) { bytes = raw }

    func hash(into hasher: inout Hasher) { hasher.combine(bytes: bytes) }

    static func == (a: ByteKey, b: ByteKey) -> Bool { RawJSON.equal(a.bytes, b.bytes) }
}
