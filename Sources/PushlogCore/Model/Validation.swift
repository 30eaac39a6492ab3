import Foundation

/// Bad input: which line (when reading a file), which field, what is wrong with it.
public struct InputError: Error, CustomStringConvertible, Sendable, Equatable {
    public var line: Int?
    public var field: String
    public var message: String
    public var kind: Kind

    public enum Kind: Sendable, Equatable {
        /// The input is not JSON at all (`M_NOT_JSON`).
        case notJSON
        /// A field has the wrong type or shape (`M_BAD_JSON`).
        case badType
        /// A required field is absent (`M_MISSING_PARAM`).
        case missing
        /// A value is out of range or malformed (`M_INVALID_PARAM`).
        case invalid
    }

    public init(line: Int? = nil, field: String, message: String, kind: Kind) {
        self.line = line
        self.field = field
        self.message = message
        self.kind = kind
    }

    public var description: String {
        var s = line.map { "line \($0): " } ?? ""
        if !field.isEmpty { s += "field '\(field)': " }
        return s + message
    }
}

/// Limits on what we accept. Matrix ids are at most 255 bytes; events at most 64 KiB.
public enum Limits {
    public static let idBytes = 255
    public static let eventBytes = 65_536
    public static let textBytes = 1_024
    public static let pusherDataBytes = 16_384
    public static let appIDChars = 64
    public static let pushkeyBytes = 512
    public static let lineBytes = 1 << 20
    /// `thread_id` is an event id (or "main") in Matrix: an id's bound.
    public static let threadIDBytes = idBytes
    /// A push rule's actions are a handful of strings and tweaks; these bounds leave room for
    /// any real rule and keep one notification's actions from outweighing its event.
    public static let actionsCount = 64
    public static let actionsBytes = 4_096
    /// `context` is display names, a room name and avatar URLs (each at most `textBytes`).
    public static let contextBytes = 4_096
}

/// Turns decoded JSON into entries, refusing anything malformed with the field named.
public enum EntryDecoder {
    public static func notification(_ v: JSON, now: Int64) throws -> PushNotification {
        let o = try object(v, "")
        let user = try id(o, "user_id")
        let room = try id(o, "room_id")
        let event = try id(o, "event_id")
        let so = try nonNegative(o, "stream_ordering", required: true)!
        guard let actionsValue = o["actions"] else { throw missing("actions") }
        guard case .array(let actions) = actionsValue else { throw badType("actions", "an array", actionsValue) }
        if actions.count > Limits.actionsCount {
            throw InputError(field: "actions", message: "has more than \(Limits.actionsCount) elements", kind: .invalid)
        }
        if actionsValue.serializedCount > Limits.actionsBytes { throw tooLong("actions", Limits.actionsBytes) }
        for (i, a) in actions.enumerated() {
            switch a {
            case .string: break
            case .object(let t):
                guard case .string = t["set_tweak"] else {
                    throw InputError(field: "actions[\(i)].set_tweak", message: "must be a string", kind: .badType)
                }
            default: throw badType("actions[\(i)]", "a string or an object", a)
            }
        }
        let thread = try optionalID(o, "thread_id", maxBytes: Limits.threadIDBytes) ?? "main"
        let received = try nonNegative(o, "received_ts", required: false) ?? now
        guard let eventValue = o["event"] else { throw missing("event") }
        guard case .object(let ev) = eventValue else { throw badType("event", "an object", eventValue) }
        _ = try string(ev, "event.type", key: "type", maxBytes: Limits.idBytes)
        _ = try string(ev, "event.sender", key: "sender", maxBytes: Limits.idBytes)
        if let c = ev["content"], c.objectValue == nil { throw badType("event.content", "an object", c) }
        if let s = ev["state_key"], s.stringValue == nil { throw badType("event.state_key", "a string", s) }
        if let t = ev["origin_server_ts"], t.intValue == nil { throw badType("event.origin_server_ts", "an integer", t) }
        if eventValue.serializedCount > Limits.eventBytes {
            throw InputError(field: "event", message: "is larger than \(Limits.eventBytes) bytes", kind: .invalid)
        }
        var context: [String: JSON]?
        if let c = o["context"], !c.isNull {
            guard case .object(let ctx) = c else { throw badType("context", "an object", c) }
            if c.serializedCount > Limits.contextBytes { throw tooLong("context", Limits.contextBytes) }
            for key in ["sender_display_name", "room_name", "room_alias", "room_avatar_url", "sender_avatar_url"] {
                if let f = ctx[key], !f.isNull {
                    guard case .string(let s) = f else { throw badType("context.\(key)", "a string", f) }
                    if s.utf8.count > Limits.textBytes { throw tooLong("context.\(key)", Limits.textBytes) }
                }
            }
            if let m = ctx["member_count"], !m.isNull {
                guard let n = m.intValue, n >= 0 else { throw badType("context.member_count", "a non-negative integer", m) }
            }
            context = ctx
        }
        return PushNotification(userID: user, roomID: room, eventID: event, streamOrdering: so, actions: actions,
                            threadID: thread, receivedTS: received, event: ev, context: context)
    }

