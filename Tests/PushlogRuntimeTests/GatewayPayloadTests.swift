import PushlogCore
import Testing
@testable import PushlogRuntime

@Suite("What a push gateway receives")
struct GatewayPayloadTests {
    let pusher = PusherConfig(id: PusherID(userID: "@alice:example.org", appID: "org.example.app", pushkey: "pk"),
                              kind: .http, data: ["url": .string("http://gw/_matrix/push/v1/notify"), "custom_key": .string("v")],
                              createdTS: 1_795_973_302_123)

    @Test("the default format carries the event, counts, context and a device without the url")
    func defaultFormat() throws {
        let n = note(1, actions: [.string("notify"), .object(["set_tweak": .string("highlight"), "value": .bool(false)])],
                     context: ["sender_display_name": .string("Bob"), "room_name": .string("Lunch")])
        let body = GatewayPayload.notification(n, pusher: pusher, badge: 2, options: .init())
        let o = try #require(body["notification"]?.objectValue)
        #expect(o["id"] == .string("$e1"))
        #expect(o["event_id"] == .string("$e1"))
        #expect(o["type"] == .string("m.room.message"))
        #expect(o["sender"] == .string("@bob:example.org"))
        #expect(o["prio"] == .string("low"))
        #expect(o["counts"] == .object(["unread": .int(2)]))
        #expect(o["sender_display_name"] == .string("Bob"))
        #expect(o["room_name"] == .string("Lunch"))
        #expect(o["content"]?["body"] == .string("message 1"))
        let device = try #require(o["devices"]?.arrayValue?.first)
        #expect(device["data"] == .object(["custom_key": .string("v")]))
        #expect(device["pushkey_ts"] == .int(1_795_973_302))
        #expect(device["tweaks"] == .object(["highlight": .bool(false)]))
    }

    @Test("prio is high for encrypted events, a truthy highlight or a sound")
    func prio() {
        func prio(_ n: PushNotification) -> JSON? {
            GatewayPayload.notification(n, pusher: pusher, badge: 1, options: .init())["notification"]?["prio"]
        }
        #expect(prio(note(1, type: "m.room.encrypted")) == .string("high"))
        #expect(prio(note(1, actions: [.string("notify"), .object(["set_tweak": .string("highlight")])])) == .string("high"))
        #expect(prio(note(1, actions: [.string("notify"), .object(["set_tweak": .string("sound"), "value": .string("default")])])) == .string("high"))
        #expect(prio(note(1, actions: [.string("notify"), .object(["set_tweak": .string("highlight"), "value": .bool(false)])])) == .string("low"))
        #expect(prio(note(1)) == .string("low"))
    }

    @Test("tweaks are left out when there are none")
    func noTweaks() {
        let body = GatewayPayload.notification(note(1), pusher: pusher, badge: 1, options: .init())
        #expect(body["notification"]?["devices"]?.arrayValue?.first?["tweaks"] == nil)
    }

    @Test("event_id_only sends only ids, prio, counts and a device without tweaks")
    func eventIDOnly() throws {
        var p = pusher
        p.data["format"] = .string("event_id_only")
        let n = note(1, actions: [.string("notify"), .object(["set_tweak": .string("sound"), "value": .string("default")])])
        let o = try #require(GatewayPayload.notification(n, pusher: p, badge: 1, options: .init())["notification"]?.objectValue)
        #expect(Set(o.keys) == ["event_id", "room_id", "prio", "counts", "devices"])
        #expect(o["devices"]?.arrayValue?.first?["tweaks"] == nil)
        #expect(o["devices"]?.arrayValue?.first?["data"] == .object(["custom_key": .string("v"), "format": .string("event_id_only")]))
    }

    @Test("membership and user_is_target are added for member events")
    func member() throws {
        let n = note(1, type: "m.room.member", stateKey: "@alice:example.org",
                     content: ["membership": .string("invite"), "displayname": .string("Alice")])
        let o = try #require(GatewayPayload.notification(n, pusher: pusher, badge: 1, options: .init())["notification"]?.objectValue)
        #expect(o["membership"] == .string("invite"))
        #expect(o["user_is_target"] == .bool(true))
    }

    @Test("counts are left out when the pusher disables the badge (MSC4076), content when include_content is off")
    func omissions() throws {
        var p = pusher
        p.data["org.matrix.msc4076.disable_badge_count"] = .bool(true)
        let o = try #require(GatewayPayload.notification(note(1), pusher: p, badge: 3, options: .init(includeContent: false))["notification"]?.objectValue)
        #expect(o["counts"] == nil)
        #expect(o["content"] == nil)
    }

    @Test("the badge-only push has an empty id, a null type, counts and a device without tweaks")
    func badgeOnly() {
        let body = GatewayPayload.badge(0, pusher: pusher)
        #expect(body == .object(["notification": .object([
            "id": .string(""), "type": .null, "sender": .string(""), "counts": .object(["unread": .int(0)]),
            "devices": .array([.object(["app_id": .string("org.example.app"), "pushkey": .string("pk"),
                                        "pushkey_ts": .int(1_795_973_302), "data": .object(["custom_key": .string("v")])])]),
        ])]))
    }

    @Test("the gateway's answer is parsed as JSON whatever it says it is; a non-object is refused")
    func rejectedParsing() {
        #expect(GatewayPayload.rejected(Array(#"{"rejected":["a","b"]}"#.utf8)) == ["a", "b"])
        #expect(GatewayPayload.rejected(Array("{}".utf8)) == [])
        #expect(GatewayPayload.rejected(Array("OK".utf8)) == nil)
        #expect(GatewayPayload.rejected(Array("[1]".utf8)) == nil)
    }

    @Test("backoff doubles from backoff_initial up to backoff_max")
    func backoff() {
        var c = PushConfig()
        c.backoffInitialMS = 100
        c.backoffMaxMS = 1_000
        #expect(c.backoff(failingSince: 0, now: 0, jitter: 0) == 100)
        #expect(c.backoff(failingSince: 0, now: 100, jitter: 0) == 100)
        #expect(c.backoff(failingSince: 0, now: 200, jitter: 0) == 200)
        #expect(c.backoff(failingSince: 0, now: 400, jitter: 0) == 400)
        #expect(c.backoff(failingSince: 0, now: 5_000, jitter: 0) == 1_000)
        #expect(c.backoff(failingSince: 0, now: 400, jitter: 0.1) == 440)
    }
}
