import PushlogCore

/// Writes the gateway body for one notification straight from its stored bytes
/// (``RawNotification``): the same bytes as ``GatewayPayload/notification(_:pusher:badge:options:)``
/// serialised, without building a ``PushNotification`` or a `JSON` tree per push.
///
/// How it stays identical: the stored event, actions and context are canonical JSON (sorted
/// keys, our writer), so a value copied verbatim is what serialising the decoded value gives;
/// the members are written in sorted key order, as the `JSON` writer does; the per-pusher part
/// (the device without its tweaks) is serialised once per pusher by the reference code, and the
/// tweaks once per distinct actions text. Tests compare both paths byte for byte.
///
/// Not `Sendable`: one per delivery engine, used on its thread only. `package`: the decoder fuzz
/// target (PushlogFuzzing) holds it to the reference too.
package final class PayloadWriter {
    /// What a pusher contributes to every body, made once per pusher record.
    package final class PreparedPusher {
        /// The stored record it was made from (compared to decide whether to make it again).
        let record: [UInt8]
        let config: PusherConfig
        let url: String?
        let eventIDOnly: Bool
        let badgeDisabled: Bool
        /// The device object without its closing brace (and without tweaks).
        let devicePrefix: [UInt8]

        package init(record: [UInt8], config: PusherConfig) {
            self.record = record
            self.config = config
            url = config.data["url"]?.stringValue
            eventIDOnly = GatewayPayload.isEventIDOnly(config)
            badgeDisabled = GatewayPayload.badgeDisabled(config)
            var device = GatewayPayload.device(config, tweaks: nil).serialized()
            device.removeLast()  // "}"
            devicePrefix = device
        }

        func matches(_ stored: UnsafeRawBufferPointer) -> Bool {
            record.withUnsafeBytes { RawJSON.equal($0, stored) }
        }
    }

    /// What a push needs from the actions: the serialised tweaks and whether they make it urgent.
    private struct Actions {
        /// `,"tweaks":{…}` or nothing when there are none.
        var tweaksMember: [UInt8]
        var urgent: Bool
    }

    private var actionsCache: [[UInt8]: Actions] = [:]
    private var lastActions: (text: [UInt8], actions: Actions)?
    private static let actionsCacheLimit = 256

    /// The body being written: a plain growable buffer (an `Array` append costs a uniqueness
    /// and capacity check each time, and a body takes some thirty of them).
    private var out = Buffer()

    package init() {}

    /// The body for `n` to `pusher`; nil when the stored JSON cannot be read in place (the
    /// caller then takes the slow path, which reports what is wrong).
    package func notification(_ n: RawNotification, pusher: PreparedPusher, badge: Int, includeContent: Bool) -> [UInt8]? {
        guard let actions = actions(n.actions) else { return nil }
        var content: UnsafeRawBufferPointer?
        var sender: UnsafeRawBufferPointer?
        var type: UnsafeRawBufferPointer?
        var stateKey: UnsafeRawBufferPointer?
        let wellFormed = RawJSON.forEachMember(n.event) { k, v in
            if RawJSON.equal(k, "\"type\"") {
                type = v
            } else if RawJSON.equal(k, "\"sender\"") {
                sender = v
            } else if RawJSON.equal(k, "\"content\"") {
                content = v
            } else if RawJSON.equal(k, "\"state_key\"") {
                stateKey = v
            }
        }
        guard wellFormed else { return nil }
        if let t = type, !RawJSON.isString(t) { type = nil }  // the reference sends "" then
        let encrypted = type.map { RawJSON.equal($0, "\"m.room.encrypted\"") } ?? false
        let urgent = encrypted || actions.urgent

        // Written into a local copy (a pointer, a capacity and a count) and put back at the end:
        // appends to the stored property would each be checked for exclusive access.
        var o = out
        o.count = 0
        defer { out = o }
        o.append("{\"notification\":{")
        if pusher.eventIDOnly {
            if !pusher.badgeDisabled {
                o.appendCounts(badge)
                o.append(",")
            }
            o.appendDevices(pusher, tweaks: nil)
            o.append(",\"event_id\":"); o.appendString(n.eventID)
            o.append(urgent ? ",\"prio\":\"high\"" : ",\"prio\":\"low\"")
            o.append(",\"room_id\":"); o.appendString(n.roomID)
            o.append("}}")
            return o.bytes
        }
        var first = true
        if includeContent, let content {
            o.append("\"content\":"); o.append(content)
            first = false
        }
        if !pusher.badgeDisabled {
            if !first { o.append(",") }
            o.appendCounts(badge)
            first = false
        }
        if !first { o.append(",") }
        o.appendDevices(pusher, tweaks: actions.tweaksMember)
        o.append(",\"event_id\":"); o.appendString(n.eventID)
        o.append(",\"id\":"); o.appendString(n.eventID)
        let member = type.map { RawJSON.equal($0, "\"m.room.member\"") } ?? false
        if member, let content, let membership = RawJSON.member(content, "\"membership\"") {
            o.append(",\"membership\":"); o.append(membership)
        }
        o.append(urgent ? ",\"prio\":\"high\"" : ",\"prio\":\"low\"")
        var alias: UnsafeRawBufferPointer?, roomName: UnsafeRawBufferPointer?, displayName: UnsafeRawBufferPointer?
        if let context = n.context {
            guard RawJSON.forEachMember(context, { k, v in
                guard RawJSON.isString(v) else { return }
                if RawJSON.equal(k, "\"room_alias\"") {
                    alias = v
                } else if RawJSON.equal(k, "\"room_name\"") {
                    roomName = v
                } else if RawJSON.equal(k, "\"sender_display_name\"") {
                    displayName = v
                }
            }) else { return nil }
        }
        if let alias { o.append(",\"room_alias\":"); o.append(alias) }
        o.append(",\"room_id\":"); o.appendString(n.roomID)
        if let roomName { o.append(",\"room_name\":"); o.append(roomName) }
        if let sender { o.append(",\"sender\":"); o.append(sender) }
        if let displayName { o.append(",\"sender_display_name\":"); o.append(displayName) }
        o.append(",\"type\":")
        if let type { o.append(type) } else { o.append("\"\"") }
        if member {
            let target = stateKey.map { RawJSON.stringToken($0, equals: n.userID) } ?? false
            o.append(target ? ",\"user_is_target\":true" : ",\"user_is_target\":false")
        }
        o.append("}}")
        return o.bytes
    }

    private func actions(_ text: UnsafeRawBufferPointer) -> Actions? {
        // Most pushes in a row carry the same actions: compare with the last before hashing.
        if let last = lastActions, last.text.withUnsafeBytes({ RawJSON.equal($0, text) }) { return last.actions }
        let key = Array(text)
        if let cached = actionsCache[key] {
            lastActions = (key, cached)
            return cached
        }
        guard case .array(let actions)? = try? JSON.parse(text) else { return nil }
        let tweaks = GatewayPayload.tweaks(actions)
        var member: [UInt8] = []
        if !tweaks.isEmpty {
            member.append(contentsOf: ",\"tweaks\":".utf8)
            JSON.object(tweaks).write(to: &member)
        }
        let value = Actions(tweaksMember: member,
                            urgent: (tweaks["highlight"]?.isTruthy ?? false) || (tweaks["sound"]?.isTruthy ?? false))
        if actionsCache.count >= Self.actionsCacheLimit { actionsCache.removeAll(keepingCapacity: true) }
        actionsCache[key] = value
        lastActions = (key, value)
        return value
    }

    /// A growable byte buffer owned by the writer.
    fileprivate struct Buffer {
        private(set) var base = UnsafeMutableRawPointer.allocate(byteCount: 1024, alignment: 16)
        private var capacity = 1024
        var count = 0

        @inline(__always)
        mutating func append(_ raw: UnsafeRawBufferPointer) {
            guard let source = raw.baseAddress, raw.count > 0 else { return }
            if count + raw.count > capacity { grow(to: count + raw.count) }
            (base + count).copyMemory(from: source, byteCount: raw.count)
            count += raw.count
        }

        private mutating func grow(to needed: Int) {
            let bigger = max(needed, capacity * 2)
            let new = UnsafeMutableRawPointer.allocate(byteCount: bigger, alignment: 16)
            new.copyMemory(from: base, byteCount: count)
            base.deallocate()
            base = new
            capacity = bigger
        }

        var bytes: [UInt8] { Array(UnsafeRawBufferPointer(start: base, count: count)) }

        func free() { base.deallocate() }
    }

    deinit { out.free() }
}

