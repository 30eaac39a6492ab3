import Foundation
import PushlogCore
import Testing

/// Runs `body`, expects an `InputError`, and checks the field it names and its kind.
@discardableResult
func expectInputError(field: String, kind: InputError.Kind? = nil, _ comment: Comment? = nil,
                      sourceLocation: SourceLocation = #_sourceLocation,
                      _ body: () throws -> Any) -> InputError? {
    let e = #expect(throws: InputError.self, comment, sourceLocation: sourceLocation) { _ = try body() }
    #expect(e?.field == field, comment, sourceLocation: sourceLocation)
    if let kind { #expect(e?.kind == kind, comment, sourceLocation: sourceLocation) }
    if let e, !field.isEmpty { #expect(e.description.contains(field), sourceLocation: sourceLocation) }
    return e
}

func with(_ base: [String: JSON], _ changes: [String: JSON?]) -> JSON {
    var o = base
    for (k, v) in changes { o[k] = v }
    return .object(o)
}

let now: Int64 = 1_732_900_000_000

@Suite("Validating notifications")
struct NotificationValidationTests {
    static let valid: [String: JSON] = [
        "user_id": .string("@alice:example.org"), "room_id": .string("!r:example.org"), "event_id": .string("$e1"),
        "stream_ordering": .int(1_042),
        "actions": .array([.string("notify"), .object(["set_tweak": .string("sound"), "value": .string("default")]),
                           .object(["set_tweak": .string("highlight")])]),
        "event": .object(["type": .string("m.room.message"), "sender": .string("@bob:example.org"),
                          "content": .object(["msgtype": .string("m.text"), "body": .string("Hi!")])]),
    ]

    func decode(_ changes: [String: JSON?]) throws -> PushNotification {
        try EntryDecoder.notification(with(Self.valid, changes), now: now)
    }

    @Test("a valid notification decodes, with thread_id defaulting to main and received_ts to now")
    func valid() throws {
        let n = try decode([:])
        #expect(n.userID == "@alice:example.org")
        #expect(n.roomID == "!r:example.org")
        #expect(n.eventID == "$e1")
        #expect(n.streamOrdering == 1_042)
        #expect(n.threadID == "main")
        #expect(n.receivedTS == now)
        #expect(n.notifies)
        #expect(n.highlights)
        #expect(n.context == nil)
        let m = try decode(["thread_id": .string("$root"), "received_ts": .int(5),
                            "context": .object(["room_name": .string("Lunch"), "member_count": .int(3)])])
        #expect(m.threadID == "$root")
        #expect(m.receivedTS == 5)
        #expect(m.context?["room_name"] == .string("Lunch"))
    }

    @Test("a notification whose actions lack notify is accepted but does not notify")
    func nonNotify() throws {
        let n = try decode(["actions": .array([.string("dont_notify")])])
        #expect(!n.notifies)
        let empty = try decode(["actions": .array([])])
        #expect(!empty.notifies)
        #expect(!empty.highlights)
    }

    @Test("each missing required field is named", arguments: ["user_id", "room_id", "event_id", "stream_ordering", "actions", "event"])
    func missingField(_ field: String) {
        expectInputError(field: field, kind: .missing) { try decode([field: nil]) }
    }

    @Test("a field of the wrong type is named as a bad type")
    func wrongTypes() {
        expectInputError(field: "user_id", kind: .badType) { try decode(["user_id": .int(1)]) }
        expectInputError(field: "room_id", kind: .badType) { try decode(["room_id": .null]) }
        expectInputError(field: "stream_ordering", kind: .badType) { try decode(["stream_ordering": .string("12")]) }
        expectInputError(field: "stream_ordering", kind: .invalid) { try decode(["stream_ordering": .double(1.5)]) }
        expectInputError(field: "actions", kind: .badType) { try decode(["actions": .string("notify")]) }
        expectInputError(field: "actions[1]", kind: .badType) { try decode(["actions": .array([.string("notify"), .int(3)])]) }
        expectInputError(field: "actions[0].set_tweak", kind: .badType) { try decode(["actions": .array([.object(["value": .int(1)])])]) }
        expectInputError(field: "event", kind: .badType) { try decode(["event": .array([])]) }
        expectInputError(field: "thread_id", kind: .badType) { try decode(["thread_id": .int(1)]) }
        expectInputError(field: "received_ts", kind: .badType) { try decode(["received_ts": .string("now")]) }
        expectInputError(field: "context", kind: .badType) { try decode(["context": .string("x")]) }
        expectInputError(field: "context.room_name", kind: .badType) { try decode(["context": .object(["room_name": .int(1)])]) }
        expectInputError(field: "context.member_count") { try decode(["context": .object(["member_count": .int(-1)])]) }
        expectInputError(field: "", kind: .badType) { try EntryDecoder.notification(.array([]), now: now) }
    }

    @Test("event fields are checked by their dotted names")
    func eventFields() {
        let ev = Self.valid["event"]!.objectValue!
        func event(_ changes: [String: JSON?]) throws -> PushNotification { try decode(["event": with(ev, changes)]) }
        expectInputError(field: "event.type", kind: .missing) { try event(["type": nil]) }
        expectInputError(field: "event.sender", kind: .missing) { try event(["sender": nil]) }
        expectInputError(field: "event.sender", kind: .badType) { try event(["sender": .int(1)]) }
        expectInputError(field: "event.content", kind: .badType) { try event(["content": .string("hi")]) }
        expectInputError(field: "event.state_key", kind: .badType) { try event(["state_key": .int(1)]) }
        expectInputError(field: "event.origin_server_ts", kind: .badType) { try event(["origin_server_ts": .string("1")]) }
    }

    @Test("negative stream_ordering and received_ts are refused")
    func negatives() {
        expectInputError(field: "stream_ordering", kind: .invalid) { try decode(["stream_ordering": .int(-1)]) }
        expectInputError(field: "received_ts", kind: .invalid) { try decode(["received_ts": .int(-5)]) }
    }

    @Test("empty, oversized and control-character ids are refused")
    func badIDs() {
        expectInputError(field: "event_id", kind: .invalid) { try decode(["event_id": .string("")]) }
        expectInputError(field: "user_id", kind: .invalid) { try decode(["user_id": .string("")]) }
        expectInputError(field: "room_id", kind: .invalid) { try decode(["room_id": .string(String(repeating: "r", count: 256))]) }
        expectInputError(field: "user_id", kind: .invalid) { try decode(["user_id": .string("@a\u{0}b:x")]) }
        expectInputError(field: "thread_id", kind: .invalid) { try decode(["thread_id": .string("")]) }
        #expect(throws: Never.self) { try decode(["room_id": .string(String(repeating: "r", count: 255))]) }
    }

    @Test("an event of exactly 65536 serialized bytes is accepted, one byte more is refused")
    func eventSize() throws {
        func event(bodyLength: Int) -> JSON {
            .object(["type": .string("m.room.message"), "sender": .string("@bob:x"),
                     "content": .object(["body": .string(String(repeating: "a", count: bodyLength))])])
        }
        let overhead = event(bodyLength: 0).serialized().count
        let exact = event(bodyLength: 65_536 - overhead)
        #expect(exact.serialized().count == 65_536)
        #expect(throws: Never.self) { try decode(["event": exact]) }
        let e = expectInputError(field: "event", kind: .invalid) { try decode(["event": event(bodyLength: 65_537 - overhead)]) }
        #expect(e?.message.contains("65536") == true)
    }
}

@Suite("Validating receipts")
struct ReceiptValidationTests {
    static let valid: [String: JSON] = [
        "user_id": .string("@alice:example.org"), "room_id": .string("!r:example.org"), "event_id": .string("$e1"),
        "stream_ordering": .int(10), "receipt_type": .string("m.read"),
    ]

    func decode(_ changes: [String: JSON?]) throws -> Receipt {
        try EntryDecoder.receipt(with(Self.valid, changes), now: now)
    }

    @Test("a valid receipt decodes, unthreaded by default, ts defaulting to now")
    func valid() throws {
        let r = try decode([:])
        #expect(r == Receipt(userID: "@alice:example.org", roomID: "!r:example.org", eventID: "$e1", streamOrdering: 10,
                             receiptType: .read, threadID: nil, ts: now))
        let p = try decode(["receipt_type": .string("m.read.private"), "thread_id": .string("t"), "ts": .int(3)])
        #expect(p.receiptType == .readPrivate)
        #expect(p.threadID == "t")
        #expect(p.ts == 3)
        #expect(try decode(["thread_id": .null]).threadID == nil)
    }

    @Test("a receipt_type other than m.read or m.read.private is refused, naming the field")
    func badType() {
        let e = expectInputError(field: "receipt_type", kind: .invalid) { try decode(["receipt_type": .string("m.fully_read")]) }
        #expect(e?.message.contains("m.fully_read") == true)
        expectInputError(field: "receipt_type", kind: .missing) { try decode(["receipt_type": nil]) }
        expectInputError(field: "receipt_type", kind: .badType) { try decode(["receipt_type": .int(1)]) }
    }

    @Test("bad receipt fields are named")
    func badFields() {
        expectInputError(field: "user_id", kind: .missing) { try decode(["user_id": nil]) }
        expectInputError(field: "stream_ordering", kind: .invalid) { try decode(["stream_ordering": .int(-1)]) }
        expectInputError(field: "event_id", kind: .invalid) { try decode(["event_id": .string("")]) }
        expectInputError(field: "thread_id", kind: .badType) { try decode(["thread_id": .bool(true)]) }
        expectInputError(field: "ts", kind: .invalid) { try decode(["ts": .int(-1)]) }
    }
}

