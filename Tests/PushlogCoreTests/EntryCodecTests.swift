import Foundation
import PushlogCore
import Testing

@Suite("Entry codec")
struct EntryCodecTests {
    static let fullNotification = LogEntry.notification(PushNotification(
        userID: "@alice:example.org", roomID: "!r:example.org", eventID: "$e1", streamOrdering: 1_042,
        actions: [.string("notify"), .object(["set_tweak": .string("sound"), "value": .string("default")]),
                  .object(["set_tweak": .string("highlight")])],
        threadID: "$thread-root", receivedTS: 1_732_900_000_000,
        event: ["type": .string("m.room.message"), "sender": .string("@bob:example.org"),
                "content": .object(["msgtype": .string("m.text"), "body": .string("Hi! ünïcødé 🎉 \"quoted\"\n")]),
                "state_key": .string(""), "origin_server_ts": .int(1_732_900_000_000)],
        context: ["sender_display_name": .string("Bob"), "room_name": .string("Lunch"), "member_count": .int(3),
                  "room_avatar_url": .null]))

    static let bareNotification = LogEntry.notification(PushNotification(
        userID: "@a:x", roomID: "!r", eventID: "$e", streamOrdering: 0, actions: [], threadID: "main",
        receivedTS: 0, event: [:], context: nil))

    static let entries: [LogEntry] = [
        fullNotification,
        bareNotification,
        .notification(PushNotification(userID: "@a:x", roomID: "!r", eventID: "$e", streamOrdering: .max,
                                   actions: [.string("dont_notify")], receivedTS: .min, event: ["n": .double(1.5)])),
        .receipt(Receipt(userID: "@a:x", roomID: "!r", eventID: "$e", streamOrdering: 77, receiptType: .read,
                         threadID: nil, ts: 5)),
        .receipt(Receipt(userID: "@a:x", roomID: "!r", eventID: "$e", streamOrdering: -3, receiptType: .readPrivate,
                         threadID: "t1", ts: .max)),
        .pusherSet(PusherConfig(id: PusherID(userID: "@a:x", appID: "com.example", pushkey: "pk/+=="), kind: .http,
                                appDisplayName: "Element", deviceDisplayName: "Pixel", lang: "de",
                                profileTag: "tag", data: ["url": .string(gatewayURL), "format": .string("event_id_only"),
                                                          "org.matrix.msc4076.disable_badge_count": .bool(true)],
                                append: true, enabled: false, createdTS: 1_732_899_000_000)),
        .pusherSet(PusherConfig(id: PusherID(userID: "@a:x", appID: "m.email", pushkey: "a@example.org"), kind: .email,
                                appDisplayName: "", deviceDisplayName: "", lang: "", profileTag: nil, data: [:],
                                append: false, enabled: true, createdTS: 0)),
        .pusherRemoved(PusherID(userID: "@a:x", appID: "com.example", pushkey: "pk")),
    ]

    @Test("every entry type round-trips through encode and decode with its append time and pos", arguments: entries)
    func roundTrip(_ entry: LogEntry) throws {
        for ts: Int64 in [0, 1_732_900_000_123, .max] {
            let bytes = EntryCodec.encode(entry, ts: ts)
            #expect(bytes[0] == EntryCodec.format)
            let decoded = try bytes.withUnsafeBytes { try EntryCodec.decode($0, pos: 99) }
            #expect(decoded == LoggedEntry(pos: 99, ts: ts, entry: entry))
            #expect(bytes.withUnsafeBytes { EntryCodec.timestamp($0) } == ts)
        }
    }

    @Test("encoding is deterministic: the same entry always gives the same bytes")
    func deterministic() {
        for e in Self.entries {
            #expect(EntryCodec.encode(e, ts: 7) == EntryCodec.encode(e, ts: 7))
        }
    }

