@_spi(Fuzzing) import PushlogCore
import PushlogRuntime

/// Every decoder that turns outside bytes into entries, fed the same bytes, with their invariants
/// checked by `precondition` so that a broken one is a crash libFuzzer reports (and the corpus
/// replay test fails on). Shared by the libFuzzer target (`pushlog-fuzz`) and that test.
///
/// Each input goes through all of them, rather than a leading byte choosing one, so that the
/// seeds stay plain request bodies and stored entries, and a mutation that turns one kind into
/// another is still exercised.
///
/// The request decoders are reached below the HTTP layer: a body is `JSON.parse` then
/// ``EntryDecoder`` (item by item for the batch endpoints), which is all the routes add to
/// Hummingbird's byte collection.
public enum DecoderFuzz {
    /// `now` for the decoders that default a timestamp to it.
    static let now: Int64 = 1_795_973_302_123

    public static func run(_ bytes: UnsafeRawBufferPointer) {
        requestBody(bytes)
        jsonLines(Array(bytes))
        storedEntry(bytes)
        _ = try? ConsumerState.decode(bytes)
    }

    // MARK: request bodies

    /// `POST /v1/notifications`, `POST /v1/receipts`, `PUT /v1/pushers`: parse, then decode the
    /// body (or each item of its batch) as each kind of entry.
    static func requestBody(_ bytes: UnsafeRawBufferPointer) {
        checkSiblingSharing(bytes)
        guard let json = try? JSON.parse(bytes) else { return }
        checkJSONRoundTrip(json)
        var entries: [LogEntry] = []
        entries += decodeAll(json)
        if case .object(let o) = json {
            for key in ["notifications", "receipts"] {
                if case .array(let items)? = o[key] { for item in items { entries += decodeAll(item) } }
            }
        }
        for entry in entries { checkEntry(entry) }
    }

    /// The parser shares a member spelled as its sibling's instead of parsing it again: the
    /// value, or the error and its offset, must be what parsing every member afresh gives.
    static func checkSiblingSharing(_ bytes: UnsafeRawBufferPointer) {
        let shared = Result { try JSON.parse(bytes) }
        let afresh = Result { try JSON.parse(bytes, sharingSiblings: false) }
        switch (shared, afresh) {
        case (.success(let a), .success(let b)):
            precondition(a == b, "a shared sibling changed the parsed value")
        case (.failure(let a as JSONParseError), .failure(let b as JSONParseError)):
            precondition(a.offset == b.offset && a.reason == b.reason, "a shared sibling changed the error: \(a) against \(b)")
        default:
            preconditionFailure("a shared sibling changed whether the document parses: \(shared) against \(afresh)")
        }
    }

    /// What the `append` and `pushers set` commands read: JSON Lines, each line any entry kind.
    static func jsonLines(_ bytes: [UInt8]) {
        let lines = try? JSONLines.decode(bytes) { json -> [LogEntry] in
            let entries = decodeAll(json)
            if entries.isEmpty { throw InputError(field: "", message: "no entry", kind: .invalid) }
            return entries
        }
        for entry in (lines ?? []).joined() { checkEntry(entry) }
    }

    static func decodeAll(_ json: JSON) -> [LogEntry] {
        var out: [LogEntry] = []
        if let n = try? EntryDecoder.notification(json, now: now) {
            checkValidated(n)
            out.append(.notification(n))
        }
        if let r = try? EntryDecoder.receipt(json, now: now) {
            for id in [r.userID, r.roomID, r.eventID] { checkID(id) }
            precondition(r.streamOrdering >= 0 && r.ts >= 0, "receipt: negative number accepted")
            out.append(.receipt(r))
        }
        if let p = try? EntryDecoder.pusher(json, now: now) { out.append(p) }
        return out
    }

    /// What the writer gives back parses to the same value, and is a fixed point: the stored
    /// JSON text is what ``PayloadWriter`` copies verbatim into gateway bodies.
    static func checkJSONRoundTrip(_ json: JSON) {
        let text = json.serialized()
        guard let again = try? JSON.parse(text) else { preconditionFailure("serialised JSON does not parse: \(json)") }
        precondition(again == json, "JSON round trip changed the value: \(json)")
        precondition(again.serialized() == text, "JSON serialisation is not a fixed point: \(json)")
    }

    /// What ``EntryDecoder`` promises about a notification it accepted.
    static func checkValidated(_ n: PushNotification) {
        for id in [n.userID, n.roomID, n.eventID, n.threadID] { checkID(id) }
        precondition(n.streamOrdering >= 0 && n.receivedTS >= 0, "notification: negative number accepted")
        precondition(JSON.object(n.event).serialized().count <= Limits.eventBytes, "notification: oversized event accepted")
    }

    static func checkID(_ id: String) {
        precondition(!id.isEmpty && id.utf8.count <= Limits.idBytes, "id of \(id.utf8.count) bytes accepted")
        precondition(!id.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, "id with a control character accepted")
    }