@Suite("Validating pushers")
struct PusherValidationTests {
    static let http: [String: JSON] = [
        "user_id": .string("@alice:example.org"), "kind": .string("http"), "app_id": .string("im.vector.app"),
        "pushkey": .string("abc123"), "app_display_name": .string("Element"), "device_display_name": .string("Pixel"),
        "lang": .string("en"), "data": .object(["url": .string(gatewayURL)]),
    ]
    static let email: [String: JSON] = [
        "user_id": .string("@alice:example.org"), "kind": .string("email"), "app_id": .string("m.email"),
        "pushkey": .string("alice@example.org"), "app_display_name": .string("Email"), "device_display_name": .string("alice"),
        "lang": .string("en"), "data": .object([:]),
    ]

    func decode(_ changes: [String: JSON?], base: [String: JSON] = http) throws -> LogEntry {
        try EntryDecoder.pusher(with(base, changes), now: now)
    }

    func config(_ changes: [String: JSON?], base: [String: JSON] = http) throws -> PusherConfig {
        guard case .pusherSet(let c) = try decode(changes, base: base) else { throw TestFailure("not a pusher set") }
        return c
    }

    @Test("a valid http pusher decodes with append false, enabled true and createdTS now")
    func validHTTP() throws {
        let c = try config([:])
        #expect(c.id == PusherID(userID: "@alice:example.org", appID: "im.vector.app", pushkey: "abc123"))
        #expect(c.kind == .http)
        #expect(c.appDisplayName == "Element")
        #expect(c.deviceDisplayName == "Pixel")
        #expect(!c.append)
        #expect(c.enabled)
        #expect(c.createdTS == now)
        #expect(c.profileTag == nil)
        let d = try config(["append": .bool(true), "enabled": .bool(false), "profile_tag": .string("t"),
                            "data": .object(["url": .string("http://localhost:5000/_matrix/push/v1/notify"),
                                             "format": .string("event_id_only")])])
        #expect(d.append && !d.enabled)
        #expect(d.profileTag == "t")
        #expect(d.data["format"] == .string("event_id_only"))
    }

