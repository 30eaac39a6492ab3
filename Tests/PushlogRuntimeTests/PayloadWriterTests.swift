@testable import PushlogCore
import Testing
@testable import PushlogRuntime

/// The delivery engine writes bodies from the stored bytes (``PayloadWriter``); these tests hold
/// it to the reference, ``GatewayPayload/notification(_:pusher:badge:options:)``, byte for byte.
@Suite("Bodies written in place from stored entries")
struct PayloadWriterTests {
    static let url: JSON = .string("http://gw/_matrix/push/v1/notify")

    static let pushers: [PusherConfig] = [
        PusherConfig(id: PusherID(userID: "@alice:example.org", appID: "org.example.app", pushkey: "pk"),
                     kind: .http, data: ["url": url, "custom_key": .string("v")], createdTS: 1_795_973_302_123),
        PusherConfig(id: PusherID(userID: "@alice:example.org", appID: "org.example.app", pushkey: "pk2"),
                     kind: .http, data: ["url": url, "format": .string("event_id_only")], createdTS: 1_000),
        PusherConfig(id: PusherID(userID: "@alice:example.org", appID: "a\"pp", pushkey: "p\\k\n"),
                     kind: .http, data: ["url": url, "org.matrix.msc4076.disable_badge_count": .bool(true),
                                         "nested": .object(["b": .int(2), "a": .array([.null, .double(1.5)])])],
                     createdTS: 5),
        PusherConfig(id: PusherID(userID: "@alice:example.org", appID: "x", pushkey: "y"),
                     kind: .http, data: ["url": url, "format": .string("event_id_only"),
                                         "org.matrix.msc4076.disable_badge_count": .bool(true)], createdTS: 5),
    ]

    static let actionSets: [[JSON]] = [
        [.string("notify")],
        [.string("notify"), .object(["set_tweak": .string("sound"), "value": .string("default")])],
        [.string("notify"), .object(["set_tweak": .string("highlight"), "value": .bool(false)])],
        [.string("notify"), .object(["set_tweak": .string("highlight")])],
        [.string("notify"), .object(["set_tweak": .string("sound"), "value": .string("")]),
         .object(["set_tweak": .string("custom"), "value": .object(["z": .int(1), "a": .string("é\"")])])],
    ]

    static func notifications() -> [PushNotification] {
        var out: [PushNotification] = []
        let contexts: [[String: JSON]?] = [
            nil, [:],
            ["sender_display_name": .string("Bob"), "room_name": .string("Lunch \"room\""), "room_alias": .string("#l:x")],
            ["sender_display_name": .int(3), "room_name": .null, "other": .string("x")],
        ]
        for (i, actions) in actionSets.enumerated() {
            for context in contexts {
                out.append(note(i, actions: actions, context: context))
                out.append(note(i, actions: actions, type: "m.room.encrypted", context: context))
                out.append(note(i, actions: actions, type: "m.room.member", context: context, stateKey: "@alice:example.org",
                                content: ["membership": .string("invite"), "displayname": .string("A\u{1}")]))
                out.append(note(i, actions: actions, type: "m.room.member", context: context, stateKey: "@other:example.org",
                                content: ["membership": .string("join")]))
            }
        }
        // Oddities: no type, a type that is not a string, a member event without state_key or
        // membership, a sender that is not a string, content that is not an object, ids that need
        // escaping, a state_key with an escape.
        var odd = note(90)
        odd.event["type"] = nil
        out.append(odd)
        odd = note(91)
        odd.event["type"] = .int(4)
        out.append(odd)
        odd = note(92, type: "m.room.member", content: [:])
        out.append(odd)
        odd = note(93)
        odd.event["sender"] = .array([.string("@x:y")])
        odd.event["content"] = .string("text")
        out.append(odd)
        odd = note(94, user: "@a\"b:example.org", room: "!r\\oom:example.org", type: "m.room.member",
                   stateKey: "@a\"b:example.org", content: ["membership": .string("leave")])
        odd.eventID = "$e\u{7}94"
        out.append(odd)
        odd = note(95)
        odd.event["content"] = nil
        out.append(odd)
        return out
    }

