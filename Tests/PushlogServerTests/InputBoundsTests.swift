import Foundation
import Hummingbird
import HummingbirdTesting
import PushlogCore
import Testing
@testable import PushlogServer

/// Ids at exactly their limits, and one byte (or character) over.
private enum Bound {
    static func id(_ sigil: String, _ bytes: Int) -> String {
        sigil + String(repeating: "x", count: bytes - sigil.utf8.count - ":e.org".utf8.count) + ":e.org"
    }
    static let user = id("@", Limits.idBytes), room = id("!", Limits.idBytes)
    static let event = id("$", Limits.idBytes), thread = id("$", Limits.threadIDBytes)
    static let appID = String(repeating: "a", count: Limits.appIDChars)
    static let pushkey = String(repeating: "k", count: Limits.pushkeyBytes)

    static func notification(user: String = user, room: String = room, event: String = event, thread: String = thread,
                             actions: String = #"["notify"]"#, context: String = "{}") -> String {
        """
        {"user_id": "\(user)", "room_id": "\(room)", "event_id": "\(event)", "stream_ordering": 5, "thread_id": "\(thread)",
         "actions": \(actions), "context": \(context),
         "event": {"type": "m.room.message", "sender": "@bob:example.org", "content": {"body": "Hi"}}}
        """
    }

    static func receipt(user: String = user, room: String = room, thread: String = thread) -> String {
        #"{"user_id": "\#(user)", "room_id": "\#(room)", "event_id": "\#(event)", "stream_ordering": 5, "receipt_type": "m.read", "thread_id": "\#(thread)"}"#
    }

    static func query(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! }
}

@Suite("API input bounds")
struct InputBoundsTests {
    @Test("the longest legal ids are accepted by every route and stored")
    func atTheLimits() async throws {
        try await withAPI { client, store in
            let put = try await client.send(.put, "/v1/pushers", Body.pusher(Bound.user, app: Bound.appID, key: Bound.pushkey))
            #expect(put.status == .ok, "\(put.json)")
            let n = try await client.send(.post, "/v1/notifications", Body.notifications([Bound.notification(), Bound.notification(thread: "main")]))
            #expect(n.status == .ok, "\(n.json)")
            let r = try await client.send(.post, "/v1/receipts", Body.receipts([Bound.receipt(), Bound.receipt(thread: "main")]))
            #expect(r.status == .ok, "\(r.json)")
            let list = try await client.send(.get, "/v1/pushers?user_id=\(Bound.query(Bound.user))")
            #expect(list.status == .ok)
            #expect(list.json["pushers"]?.arrayValue?.count == 1)
            let rewind = try await client.send(.post, "/v1/pushers/rewind",
                                               #"{"to_pos": 1, "user_id": "\#(Bound.user)", "app_id": "\#(Bound.appID)", "pushkey": "\#(Bound.pushkey)"}"#)
            #expect(rewind.status == .ok, "\(rewind.json)")
            #expect(try store.rebuild(repair: false).isClean)
            let del = try await client.send(.delete, "/v1/pushers?user_id=\(Bound.query(Bound.user))&app_id=\(Bound.appID)&pushkey=\(Bound.pushkey)")
            #expect(del.status == .ok, "\(del.json)")
        }
    }

    @Test("one byte over any limit is 400 M_INVALID_PARAM naming the field, and nothing is appended")
    func overTheLimits() async throws {
        try await withAPI { client, store in
            let bodies: [(String, String, String)] = [
                ("/v1/notifications", Body.notifications([Bound.notification(), Bound.notification(user: Bound.user + "x")]), "notifications[1].user_id"),
                ("/v1/notifications", Body.notifications([Bound.notification(room: Bound.room + "x")]), "notifications[0].room_id"),
                ("/v1/notifications", Body.notifications([Bound.notification(event: Bound.event + "x")]), "notifications[0].event_id"),
                ("/v1/notifications", Body.notifications([Bound.notification(thread: Bound.thread + "x")]), "notifications[0].thread_id"),
                ("/v1/notifications", Body.notifications([Bound.notification(actions: "[" + Array(repeating: #""notify""#, count: Limits.actionsCount + 1).joined(separator: ",") + "]")]), "notifications[0].actions"),
                ("/v1/notifications", Body.notifications([Bound.notification(actions: #"["notify", {"set_tweak": "sound", "value": "\#(String(repeating: "s", count: Limits.actionsBytes))"}]"#)]), "notifications[0].actions"),
                ("/v1/notifications", Body.notifications([Bound.notification(context: #"{"extra": "\#(String(repeating: "c", count: Limits.contextBytes))"}"#)]), "notifications[0].context"),
                ("/v1/receipts", Body.receipts([Bound.receipt(thread: Bound.thread + "x")]), "receipts[0].thread_id"),
                ("/v1/receipts", Body.receipts([Bound.receipt(user: Bound.user + "x")]), "receipts[0].user_id"),
            ]
            for (path, body, field) in bodies {
                let reply = try await client.send(.post, path, body)
                #expect(reply.status == .badRequest, "\(field): \(reply.json)")
                #expect(reply.errcode == "M_INVALID_PARAM", "\(field): \(reply.json)")
                #expect(reply.error.hasPrefix(field + ":"), "\(field): \(reply.error)")
            }
            let pushers: [(String, String)] = [
                (Body.pusher(Bound.user + "x"), "user_id"),
                (Body.pusher(app: Bound.appID + "a"), "app_id"),
                (Body.pusher(key: Bound.pushkey + "k"), "pushkey"),
            ]
            for (body, field) in pushers {
                let reply = try await client.send(.put, "/v1/pushers", body)
                #expect(reply.status == .badRequest && reply.errcode == "M_INVALID_PARAM", "\(field): \(reply.json)")
                #expect(reply.error.hasPrefix(field + ":"), "\(field): \(reply.error)")
            }
            #expect(try store.read { view in try view.head() } == 0, "nothing was appended")

            let long = Bound.query(Bound.user + String(repeating: "x", count: 400))
            let queries: [(HTTPRequest.Method, String, String)] = [
                (.get, "/v1/pushers?user_id=\(long)", "user_id"),
                (.delete, "/v1/pushers?user_id=\(long)&app_id=a&pushkey=k", "user_id"),
                (.delete, "/v1/pushers?user_id=%40a%3Ax&app_id=\(Bound.appID)a&pushkey=k", "app_id"),
                (.delete, "/v1/pushers?user_id=%40a%3Ax&app_id=a&pushkey=\(Bound.pushkey)k", "pushkey"),
            ]
            for (method, uri, field) in queries {
                let reply = try await client.send(method, uri)
                #expect(reply.status == .badRequest && reply.errcode == "M_INVALID_PARAM", "\(uri.prefix(40)): \(reply.json)")
                #expect(reply.error.hasPrefix(field + ":"), "\(reply.error)")
            }
            for (field, value) in [("user_id", Bound.user + "x"), ("app_id", Bound.appID + "a"), ("pushkey", Bound.pushkey + "k")] {
                let reply = try await client.send(.post, "/v1/pushers/rewind", #"{"to_pos": 1, "\#(field)": "\#(value)"}"#)
                #expect(reply.status == .badRequest && reply.errcode == "M_INVALID_PARAM", "\(field): \(reply.json)")
                #expect(reply.error.hasPrefix(field + ":"), "\(reply.error)")
            }
        }
    }
}