    @Test("a valid email pusher decodes")
    func validEmail() throws {
        let c = try config([:], base: Self.email)
        #expect(c.kind == .email)
        #expect(c.id.pushkey == "alice@example.org")
    }

    @Test("kind null removes the pusher, whatever else is missing")
    func kindNull() throws {
        let e = try EntryDecoder.pusher(.object(["user_id": .string("@a:x"), "app_id": .string("app"),
                                                 "pushkey": .string("k"), "kind": .null]), now: now)
        #expect(e == .pusherRemoved(PusherID(userID: "@a:x", appID: "app", pushkey: "k")))
    }

    @Test("an unknown kind is refused; a kind of the wrong type or a missing one too")
    func badKind() {
        let e = expectInputError(field: "kind", kind: .invalid) { try decode(["kind": .string("sms")]) }
        #expect(e?.message.contains("sms") == true)
        expectInputError(field: "kind", kind: .badType) { try decode(["kind": .int(1)]) }
        expectInputError(field: "kind", kind: .missing) { try decode(["kind": nil]) }
    }

    @Test("an http pusher's url must be http or https with the path /_matrix/push/v1/notify", arguments: [
        "ftp://push.example.org/_matrix/push/v1/notify", "push.example.org/_matrix/push/v1/notify",
        "https://push.example.org/_matrix/push/v1/notify/", "https://push.example.org/_matrix/push/v1",
        "https://push.example.org/", "https://push.example.org", "https:///_matrix/push/v1/notify", "not a url", "",
    ])
    func badURL(_ url: String) {
        expectInputError(field: "data.url", kind: .invalid) { try decode(["data": .object(["url": .string(url)])]) }
    }

