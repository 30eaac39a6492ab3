import LMDB
#if canImport(Glibc)
import Glibc
#endif

/// A stored notification read in place: the fields a push needs as slices of the entry's bytes
/// (``EntryCodec`` format 1), with no `String`, dictionary or `JSON` value built.
///
/// Why: the HTTP pusher's hot path used to decode every entry into a ``Notification`` (a JSON
/// parse of the event into dictionaries) only to serialise most of it again into the body.
/// The event, actions and context are stored as canonical JSON text (sorted keys, our own
/// writer), so the body can copy their values verbatim; see ``RawJSON``.
///
/// Traps:
/// - The slices point into the LMDB map: valid only inside the read transaction that
///   produced the bytes.
/// - Strings are raw UTF-8 as stored, not JSON-escaped.
/// - ``init(_:)`` returns nil for anything it does not fully understand (another entry type, a
///   format it does not know, truncated bytes); the caller then takes the slow path
///   (``EntryCodec/decode(_:pos:)``), which names what is wrong.
public struct RawNotification {
    /// When the entry was appended to the log (milliseconds).
    public let ts: Int64
    public let receivedTS: Int64
    public let userID: UnsafeRawBufferPointer
    public let roomID: UnsafeRawBufferPointer
    public let eventID: UnsafeRawBufferPointer
    /// JSON text of the push-rule actions (an array).
    public let actions: UnsafeRawBufferPointer
    /// JSON text of the event (an object).
    public let event: UnsafeRawBufferPointer
    /// JSON text of the context (an object), when there is one.
    public let context: UnsafeRawBufferPointer?

    public init?(_ bytes: UnsafeRawBufferPointer) {
        var r = ByteReader(bytes, what: "")
        guard let f = try? r.byte(), f == EntryCodec.format,
              let t = try? r.byte(), t == EntryCodec.TypeCode.notification.rawValue,
              let ts = try? r.fixed64(),
              let user = try? r.rawBytes(), let room = try? r.rawBytes(), let event = try? r.rawBytes(),
              (try? r.int()) != nil,
              let actions = try? r.rawBytes(),
              (try? r.rawBytes()) != nil,  // thread
              let received = try? r.int(),
              let ev = try? r.rawBytes(),
              let hasContext = try? r.byte()
        else { return nil }
        var context: UnsafeRawBufferPointer?
        if hasContext == 1 {
            guard let c = try? r.rawBytes() else { return nil }
            context = c
        } else if hasContext != 0 {
            return nil
        }
        guard r.atEnd else { return nil }
        self.ts = Int64(bitPattern: ts)
        self.receivedTS = received
        self.userID = user
        self.roomID = room
        self.eventID = event
        self.actions = actions
        self.event = ev
        self.context = context
    }
}

/// What the HTTP pusher reads for one push, in place (see ``RawNotification``): valid only
/// inside the ``StoreReadView``'s transaction.
public struct RawPushInput {
    /// The pusher's stored record: compare it with a cached copy before decoding it again.
    public let pusherRecord: UnsafeRawBufferPointer
    public let state: ConsumerState
    /// The log entry's bytes; nil when it was compacted away.
    public let entry: UnsafeRawBufferPointer?

    /// The pusher's config, decoded from ``pusherRecord``.
    public func decodePusher() throws -> PusherConfig { try PusherRecord.decode(pusherRecord) }
}

extension StoreReadView {
    /// The pusher at `key` (nil when removed) and the entry at `pos`, read in place: what
    /// ``pushInput(key:pos:rule:)`` decodes, apart from the badge (see
    /// ``badge(user:rule:cache:globalBeforeRead:)``).
    public func rawPushInput(key: [UInt8], pos: UInt64) throws -> RawPushInput? {
        guard let p = try txn.get(store.projections.pushers, key), let s = try txn.get(store.consumers, key) else { return nil }
        let entry = try withUnsafeBytes(of: pos.bigEndian) { try txn.get(store.log, $0) }  // Keys.pos, without an array
        return RawPushInput(pusherRecord: p, state: try ConsumerState.decode(s), entry: entry)
    }
}