/// The JSON pieces of a body.
extension PayloadWriter.Buffer {
    mutating func appendCounts(_ badge: Int) {
        append("\"counts\":{\"unread\":")
        appendDecimal(badge)
        append("}")
    }

    /// `String(n)`'s digits, without the string.
    mutating func appendDecimal(_ n: Int) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: enough for any Int64
        withUnsafeMutableBytes(of: &digits) { buffer in
            var v = n.magnitude
            var i = buffer.count
            repeat {
                i -= 1
                buffer[i] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
            } while v > 0
            if n < 0 {
                i -= 1
                buffer[i] = UInt8(ascii: "-")
            }
            append(UnsafeRawBufferPointer(rebasing: buffer[i...]))
        }
    }

    mutating func appendDevices(_ pusher: PayloadWriter.PreparedPusher, tweaks: [UInt8]?) {
        append("\"devices\":[")
        pusher.devicePrefix.withUnsafeBytes { append($0) }
        if let tweaks { tweaks.withUnsafeBytes { append($0) } }
        append("}]")
    }

    @inline(__always)
    mutating func append(_ s: StaticString) {
        append(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    mutating func append(_ byte: UInt8) {
        withUnsafeBytes(of: byte) { append($0) }
    }

    /// A JSON string token for raw UTF-8, escaped as ``JSON``'s writer escapes.
    mutating func appendString(_ raw: UnsafeRawBufferPointer) {
        var needsEscape = false
        for b in raw where b < 0x20 || b == 0x22 || b == 0x5C {
            needsEscape = true
            break
        }
        if !needsEscape {
            append(UInt8(ascii: "\""))
            append(raw)
            append(UInt8(ascii: "\""))
            return
        }
        var escaped: [UInt8] = []
        JSON.string(String(decoding: raw, as: UTF8.self)).write(to: &escaped)
        escaped.withUnsafeBytes { append($0) }
    }
}