    public static func receipt(_ v: JSON, now: Int64) throws -> Receipt {
        let o = try object(v, "")
        let user = try id(o, "user_id")
        let room = try id(o, "room_id")
        let event = try id(o, "event_id")
        let so = try nonNegative(o, "stream_ordering", required: true)!
        let typeName = try string(o, "receipt_type", maxBytes: Limits.idBytes)
        guard let type = ReceiptType(rawValue: typeName) else {
            throw InputError(field: "receipt_type", message: "must be \"m.read\" or \"m.read.private\", not \"\(typeName)\"", kind: .invalid)
        }
        let thread = try optionalID(o, "thread_id", maxBytes: Limits.threadIDBytes)
        let ts = try nonNegative(o, "ts", required: false) ?? now
        return Receipt(userID: user, roomID: room, eventID: event, streamOrdering: so, receiptType: type,
                       threadID: thread, ts: ts)
    }

    /// What a `pushers set` line or `PUT /v1/pushers` body asks for: a pusher to create or
    /// replace, or (`"kind": null`) one to remove.
    public static func pusher(_ v: JSON, now: Int64) throws -> LogEntry {
        let o = try object(v, "")
        let user = try id(o, "user_id")
        let appID = try string(o, "app_id", maxBytes: 4 * Limits.appIDChars)
        try checkAppID(appID, field: "app_id")
        let pushkey = try string(o, "pushkey", maxBytes: Limits.pushkeyBytes)
        try checkPushkey(pushkey, field: "pushkey")
        let pid = PusherID(userID: user, appID: appID, pushkey: pushkey)
        guard let kindValue = o["kind"] else { throw missing("kind") }
        if kindValue.isNull { return .pusherRemoved(pid) }
        guard case .string(let kindName) = kindValue else { throw badType("kind", "a string or null", kindValue) }
        guard let kind = PusherKind(rawValue: kindName) else {
            throw InputError(field: "kind", message: "must be \"http\", \"email\" or null, not \"\(kindName)\"", kind: .invalid)
        }
        let appName = try string(o, "app_display_name", maxBytes: Limits.textBytes, allowEmpty: true)
        let devName = try string(o, "device_display_name", maxBytes: Limits.textBytes, allowEmpty: true)
        let lang = try string(o, "lang", maxBytes: Limits.textBytes, allowEmpty: true)
        var tag: String?
        if let t = o["profile_tag"], !t.isNull {
            guard case .string(let s) = t else { throw badType("profile_tag", "a string", t) }
            if s.utf8.count > Limits.textBytes { throw tooLong("profile_tag", Limits.textBytes) }
            tag = s
        }
        guard let dataValue = o["data"] else { throw missing("data") }
        guard case .object(let data) = dataValue else { throw badType("data", "an object", dataValue) }
        if dataValue.serializedCount > Limits.pusherDataBytes { throw tooLong("data", Limits.pusherDataBytes) }
        switch kind {
        case .http:
            guard let urlValue = data["url"] else { throw missing("data.url") }
            guard case .string(let url) = urlValue else { throw badType("data.url", "a string", urlValue) }
            try checkGatewayURL(url)
            if let f = data["format"], !f.isNull, f != .string("event_id_only") {
                throw InputError(field: "data.format", message: "must be \"event_id_only\" when present", kind: .invalid)
            }
        case .email:
            guard isEmailAddress(pushkey) else {
                throw InputError(field: "pushkey", message: "must be an email address for an email pusher", kind: .invalid)
            }
        }
        let append = try optionalBool(o, "append") ?? false
        let enabled = try optionalBool(o, "enabled") ?? true
        return .pusherSet(PusherConfig(id: pid, kind: kind, appDisplayName: appName, deviceDisplayName: devName,
                                       lang: lang, profileTag: tag, data: data, append: append, enabled: enabled,
                                       createdTS: now))
    }