    // MARK: stored entries

    /// A decoded entry survives the store: encoded, it decodes to itself and encodes to the same
    /// bytes; a notification is read in place to the same fields and gives the reference's body.
    static func checkEntry(_ entry: LogEntry) {
        let ts: Int64 = 1_234
        let stored = EntryCodec.encode(entry, ts: ts)
        stored.withUnsafeBytes { bytes in
            guard let back = try? EntryCodec.decode(bytes, pos: 1) else { preconditionFailure("an encoded entry does not decode: \(entry)") }
            precondition(back.entry == entry && back.ts == ts, "entry codec round trip changed \(entry)")
            precondition(EntryCodec.encode(back.entry, ts: ts) == stored, "entry codec is not a fixed point for \(entry)")
            precondition(EntryCodec.timestamp(bytes) == ts, "timestamp read wrongly")
            guard case .notification(let n) = entry else {
                precondition(RawNotification(bytes) == nil, "a \(entry.typeName) read as a notification")
                return
            }
            guard let raw = RawNotification(bytes) else { preconditionFailure("an encoded notification is not read in place") }
            checkRawFields(raw, n, ts: ts)
            checkBodies(n, raw: raw)
        }
    }

    static func checkRawFields(_ raw: RawNotification, _ n: PushNotification, ts: Int64) {
        precondition(raw.ts == ts && raw.receivedTS == n.receivedTS, "read in place: wrong times")
        precondition(Array(raw.userID) == Array(n.userID.utf8) && Array(raw.roomID) == Array(n.roomID.utf8)
                     && Array(raw.eventID) == Array(n.eventID.utf8), "read in place: wrong ids")
        precondition((raw.context == nil) == (n.context == nil), "read in place: context present or not")
    }

    /// The in-place body writer against ``GatewayPayload``, byte for byte, for each pusher shape
    /// (with and without content; the event-id-only format; no badge).
    static func checkBodies(_ n: PushNotification, raw: RawNotification) {
        let writer = PayloadWriter()
        for config in pushers {
            let prepared = PayloadWriter.PreparedPusher(record: [], config: config)
            for includeContent in [true, false] {
                let reference = GatewayPayload.notification(n, pusher: config, badge: 3,
                                                             options: .init(includeContent: includeContent)).serialized()
                let written = writer.notification(raw, pusher: prepared, badge: 3, includeContent: includeContent)
                precondition(written == reference, """
                    in-place body differs from the reference for \(n.eventID) (pusher \(config.id.pushkey), content \(includeContent)):
                    \(written.map { String(decoding: $0, as: UTF8.self) } ?? "nil")
                    \(String(decoding: reference, as: UTF8.self))
                    """)
            }
        }
    }

    static let pushers: [PusherConfig] = {
        let url = JSON.string("http://gw/_matrix/push/v1/notify")
        return [
            PusherConfig(id: PusherID(userID: "@alice:example.org", appID: "org.example.app", pushkey: "pk"),
                         kind: .http, data: ["url": url, "custom_key": .string("v")], createdTS: 1_795_973_302_123),
            PusherConfig(id: PusherID(userID: "@alice:example.org", appID: "a\"pp", pushkey: "p\\k\n"),
                         kind: .http, data: ["url": url, "format": .string("event_id_only")], createdTS: 5),
            PusherConfig(id: PusherID(userID: "@alice:example.org", appID: "x", pushkey: "y"),
                         kind: .http, data: ["url": url, "org.matrix.msc4076.disable_badge_count": .bool(true)], createdTS: 5),
        ]
    }()

    /// Arbitrary bytes as a stored entry: the codec refuses or decodes them without crashing; what
    /// it decodes is stable under a second round; the in-place reader agrees with it, and the body
    /// writer survives whatever the in-place reader accepts.
    static func storedEntry(_ bytes: UnsafeRawBufferPointer) {
        let decoded = try? EntryCodec.decode(bytes, pos: 7)
        let timestamp = EntryCodec.timestamp(bytes)
        if let decoded {
            precondition(decoded.pos == 7 && timestamp == decoded.ts, "timestamp disagrees with the decoder")
            checkEntry(decoded.entry)
        }
        guard let raw = RawNotification(bytes) else { return }
        precondition(raw.ts == timestamp, "read in place: timestamp disagrees with EntryCodec.timestamp")
        if let decoded {
            guard case .notification(let n) = decoded.entry else { preconditionFailure("a \(decoded.entry.typeName) read as a notification") }
            checkRawFields(raw, n, ts: decoded.ts)
        }
        // Only survival is promised here: the stored text may be anything the in-place reader
        // skips over, not only what our writer produced (checkEntry compares those bytes).
        let writer = PayloadWriter()
        for config in pushers {
            _ = writer.notification(raw, pusher: PayloadWriter.PreparedPusher(record: [], config: config), badge: 1,
                                    includeContent: true)
        }
    }
}