    @Test("every format, tweak, context and event shape gives the reference's bytes")
    func sameBytesAsTheReference() throws {
        let writer = PayloadWriter()
        var compared = 0
        for n in Self.notifications() {
            let stored = EntryCodec.encode(.notification(n), ts: 1_234)
            for config in Self.pushers {
                let prepared = PayloadWriter.PreparedPusher(record: [], config: config)
                for includeContent in [true, false] {
                    for badge in [0, 7, 10, 12_345] {
                        let reference = GatewayPayload.notification(n, pusher: config, badge: badge,
                                                                    options: .init(includeContent: includeContent)).serialized()
                        let written = try stored.withUnsafeBytes { bytes -> [UInt8]? in
                            let raw = try #require(RawNotification(bytes))
                            #expect(raw.ts == 1_234)
                            #expect(raw.receivedTS == n.receivedTS)
                            return writer.notification(raw, pusher: prepared, badge: badge, includeContent: includeContent)
                        }
                        #expect(written.map { String(decoding: $0, as: UTF8.self) } == String(decoding: reference, as: UTF8.self),
                                "event \(n.eventID), pusher \(config.id.pushkey), content \(includeContent)")
                        compared += 1
                    }
                }
            }
        }
        #expect(compared > 1_000)
    }

    @Test("entries that are not notifications, or are damaged, are not read in place")
    func notReadInPlace() {
        let receipt = EntryCodec.encode(.receipt(Receipt(userID: "@a:x", roomID: "!r:x", eventID: "$e", streamOrdering: 1,
                                                         receiptType: .read, threadID: nil, ts: 1)), ts: 1)
        #expect(receipt.withUnsafeBytes { RawNotification($0) } == nil)
        let good = EntryCodec.encode(.notification(note(1)), ts: 1)
        #expect(good.withUnsafeBytes { RawNotification($0) } != nil)
        for cut in [1, 5, 20, good.count / 2, good.count - 1] {
            let truncated = Array(good.prefix(cut))
            #expect(truncated.withUnsafeBytes { RawNotification($0) } == nil, "cut at \(cut)")
        }
        var trailing = good
        trailing.append(0)
        #expect(trailing.withUnsafeBytes { RawNotification($0) } == nil)
        var unknownFormat = good
        unknownFormat[0] = 9
        #expect(unknownFormat.withUnsafeBytes { RawNotification($0) } == nil)
    }

    @Test("an event that is not well-formed JSON gives no body (the slow path reports it)")
    func malformedEventText() {
        let writer = PayloadWriter()
        let prepared = PayloadWriter.PreparedPusher(record: [], config: Self.pushers[0])
        for text in [#"{"type":"m.x""#, #"{"type" "m.x"}"#, #"["type"]"#, #"{"a":{"b":[1,2}"#, #"{"a":"unterminated}"#, ""] {
            let stored = Self.entry(eventText: text)
            let body = stored.withUnsafeBytes { bytes -> [UInt8]? in
                guard let raw = RawNotification(bytes) else { return nil }
                return writer.notification(raw, pusher: prepared, badge: 1, includeContent: true)
            }
            #expect(body == nil, "\(text)")
        }
    }

    @Test("the raw JSON reader finds members and skips nested values, strings with escapes and whitespace")
    func rawJSONMembers() {
        let text = #" { "a" : [1, {"x":"}"}], "b\"c":"q\\\"}" ,"d":-1.5e3,"e":{"f":{"g":[]}} } "#
        var seen: [(String, String)] = []
        let ok = Array(text.utf8).withUnsafeBytes { b in
            RawJSON.forEachMember(b) { k, v in
                seen.append((String(decoding: k, as: UTF8.self), String(decoding: v, as: UTF8.self)))
            }
        }
        #expect(ok)
        #expect(seen.map(\.0) == [#""a""#, #""b\"c""#, #""d""#, #""e""#])
        #expect(seen.map(\.1) == [#"[1, {"x":"}"}]"#, #""q\\\"}""#, "-1.5e3", #"{"f":{"g":[]}}"#])
    }

    /// A stored notification whose event text is `eventText`, whatever it is.
    static func entry(eventText: String) -> [UInt8] {
        var w = ByteWriter()
        w.byte(EntryCodec.format)
        w.byte(1)  // notification
        w.fixed64(1)
        w.string("@a:x"); w.string("!r:x"); w.string("$e")
        w.int(1)
        w.json(.array([.string("notify")]))
        w.string("main")
        w.int(1)
        w.string(eventText)
        w.byte(0)
        return w.bytes
    }
}