    static func checkGatewayURL(_ url: String) throws {
        guard let c = URLComponents(string: url), let scheme = c.scheme?.lowercased(),
              scheme == "http" || scheme == "https" else {
            throw InputError(field: "data.url", message: "must be an http or https URL", kind: .invalid)
        }
        guard let host = c.host, !host.isEmpty else {
            throw InputError(field: "data.url", message: "has no host", kind: .invalid)
        }
        guard c.path == "/_matrix/push/v1/notify" else {
            throw InputError(field: "data.url", message: "must have the path /_matrix/push/v1/notify", kind: .invalid)
        }
    }

    /// A deliberately plain check: one `@`, something on each side, a dot-free local part is
    /// fine, no spaces, controls, angle brackets or commas that would let an address smuggle
    /// another recipient or a header.
    public static func isEmailAddress(_ s: String) -> Bool {
        guard s.utf8.count <= 254, s.filter({ $0 == "@" }).count == 1, let at = s.firstIndex(of: "@") else { return false }
        let local = s[..<at], domain = s[s.index(after: at)...]
        guard !local.isEmpty, !domain.isEmpty, domain.contains("."), !domain.hasPrefix("."), !domain.hasSuffix(".") else { return false }
        let forbidden = Set<Character>([" ", "<", ">", ",", ";", "\"", "(", ")", "[", "]", "\\"])
        for ch in s {
            if forbidden.contains(ch) { return false }
            if ch.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) { return false }
        }
        return true
    }

    // MARK: helpers

    static func object(_ v: JSON, _ field: String) throws -> [String: JSON] {
        guard case .object(let o) = v else {
            throw InputError(field: field, message: "must be a JSON object, not \(v.typeName)", kind: .badType)
        }
        return o
    }

    static func missing(_ field: String) -> InputError {
        InputError(field: field, message: "is required", kind: .missing)
    }

    static func badType(_ field: String, _ expected: String, _ got: JSON) -> InputError {
        InputError(field: field, message: "must be \(expected), not \(got.typeName)", kind: .badType)
    }

    static func tooLong(_ field: String, _ max: Int) -> InputError {
        InputError(field: field, message: "is longer than \(max) bytes", kind: .invalid)
    }

    static func string(_ o: [String: JSON], _ field: String, key: String? = nil, maxBytes: Int,
                       allowEmpty: Bool = false) throws -> String {
        guard let v = o[key ?? field] else { throw missing(field) }
        guard case .string(let s) = v else { throw badType(field, "a string", v) }
        if !allowEmpty && s.isEmpty { throw InputError(field: field, message: "must not be empty", kind: .invalid) }
        if s.utf8.count > maxBytes { throw tooLong(field, maxBytes) }
        return s
    }

    /// Ids are keys in the store: non-empty, at most 255 bytes, no control characters.
    static func id(_ o: [String: JSON], _ field: String, maxBytes: Int = Limits.idBytes) throws -> String {
        let s = try string(o, field, maxBytes: maxBytes)
        try checkID(s, field: field, maxBytes: maxBytes)
        return s
    }

    static func optionalID(_ o: [String: JSON], _ field: String, maxBytes: Int = Limits.idBytes) throws -> String? {
        guard let v = o[field], !v.isNull else { return nil }
        return try id(o, field, maxBytes: maxBytes)
    }

    /// The bounds of a Matrix id (`user_id`, `room_id`, `event_id`), for ids that arrive outside
    /// a JSON body: query strings and command-line options, which become store keys as well.
    public static func checkID(_ s: String, field: String, maxBytes: Int = Limits.idBytes) throws {
        if s.isEmpty { throw InputError(field: field, message: "must not be empty", kind: .invalid) }
        if s.utf8.count > maxBytes { throw tooLong(field, maxBytes) }
        try noControlCharacters(s, field: field)
    }

    /// `app_id`: at most 64 characters (the Matrix spec's bound), counted as Unicode code points
    /// (as JSON Schema's `maxLength` counts them, not as grapheme clusters), no control characters.
    public static func checkAppID(_ s: String, field: String) throws {
        if s.isEmpty { throw InputError(field: field, message: "must not be empty", kind: .invalid) }
        if s.unicodeScalars.count > Limits.appIDChars {
            throw InputError(field: field, message: "is longer than \(Limits.appIDChars) characters", kind: .invalid)
        }
        try noControlCharacters(s, field: field)
    }

    /// `pushkey`: at most 512 bytes (the Matrix spec's bound), no control characters (no device
    /// token or address has them, and they would reach log lines).
    public static func checkPushkey(_ s: String, field: String) throws {
        if s.isEmpty { throw InputError(field: field, message: "must not be empty", kind: .invalid) }
        if s.utf8.count > Limits.pushkeyBytes { throw tooLong(field, Limits.pushkeyBytes) }
        try noControlCharacters(s, field: field)
    }

    static func noControlCharacters(_ s: String, field: String) throws {
        if s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw InputError(field: field, message: "must not contain control characters", kind: .invalid)
        }
    }

    static func nonNegative(_ o: [String: JSON], _ field: String, required: Bool) throws -> Int64? {
        guard let v = o[field], !(v.isNull && !required) else {
            if required { throw missing(field) }
            return nil
        }
        guard case .int(let i) = v else {
            if case .double = v { throw InputError(field: field, message: "must be an integer", kind: .invalid) }
            throw badType(field, "an integer", v)
        }
        guard i >= 0 else { throw InputError(field: field, message: "must not be negative", kind: .invalid) }
        return i
    }

    static func optionalBool(_ o: [String: JSON], _ field: String) throws -> Bool? {
        guard let v = o[field], !v.isNull else { return nil }
        guard case .bool(let b) = v else { throw badType(field, "a boolean", v) }
        return b
    }
}

