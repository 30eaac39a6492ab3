import Foundation
import Logging
import PushlogCore
@testable import PushlogMail

/// Notifications and digests for the template, renderer and subject tests.
enum DigestFixture {
    static let alice = "@alice:example.org"
    static let bob = "@bob:example.org"
    static let carol = "@carol:example.org"
    static let lunch = "!lunch:example.org"
    static let dev = "!dev:example.org"
    /// 2026-11-29 14:05 UTC.
    static let t0: Int64 = 1_795_961_100_000
    static let minute: Int64 = 60_000

    static func context(sender: String? = "Bob", room: String? = "Lunch", alias: String? = nil,
                        roomAvatar: String? = nil) -> [String: JSON] {
        var c: [String: JSON] = [:]
        if let sender { c["sender_display_name"] = .string(sender) }
        if let room { c["room_name"] = .string(room) }
        if let alias { c["room_alias"] = .string(alias) }
        if let roomAvatar { c["room_avatar_url"] = .string(roomAvatar) }
        return c
    }

    static func message(_ eventID: String, in room: String = lunch, from sender: String = bob,
                        body: String = "Hi!", msgtype: String = "m.text", at ts: Int64 = t0,
                        content: [String: JSON]? = nil, type: String = "m.room.message",
                        context: [String: JSON]? = DigestFixture.context()) -> PushNotification {
        let content = content ?? ["msgtype": .string(msgtype), "body": .string(body)]
        return PushNotification(
            userID: alice, roomID: room, eventID: eventID, streamOrdering: 1, receivedTS: ts,
            event: ["type": .string(type), "sender": .string(sender), "content": .object(content),
                    "origin_server_ts": .int(ts)],
            context: context)
    }

    static func invite(_ eventID: String, in room: String = lunch, from sender: String = bob, at ts: Int64 = t0,
                       context: [String: JSON]? = DigestFixture.context()) -> PushNotification {
        PushNotification(
            userID: alice, roomID: room, eventID: eventID, streamOrdering: 1, receivedTS: ts,
            event: ["type": .string("m.room.member"), "sender": .string(sender), "state_key": .string(alice),
                    "content": .object(["membership": .string("invite")]), "origin_server_ts": .int(ts)],
            context: context)
    }

    static func digest(_ notifications: [PushNotification], reasonRoom: String? = nil,
                       app: String = "Matrix", clientBaseURL: String = "https://matrix.to",
                       lastSentTS: Int64? = nil, throttleMS: Int64? = nil) -> Digest {
        Digest(
            userID: alice, appName: app, clientBaseURL: clientBaseURL, publicBaseURL: "https://hs.example.org",
            unsubscribeLink: "https://push.example.org/v1/unsubscribe?user_id=%40alice%3Aexample.org&sig=abc",
            now: t0 + 30 * minute,
            reason: .init(roomID: reasonRoom ?? notifications.first?.roomID ?? lunch, receivedAt: t0,
                          delayBeforeMail: 10 * minute, lastSentTS: lastSentTS, throttleMS: throttleMS),
            notifications: notifications)
    }

    static func builtIn() throws -> EmailTemplates {
        try EmailTemplates.load(directory: nil, logger: Logger(label: "test"))
    }

    static func render(_ digest: Digest, maxRooms: Int = 10, maxMessagesPerRoom: Int = 10) throws -> RenderedDigest {
        try DigestRenderer(templates: builtIn(), maxRooms: maxRooms, maxMessagesPerRoom: maxMessagesPerRoom).render(digest)
    }

    static func subject(_ notifications: [PushNotification], reasonRoom: String? = nil) throws -> String {
        try render(digest(notifications, reasonRoom: reasonRoom)).subject
    }
}

extension String {
    /// Where `needle` first occurs (as an offset), for ordering assertions; nil when absent.
    func offset(of needle: String) -> Int? {
        guard let range = range(of: needle) else { return nil }
        return distance(from: startIndex, to: range.lowerBound)
    }

    func occurrences(of needle: String) -> Int {
        components(separatedBy: needle).count - 1
    }
}
