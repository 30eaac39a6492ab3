import PushlogCore

/// The bodies a push gateway receives (contract, "What a push gateway receives").
public enum GatewayPayload {
    public struct Options: Sendable {
        public var includeContent = true
        public init(includeContent: Bool = true) { self.includeContent = includeContent }
    }

    /// `tweaks[k] = v` for every `set_tweak` action (`true` when it has no value).
    public static func tweaks(_ actions: [JSON]) -> [String: JSON] {
        var t: [String: JSON] = [:]
        for case .object(let a) in actions {
            guard case .string(let k)? = a["set_tweak"] else { continue }
            t[k] = a["value"] ?? .bool(true)
        }
        return t
    }

    /// MSC4076: the pusher asked for no badge.
    public static func badgeDisabled(_ pusher: PusherConfig) -> Bool {
        pusher.data["org.matrix.msc4076.disable_badge_count"] == .bool(true)
    }

    static func isEventIDOnly(_ pusher: PusherConfig) -> Bool {
        pusher.data["format"] == .string("event_id_only")
    }

    /// The device entry: the pusher's data without `url`, its creation time in seconds.
    static func device(_ pusher: PusherConfig, tweaks: [String: JSON]?) -> JSON {
        var data = pusher.data
        data["url"] = nil
        var d: [String: JSON] = [
            "app_id": .string(pusher.id.appID), "pushkey": .string(pusher.id.pushkey),
            "pushkey_ts": .int(pusher.createdTS / 1000), "data": .object(data),
        ]
        if let tweaks, !tweaks.isEmpty { d["tweaks"] = .object(tweaks) }
        return .object(d)
    }

    /// The push for one notification. `badge` is the user's current badge.
    public static func notification(_ n: PushNotification, pusher: PusherConfig, badge: Int, options: Options) -> JSON {
        let tweaks = tweaks(n.actions)
        let type = n.event["type"]?.stringValue ?? ""
        let high = type == "m.room.encrypted" || (tweaks["highlight"]?.isTruthy ?? false) || (tweaks["sound"]?.isTruthy ?? false)
        var o: [String: JSON] = [
            "event_id": .string(n.eventID), "room_id": .string(n.roomID), "prio": .string(high ? "high" : "low"),
        ]
        if !badgeDisabled(pusher) { o["counts"] = .object(["unread": .int(Int64(badge))]) }
        if isEventIDOnly(pusher) {
            o["devices"] = .array([device(pusher, tweaks: nil)])
            return .object(["notification": .object(o)])
        }
        o["id"] = .string(n.eventID)
        o["type"] = .string(type)
        if let sender = n.event["sender"] { o["sender"] = sender }
        if options.includeContent, let content = n.event["content"] { o["content"] = content }
        if type == "m.room.member" {
            if let m = n.event["content"]?["membership"] { o["membership"] = m }
            o["user_is_target"] = .bool(n.event["state_key"]?.stringValue == n.userID)
        }
        if let ctx = n.context {
            for key in ["sender_display_name", "room_name", "room_alias"] {
                if let v = ctx[key], case .string = v { o[key] = v }
            }
        }
        o["devices"] = .array([device(pusher, tweaks: tweaks)])
        return .object(["notification": .object(o)])
    }

    /// The badge-only push sent when a receipt changes the badge.
    public static func badge(_ badge: Int, pusher: PusherConfig) -> JSON {
        .object(["notification": .object([
            "id": .string(""), "type": .null, "sender": .string(""),
            "counts": .object(["unread": .int(Int64(badge))]),
            "devices": .array([device(pusher, tweaks: nil)]),
        ])])
    }

    private static let emptyRejection = Array(#"{"rejected":[]}"#.utf8)

    /// The pushkeys the gateway rejected; nil when the answer is not a JSON object.
    public static func rejected(_ body: [UInt8]) -> [String]? {
        // The usual answer, spelt as Sygnal and most gateways spell it: no parse needed.
        if body.elementsEqual(emptyRejection) { return [] }
        guard case .object(let o) = try? JSON.parse(body) else { return nil }
        guard case .array(let keys)? = o["rejected"] else { return [] }
        return keys.compactMap(\.stringValue)
    }
}