    @Test("good gateway urls are accepted", arguments: [
        "https://push.example.org/_matrix/push/v1/notify", "http://127.0.0.1:8080/_matrix/push/v1/notify",
        "HTTPS://Push.Example.org:443/_matrix/push/v1/notify",
    ])
    func goodURL(_ url: String) {
        #expect(throws: Never.self) { try decode(["data": .object(["url": .string(url)])]) }
    }

    @Test("an http pusher without data.url, or with a url that is not a string, is refused")
    func missingURL() {
        expectInputError(field: "data.url", kind: .missing) { try decode(["data": .object([:])]) }
        expectInputError(field: "data.url", kind: .badType) { try decode(["data": .object(["url": .int(1)])]) }
        expectInputError(field: "data", kind: .missing) { try decode(["data": nil]) }
        expectInputError(field: "data", kind: .badType) { try decode(["data": .string("x")]) }
        expectInputError(field: "data.format", kind: .invalid) {
            try decode(["data": .object(["url": .string(gatewayURL), "format": .string("full")])])
        }
    }

    @Test("an email pusher needs a valid address as pushkey", arguments: [
        "alice", "alice@", "@example.org", "alice@example", "alice@.example.org", "alice@example.org.",
        "alice smith@example.org", "<alice@example.org>", "alice@example.org,bob@example.org", "a@b@example.org",
        "alice@example.org\r\nBcc: eve@example.org",
    ])
    func badEmail(_ address: String) {
        expectInputError(field: "pushkey", kind: .invalid) { try decode(["pushkey": .string(address)], base: Self.email) }
        #expect(!EntryDecoder.isEmailAddress(address))
    }

    @Test("plain addresses pass the email check", arguments: ["alice@example.org", "a.b+tag@sub.example.co.uk", "x@y.z"])
    func goodEmail(_ address: String) {
        #expect(EntryDecoder.isEmailAddress(address))
    }

    @Test("app_id is limited to 64 characters (not bytes) and pushkey to 512 bytes")
    func lengths() throws {
        #expect(throws: Never.self) { try decode(["app_id": .string(String(repeating: "a", count: 64))]) }
        #expect(throws: Never.self) { try decode(["app_id": .string(String(repeating: "é", count: 64))]) }
        expectInputError(field: "app_id", kind: .invalid) { try decode(["app_id": .string(String(repeating: "a", count: 65))]) }
        expectInputError(field: "app_id", kind: .invalid) { try decode(["app_id": .string(String(repeating: "é", count: 65))]) }
        #expect(throws: Never.self) { try decode(["pushkey": .string(String(repeating: "k", count: 512))]) }
        expectInputError(field: "pushkey", kind: .invalid) { try decode(["pushkey": .string(String(repeating: "k", count: 513))]) }
        // 257 two-byte characters: 514 bytes.
        expectInputError(field: "pushkey", kind: .invalid) { try decode(["pushkey": .string(String(repeating: "é", count: 257))]) }
        // Characters are code points, as JSON Schema counts them: 33 letters with a combining
        // accent are 33 graphemes but 66 code points.
        expectInputError(field: "app_id", kind: .invalid) { try decode(["app_id": .string(String(repeating: "e\u{301}", count: 33))]) }
        for bad in ["a\nb", "a\u{0}b", "tab\there", "del\u{7F}"] {
            expectInputError(field: "app_id", kind: .invalid) { try decode(["app_id": .string(bad)]) }
            expectInputError(field: "pushkey", kind: .invalid) { try decode(["pushkey": .string(bad)]) }
        }
    }

