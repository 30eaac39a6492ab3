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
        var w = ByteWriter(capacity: 512)
        w.byte(format)
        switch entry {
        case .notification(let n):
            w.byte(TypeCode.notification.rawValue)
            w.fixed64(UInt64(bitPattern: ts))
            w.string(n.userID); w.string(n.roomID); w.string(n.eventID)
            w.int(n.streamOrdering)
            w.json(.array(n.actions))
            w.string(n.threadID)
            w.int(n.receivedTS)
            w.json(.object(n.event))
            if let c = n.context { w.byte(1); w.json(.object(c)) } else { w.byte(0) }
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
        let f = try r.byte()
        guard f == format else { throw r.corrupt("unknown format \(f)") }
        guard let type = TypeCode(rawValue: try r.byte()) else { throw r.corrupt("unknown entry type") }
        let ts = Int64(bitPattern: try r.fixed64())
        let entry: LogEntry
        switch type {
        case .notification:
            let user = try r.string(), room = try r.string(), event = try r.string()
            let so = try r.int()
            guard case .array(let actions) = try r.json() else { throw r.corrupt("actions") }
            let thread = try r.string()
            let received = try r.int()
            guard case .object(let ev) = try r.json() else { throw r.corrupt("event") }
            var context: [String: JSON]?
            if try r.byte() == 1 {
                guard case .object(let c) = try r.json() else { throw r.corrupt("context") }
                context = c
            }
            entry = .notification(Notification(userID: user, roomID: room, eventID: event, streamOrdering: so,
                                               actions: actions, threadID: thread, receivedTS: received,
                                               event: ev, context: context))
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

/// Stored data that cannot be what we wrote: a bug or a damaged file.
public struct CorruptData: Error, CustomStringConvertible, Sendable {
    public let what: String
    public let reason: String
    public init(what: String, reason: String) {
        self.what = what
        self.reason = reason
    }
    public var description: String { "corrupt \(what): \(reason)" }
}

struct ByteWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 128) { bytes.reserveCapacity(capacity) }

    mutating func byte(_ b: UInt8) { bytes.append(b) }

    mutating func fixed64(_ v: UInt64) {
        withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func fixed32(_ v: UInt32) {
        withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func int(_ v: Int64) { varint(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }

    mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { u in
            varint(UInt64(u.count))
            bytes.append(contentsOf: u)
        }
    }

    mutating func optionalString(_ s: String?) {
        if let s { byte(1); string(s) } else { byte(0) }
    }

    /// JSON text behind a varint length: written in place, then the length is slotted in front.
    mutating func json(_ v: JSON) {
        let start = bytes.count
        bytes.append(0)  // room for a one-byte length, the common case
        v.write(to: &bytes)
        let n = bytes.count - start - 1
        if n < 0x80 {
            bytes[start] = UInt8(n)
        } else {
            var prefix = ByteWriter(capacity: 4)
            prefix.varint(UInt64(n))
            bytes.replaceSubrange(start..<start + 1, with: prefix.bytes)
        }
    }
}

struct ByteReader {
    let buf: UnsafeRawBufferPointer
    var i = 0
    let what: String

    init(_ buf: UnsafeRawBufferPointer, what: String) {
        self.buf = buf
        self.what = what
    }

    var atEnd: Bool { i == buf.count }

    func corrupt(_ reason: String) -> CorruptData { CorruptData(what: what, reason: "\(reason) at byte \(i)") }

    mutating func byte() throws -> UInt8 {
        guard i < buf.count else { throw corrupt("truncated") }
        defer { i += 1 }
        return buf[i]
    }

    mutating func fixed64() throws -> UInt64 {
        guard i + 8 <= buf.count else { throw corrupt("truncated") }
        defer { i += 8 }
        return BigEndianRead.uint64(buf, at: i)
    }

    mutating func varint() throws -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            guard shift < 64 else { throw corrupt("varint too long") }
            v |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
        }
    }

    mutating func int() throws -> Int64 {
        let u = try varint()
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    mutating func rawBytes() throws -> UnsafeRawBufferPointer {
        // Compared as UInt64 before any conversion: a damaged length can be anything up to
        // 2^64-1, which `Int(_:)` (and `i + n`) would trap on.
        let length = try varint()
        guard length <= UInt64(buf.count - i) else { throw corrupt("truncated") }
        let n = Int(length)
        defer { i += n }
        return UnsafeRawBufferPointer(rebasing: buf[i..<i + n])
    }

    mutating func string() throws -> String {
        let b = try rawBytes()
        guard let s = String(validating: b, as: UTF8.self) else { throw corrupt("invalid UTF-8") }
        return s
    }

    mutating func optionalString() throws -> String? {
        try byte() == 1 ? try string() : nil
    }

    mutating func json() throws -> JSON {
        let b = try rawBytes()
        do { return try JSON.parse(b) } catch { throw corrupt("bad JSON: \(error)") }
    }
}

enum BigEndianRead {
    @inline(__always)
    static func uint64(_ b: UnsafeRawBufferPointer, at offset: Int) -> UInt64 {
        b.loadUnaligned(fromByteOffset: offset, as: UInt64.self).bigEndian
    }

    @inline(__always)
    static func uint32(_ b: UnsafeRawBufferPointer, at offset: Int) -> UInt32 {
        b.loadUnaligned(fromByteOffset: offset, as: UInt32.self).bigEndian
    }
}