/// Reading canonical JSON text in place: members of an object as slices, values skipped without
/// being built. Tolerates whitespace; refuses (returns nil/false) what is not well formed enough
/// to be skipped safely. It does not validate what it skips (numbers, escapes): it is meant for
/// text our own writer produced.
public enum RawJSON {
    /// Calls `body(key, value)` for each member of the object in `text`, `key` being the key's
    /// token with its quotes, `value` the value's whole text. Returns false (possibly after
    /// some calls) when `text` is not an object.
    @discardableResult
    public static func forEachMember(_ text: UnsafeRawBufferPointer,
                                     _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) -> Bool {
        var i = 0
        skipSpace(text, &i)
        guard i < text.count, text[i] == UInt8(ascii: "{") else { return false }
        i += 1
        skipSpace(text, &i)
        if i < text.count, text[i] == UInt8(ascii: "}") { return true }
        while true {
            skipSpace(text, &i)
            guard i < text.count, text[i] == UInt8(ascii: "\"") else { return false }
            let keyStart = i
            guard skipValue(text, &i) else { return false }
            let key = UnsafeRawBufferPointer(rebasing: text[keyStart..<i])
            skipSpace(text, &i)
            guard i < text.count, text[i] == UInt8(ascii: ":") else { return false }
            i += 1
            skipSpace(text, &i)
            let valueStart = i
            guard skipValue(text, &i) else { return false }
            body(key, UnsafeRawBufferPointer(rebasing: text[valueStart..<i]))
            skipSpace(text, &i)
            guard i < text.count else { return false }
            if text[i] == UInt8(ascii: "}") { return true }
            guard text[i] == UInt8(ascii: ",") else { return false }
            i += 1
        }
    }

    /// The value of member `key` (given with its quotes, e.g. `"type"`), if the object has one.
    public static func member(_ text: UnsafeRawBufferPointer, _ key: StaticString) -> UnsafeRawBufferPointer? {
        var found: UnsafeRawBufferPointer?
        let name = UnsafeRawBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)
        forEachMember(text) { k, v in
            if found == nil, equal(k, name) { found = v }
        }
        return found
    }

    /// Whether a value's text is a string token.
    public static func isString(_ value: UnsafeRawBufferPointer) -> Bool {
        value.count >= 2 && value[0] == UInt8(ascii: "\"")
    }

    public static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        a.count == b.count && (a.isEmpty || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0)
    }

    public static func equal(_ a: UnsafeRawBufferPointer, _ b: StaticString) -> Bool {
        equal(a, UnsafeRawBufferPointer(start: b.utf8Start, count: b.utf8CodeUnitCount))
    }

    /// Whether the string token `token` (quotes included) holds exactly the bytes `raw`. A token
    /// with escapes is decoded first (rare: our writer escapes only `"`, `\` and controls).
    public static func stringToken(_ token: UnsafeRawBufferPointer, equals raw: UnsafeRawBufferPointer) -> Bool {
        guard isString(token) else { return false }
        let inner = UnsafeRawBufferPointer(rebasing: token[1..<token.count - 1])
        if !inner.contains(UInt8(ascii: "\\")) { return equal(inner, raw) }
        guard case .string(let s)? = try? JSON.parse(token) else { return false }
        return Array(s.utf8).withUnsafeBytes { equal($0, raw) }
    }

    @inline(__always)
    static func skipSpace(_ t: UnsafeRawBufferPointer, _ i: inout Int) {
        while i < t.count, t[i] == 0x20 || t[i] == 0x0A || t[i] == 0x0D || t[i] == 0x09 { i += 1 }
    }

    /// Moves `i` past the value starting at `i`.
    static func skipValue(_ t: UnsafeRawBufferPointer, _ i: inout Int) -> Bool {
        guard i < t.count else { return false }
        switch t[i] {
        case UInt8(ascii: "\""):
            return skipString(t, &i)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            while i < t.count {
                switch t[i] {
                case UInt8(ascii: "\""):
                    guard skipString(t, &i) else { return false }
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 {
                        i += 1
                        return true
                    }
                default:
                    break
                }
                i += 1
            }
            return false
        default:
            let start = i
            while i < t.count {
                let b = t[i]
                if b == UInt8(ascii: ",") || b == UInt8(ascii: "}") || b == UInt8(ascii: "]") || b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { break }
                i += 1
            }
            return i > start
        }
    }

    private static func skipString(_ t: UnsafeRawBufferPointer, _ i: inout Int) -> Bool {
        i += 1  // the opening quote
        while i < t.count {
            switch t[i] {
            case UInt8(ascii: "\\"): i += 2
            case UInt8(ascii: "\""):
                i += 1
                return true
            default: i += 1
            }
        }
        return false
    }
}

