/// The binary form of log entries:
/// `[format u8][type u8][ts u64 BE]` then the entry's fields, strings and JSON as
/// varint length + UTF-8 bytes, integers as zigzag varints. Format 1 is the only one so far;
/// a reader refuses formats it does not know rather than guess.
public enum EntryCodec {
    public static let format: UInt8 = 1

    enum TypeCode: UInt8 {
        case notification = 1, receipt = 2, pusherSet = 3, pusherRemoved = 4
    }

    public static func encode(_ entry: LogEntry, ts: Int64) -> [UInt8] {
        var memo = EncodeMemo()
        return encode(entry, ts: ts, memo: &memo)
    }

    /// The JSON last written for a notification's actions, event and context, kept across the
    /// entries of one append. The notifications of one event to many users share these values'
    /// storage (a follower decodes the event once for all of them), and a value whose storage is
    /// the one remembered is the same value: its bytes are copied, not written again. Any other
    /// value is written as usual, so the bytes never differ from ``encode(_:ts:)``'s.
    struct EncodeMemo {
        var actions = Remembered<[JSON]>()
        var event = Remembered<[String: JSON]>()
        var context = Remembered<[String: JSON]>()

        struct Remembered<Value> {
            var value: Value?
            var bytes: [UInt8] = []

            /// Whether `v` is the remembered value by identity: the same bits, hence the same
            /// storage (held alive here), hence the same contents.
            func holds(_ v: Value) -> Bool {
                guard let value else { return false }
                return withUnsafeBytes(of: value) { a in withUnsafeBytes(of: v) { b in a.elementsEqual(b) } }
            }

            mutating func write(_ v: Value, _ json: JSON, to w: inout ByteWriter) {
                if holds(v) {
                    w.bytes.append(contentsOf: bytes)
                    return
                }
                let start = w.bytes.count
                w.json(json)
                value = v
                bytes = Array(w.bytes[start...])
            }
        }
    }

    static func encode(_ entry: LogEntry, ts: Int64, memo: inout EncodeMemo) -> [UInt8] {
        var w = ByteWriter(capacity: 512)
        w.byte(format)
        switch entry {
        case .notification(let n):
            w.byte(TypeCode.notification.rawValue)
            w.fixed64(UInt64(bitPattern: ts))
            w.string(n.userID); w.string(n.roomID); w.string(n.eventID)
            w.int(n.streamOrdering)
            memo.actions.write(n.actions, .array(n.actions), to: &w)
            w.string(n.threadID)
            w.int(n.receivedTS)
            memo.event.write(n.event, .object(n.event), to: &w)
            if let c = n.context { w.byte(1); memo.context.write(c, .object(c), to: &w) } else { w.byte(0) }
        case .receipt(let r):
            w.byte(TypeCode.receipt.rawValue)
            w.fixed64(UInt64(bitPattern: ts))
            w.string(r.userID); w.string(r.roomID); w.string(r.eventID)
            w.int(r.streamOrdering)
            w.byte(r.receiptType == .read ? 0 : 1)
            w.optionalString(r.threadID)
            w.int(r.ts)
        case .pusherSet(let p):
            w.byte(TypeCode.pusherSet.rawValue)
            w.fixed64(UInt64(bitPattern: ts))
            w.string(p.id.userID); w.string(p.id.appID); w.string(p.id.pushkey)
            w.byte(p.kind.code)
            w.string(p.appDisplayName); w.string(p.deviceDisplayName); w.string(p.lang)
            w.optionalString(p.profileTag)
            w.json(.object(p.data))
            w.byte((p.append ? 1 : 0) | (p.enabled ? 2 : 0))
            w.int(p.createdTS)
        case .pusherRemoved(let id):
            w.byte(TypeCode.pusherRemoved.rawValue)
            w.fixed64(UInt64(bitPattern: ts))
            w.string(id.userID); w.string(id.appID); w.string(id.pushkey)
        }
        return w.bytes
    }

    /// Decodes an entry; throws `CorruptData` naming what was wrong.
    public static func decode(_ bytes: UnsafeRawBufferPointer, pos: UInt64) throws -> LoggedEntry {
        var r = ByteReader(bytes, what: "log entry \(pos)")
        let (type, ts) = try readHeader(&r)
        let entry: LogEntry
        switch type {
        case .notification:
            let f = try NotificationFields.read(&r)
            guard case .array(let actions) = try r.json(f.actions, "actions") else { throw r.corrupt("actions") }
            guard case .object(let ev) = try r.json(f.event, "event") else { throw r.corrupt("event") }
            var context: [String: JSON]?
            if let c = f.context {
                guard case .object(let object) = try r.json(c, "context") else { throw r.corrupt("context") }
                context = object
            }
            entry = .notification(PushNotification(userID: try r.string(f.userID), roomID: try r.string(f.roomID),
                                               eventID: try r.string(f.eventID), streamOrdering: f.streamOrdering,
                                               actions: actions, threadID: try r.string(f.threadID),
                                               receivedTS: f.receivedTS, event: ev, context: context))
        case .receipt:
            let user = try r.string(), room = try r.string(), event = try r.string()
            let so = try r.int()
            let type: ReceiptType = try r.byte() == 0 ? .read : .readPrivate
            let thread = try r.optionalString()
            let rts = try r.int()
            entry = .receipt(Receipt(userID: user, roomID: room, eventID: event, streamOrdering: so,
                                     receiptType: type, threadID: thread, ts: rts))
        case .pusherSet:
            let id = PusherID(userID: try r.string(), appID: try r.string(), pushkey: try r.string())
            guard let kind = PusherKind(code: try r.byte()) else { throw r.corrupt("pusher kind") }
            let appName = try r.string(), devName = try r.string(), lang = try r.string()
            let tag = try r.optionalString()
            guard case .object(let data) = try r.json() else { throw r.corrupt("pusher data") }
            let flags = try r.byte()
            let created = try r.int()
            entry = .pusherSet(PusherConfig(id: id, kind: kind, appDisplayName: appName, deviceDisplayName: devName,
                                            lang: lang, profileTag: tag, data: data, append: flags & 1 != 0,
                                            enabled: flags & 2 != 0, createdTS: created))
        case .pusherRemoved:
            entry = .pusherRemoved(PusherID(userID: try r.string(), appID: try r.string(), pushkey: try r.string()))
        }
        guard r.atEnd else { throw r.corrupt("trailing bytes") }
        return LoggedEntry(pos: pos, ts: ts, entry: entry)
    }

    /// Reads only the append time of an encoded entry (for time → pos lookups).
    public static func timestamp(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        guard bytes.count >= 10, bytes[0] == format else { return nil }
        return Int64(bitPattern: BigEndianRead.uint64(bytes, at: 2))
    }
}