/// Reads JSON Lines input: every non-blank line is checked (size, UTF-8, JSON, fields) before
/// anything is used, and the first bad one is reported with its line number.
public enum JSONLines {
    public static func decode<T>(_ input: [UInt8], _ decode: (JSON) throws -> T) throws -> [T] {
        var out: [T] = []
        var lineNo = 0
        var start = 0
        let n = input.count
        while start < n {
            lineNo += 1
            var end = start
            while end < n, input[end] != 0x0A { end += 1 }
            defer { start = end + 1 }
            var lineEnd = end
            if lineEnd > start, input[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            let line = input[start..<lineEnd]
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            if line.count > Limits.lineBytes {
                throw InputError(line: lineNo, field: "", message: "line is longer than \(Limits.lineBytes) bytes", kind: .invalid)
            }
            guard String(validating: line, as: UTF8.self) != nil else {
                throw InputError(line: lineNo, field: "", message: "line is not valid UTF-8", kind: .notJSON)
            }
            let json: JSON
            do { json = try JSON.parse(line) } catch {
                throw InputError(line: lineNo, field: "", message: "\(error)", kind: .notJSON)
            }
            do { out.append(try decode(json)) } catch var e as InputError {
                e.line = lineNo
                throw e
            }
        }
        return out
    }
}