extension StoreReadView {
    /// The pos of each of `user`'s pushable notifications after `cursor` (at most `limit`), in log
    /// order, with whether it was read: ``notifications(user:after:limit:)`` without building the
    /// room and thread strings (rooms and their receipts are compared and cached as bytes).
    public func notificationPositions(user: String, after cursor: UInt64, limit: Int) throws -> [(pos: UInt64, isRead: Bool)] {
        var out: [(pos: UInt64, isRead: Bool)] = []
        try store.walkNotifications(user: user, after: cursor, limit: limit, txn: txn) { row in
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

extension Store {
    /// The walk behind every query of a user's pushable notifications: rows with pos > `cursor`
    /// in log order, until `body` returns false or `limit` rows were given. Rooms, threads and
    /// their receipts are compared and cached as the bytes in the map; no string is built.
    func walkNotifications(user: String, after cursor: UInt64, limit: Int, txn: Transaction,
                           _ body: (NotificationRow) throws -> Bool) throws {
        let prefix = Keys.userPrefix(user)
        var rooms: [ByteKey: RoomReceipts] = [:]
        var receiptKey = prefix
        func receipt(room: UnsafeRawBufferPointer, thread: UnsafeRawBufferPointer?) throws -> Int64 {
            receiptKey.removeSubrange(prefix.count...)
            Keys.appendReceiptTail(room: room, thread: thread, to: &receiptKey)
            return try ReceiptView.streamOrdering(txn.get(projections.receipts, receiptKey))
        }
        var n = 0
        try txn.forEach(projections.notifs, from: Keys.notif(user, cursor &+ 1)) { k, v in
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
            var receipts = try rooms[roomKey] ?? RoomReceipts(unthreaded: receipt(room: room, thread: nil))
            var unread = so > receipts.unthreaded
            if unread {
                let threadKey = ByteKey(thread)
                let threadReceipt: Int64
                if let known = receipts.threads[threadKey] {
                    threadReceipt = known
                } else {
                    threadReceipt = try receipt(room: room, thread: thread)
                    receipts.threads[threadKey] = threadReceipt
                }
                unread = so > threadReceipt
            }
            rooms[roomKey] = receipts
            n += 1
            return try body(NotificationRow(pos: pos, streamOrdering: so, highlight: flags & 1 != 0,
                                            room: room, thread: thread, isRead: !unread))
        }
    }
}

/// A room's receipts as read for one walk of a user's notifications.
private struct RoomReceipts {
    var unthreaded: Int64
    var threads: [ByteKey: Int64] = [:]
}

/// Bytes in the LMDB map as a dictionary key, hashed in one go. Trap: valid only inside the
/// read transaction the bytes come from (no copy is made).
private struct ByteKey: Hashable {
    let bytes: UnsafeRawBufferPointer

    init(_ raw: UnsafeRawBufferPointer) { bytes = raw }

    func hash(into hasher: inout Hasher) { hasher.combine(bytes: bytes) }

    static func == (a: ByteKey, b: ByteKey) -> Bool { RawJSON.equal(a.bytes, b.bytes) }
}