    @Test("a format byte other than the known one is refused, not guessed at")
    func wrongFormat() throws {
        var bytes = EntryCodec.encode(Self.fullNotification, ts: 1)
        for f: UInt8 in [0, 2, 255] {
            bytes[0] = f
            let e = #expect(throws: CorruptData.self) { try bytes.withUnsafeBytes { try EntryCodec.decode($0, pos: 12) } }
            #expect(e?.reason.contains("unknown format \(f)") == true)
            #expect(e?.what == "log entry 12")
            #expect(bytes.withUnsafeBytes { EntryCodec.timestamp($0) } == nil)
        }
    }

    @Test("an unknown entry type is refused")
    func wrongType() {
        var bytes = EntryCodec.encode(Self.bareNotification, ts: 1)
        bytes[1] = 9
        #expect(throws: CorruptData.self) { try bytes.withUnsafeBytes { try EntryCodec.decode($0, pos: 1) } }
    }

    @Test("every truncation of an encoded entry is refused", arguments: entries)
    func truncated(_ entry: LogEntry) {
        let bytes = EntryCodec.encode(entry, ts: 1_732_900_000_000)
        for n in 0..<bytes.count {
            let prefix = Array(bytes[..<n])
            #expect(throws: CorruptData.self, "prefix of \(n) of \(bytes.count) bytes") {
                try prefix.withUnsafeBytes { try EntryCodec.decode($0, pos: 1) }
            }
        }
    }

    @Test("trailing bytes after an entry are refused")
    func trailing() {
        let bytes = EntryCodec.encode(Self.fullNotification, ts: 1) + [0]
        let e = #expect(throws: CorruptData.self) { try bytes.withUnsafeBytes { try EntryCodec.decode($0, pos: 1) } }
        #expect(e?.reason.contains("trailing") == true)
    }

    @Test("a length beyond the entry, up to 2^64-1, is refused, not trapped on")
    func hugeLength() {
        // Found by the decoder fuzzer: a varint length above Int.max trapped in Int(_:).
        // The user id's length, the first field after the header of every entry type; as a
        // notification (type 1) the in-place reader meets it too.
        var header = Array(EntryCodec.encode(.pusherRemoved(PusherID(userID: "@ab:x", appID: "a", pushkey: "k")), ts: 1).prefix(10))
        header[1] = 1
        let lengths: [[UInt8]] = [
            [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],  // 2^64-1
            [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],  // 2^63
            [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],        // 2^63-1: i + n overflowed
            [0x06],                                                        // one past the end
        ]
        for length in lengths {
            let bytes = header + length + Array("@ab:x".utf8)
            let e = #expect(throws: CorruptData.self) { try bytes.withUnsafeBytes { try EntryCodec.decode($0, pos: 1) } }
            #expect(e?.reason.contains("truncated") == true, "\(length)")
            #expect(bytes.withUnsafeBytes { RawNotification($0) } == nil)
        }
    }

    @Test("a string with invalid UTF-8 inside an entry is refused")
    func invalidUTF8() {
        // The user id is the first string, right after the 10-byte header: 1-byte length, then bytes.
        var bytes = EntryCodec.encode(.pusherRemoved(PusherID(userID: "@ab:x", appID: "a", pushkey: "k")), ts: 1)
        #expect(bytes[10] == 5)
        bytes[11] = 0xFF
        #expect(throws: CorruptData.self) { try bytes.withUnsafeBytes { try EntryCodec.decode($0, pos: 1) } }
    }
}

extension LogEntry: CustomTestStringConvertible {
    public var testDescription: String {
        switch self {
        case .notification(let n): "notification(\(n.eventID), actions: \(n.actions.count), context: \(n.context != nil))"
        case .receipt(let r): "receipt(\(r.receiptType.rawValue), thread: \(r.threadID ?? "nil"))"
        case .pusherSet(let p): "pusherSet(\(p.kind.rawValue), enabled: \(p.enabled))"
        case .pusherRemoved: "pusherRemoved"
        }
    }
}