    @Test("other bad pusher fields are named")
    func otherFields() {
        expectInputError(field: "user_id", kind: .missing) { try decode(["user_id": nil]) }
        expectInputError(field: "app_id", kind: .invalid) { try decode(["app_id": .string("")]) }
        expectInputError(field: "pushkey", kind: .invalid) { try decode(["pushkey": .string("")]) }
        expectInputError(field: "app_display_name", kind: .missing) { try decode(["app_display_name": nil]) }
        expectInputError(field: "lang", kind: .badType) { try decode(["lang": .int(1)]) }
        expectInputError(field: "profile_tag", kind: .badType) { try decode(["profile_tag": .int(1)]) }
        expectInputError(field: "append", kind: .badType) { try decode(["append": .string("yes")]) }
        expectInputError(field: "enabled", kind: .badType) { try decode(["enabled": .int(1)]) }
    }
}

@Suite("Reading JSON Lines")
struct JSONLinesTests {
    func receiptLine(_ so: Int) -> String {
        #"{"user_id":"@a:x","room_id":"!r","event_id":"$e\#(so)","stream_ordering":\#(so),"receipt_type":"m.read"}"#
    }

    func decode(_ text: String) throws -> [Receipt] {
        try JSONLines.decode(Array(text.utf8)) { try EntryDecoder.receipt($0, now: now) }
    }

    func decode(_ bytes: [UInt8]) throws -> [Receipt] {
        try JSONLines.decode(bytes) { try EntryDecoder.receipt($0, now: now) }
    }

    @Test("valid lines decode in order; blank lines, CRLF and a missing final newline are fine")
    func valid() throws {
        let text = receiptLine(1) + "\n\n  \t\n" + receiptLine(2) + "\r\n" + receiptLine(3)
        #expect(try decode(text).map(\.streamOrdering) == [1, 2, 3])
        #expect(try decode("").isEmpty)
        #expect(try decode("\n\n").isEmpty)
    }

    @Test("a bad field reports its line number, counting blank lines, and the field")
    func badFieldLine() {
        let text = receiptLine(1) + "\n\n" + receiptLine(2).replacingOccurrences(of: "\"m.read\"", with: "\"m.nope\"") + "\n" + receiptLine(3)
        let e = expectInputError(field: "receipt_type", kind: .invalid) { try decode(text) }
        #expect(e?.line == 3)
        #expect(e?.description.hasPrefix("line 3: field 'receipt_type'") == true)
    }

    @Test("a line that is not JSON reports its number as notJSON")
    func notJSONLine() {
        let e = expectInputError(field: "", kind: .notJSON) { try decode(receiptLine(1) + "\n{not json\n" + receiptLine(3)) }
        #expect(e?.line == 2)
    }

    @Test("a line with invalid UTF-8 reports its number")
    func invalidUTF8Line() {
        var bytes = Array((receiptLine(1) + "\n" + receiptLine(2) + "\n").utf8)
        bytes += Array(#"{"user_id":"@"#.utf8) + [0xFF] + Array(#"":1}"#.utf8) + [0x0A]
        let e = expectInputError(field: "", kind: .notJSON) { try decode(bytes) }
        #expect(e?.line == 3)
    }

    @Test("a line that is JSON but not an object is a bad type on its line")
    func arrayLine() {
        let e = expectInputError(field: "", kind: .badType) { try decode("[]\n") }
        #expect(e?.line == 1)
    }
}
