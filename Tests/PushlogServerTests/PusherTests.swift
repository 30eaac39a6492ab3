import Foundation
import Hummingbird
import HummingbirdTesting
import PushlogCore
import Testing
@testable import PushlogServer

@Suite("pushers")
struct PusherTests {
    @Test("PUT creates a pusher at the current head and answers its state")
    func create() async throws {
        try await withAPI { client, store in
            _ = try await client.send(.post, "/v1/notifications", Body.notifications([Body.notification(so: 1), Body.notification(so: 2)]))
            let reply = try await client.send(.put, "/v1/pushers", Body.pusher())
            #expect(reply.status == .ok)
            let p = try #require(reply.json["pusher"])
            #expect(p["user_id"] == .string("@alice:example.org"))
            #expect(p["kind"] == .string("http"))
            #expect(p["cursor"] == .int(3))
            #expect(p["pending"] == .int(0))
            #expect(p["failing_since"] == .null)
            let state = try #require(try store.read { view in try view.pusherState(alicePhone) })
            #expect(state.config.kind == .http)
            #expect(state.state.cursor == 3)
            guard case .pusherSet(let c) = try store.allEntries().last?.entry else { Issue.record("no pusher_set"); return }
            #expect(c.id == alicePhone)
        }
    }

    @Test("PUT with kind null removes the pusher and answers null")
    func removeWithKindNull() async throws {
        try await withAPI { client, store in
            _ = try await client.send(.put, "/v1/pushers", Body.pusher())
            let reply = try await client.send(.put, "/v1/pushers", Body.pusher(kind: "null"))
            #expect(reply.status == .ok)
            #expect(reply.json == .object(["pusher": .null]))
            #expect(try store.read { view in try view.pusherState(alicePhone) } == nil)
            #expect(try store.read { view in try view.head() } == 2)
            // Removing one that is not there changes nothing.
            let again = try await client.send(.put, "/v1/pushers", Body.pusher(kind: "null"))
            #expect(again.json == .object(["pusher": .null]))
            #expect(try store.read { view in try view.head() } == 2)
        }
    }

    @Test("PUT with a bad pusher names the field and appends nothing")
    func badPusher() async throws {
        try await withAPI { client, store in
            let kind = try await client.send(.put, "/v1/pushers", Body.pusher(kind: #""sms""#))
            #expect(kind.errcode == "M_INVALID_PARAM")
            #expect(kind.error.hasPrefix("kind: "))
            let url = Body.pusher().replacingOccurrences(of: "/_matrix/push/v1/notify", with: "/other")
            let badURL = try await client.send(.put, "/v1/pushers", url)
            #expect(badURL.errcode == "M_INVALID_PARAM")
            #expect(badURL.error.hasPrefix("data.url: "))
            let notObject = try await client.send(.put, "/v1/pushers", "[1]")
            #expect(notObject.errcode == "M_BAD_JSON")
            #expect(notObject.error.hasPrefix("body: "))
            let noKind = try await client.send(.put, "/v1/pushers", #"{"user_id": "@a:b", "app_id": "x", "pushkey": "k"}"#)
            #expect(noKind.errcode == "M_MISSING_PARAM")
            #expect(noKind.error == "kind: is required")
            #expect(try store.read { view in try view.head() } == 0)
        }
    }

    @Test("GET with user_id lists that user's pushers")
    func listOfUser() async throws {
        try await withAPI { client, _ in
            _ = try await client.send(.put, "/v1/pushers", Body.pusher(key: "k1"))
            _ = try await client.send(.put, "/v1/pushers", Body.pusher(key: "k2"))
            _ = try await client.send(.put, "/v1/pushers", Body.pusher("@bob:example.org", key: "k3"))
            let reply = try await client.send(.get, "/v1/pushers?user_id=%40alice%3Aexample.org")
            #expect(reply.status == .ok)
            let pushers = try #require(reply.json["pushers"]?.arrayValue)
            #expect(pushers.compactMap { $0["pushkey"]?.stringValue }.sorted() == ["k1", "k2"])
            let none = try await client.send(.get, "/v1/pushers?user_id=@carol:example.org")
            #expect(none.json["pushers"] == .array([]))
            let empty = try await client.send(.get, "/v1/pushers?user_id=")
            #expect(empty.errcode == "M_INVALID_PARAM")
            #expect(empty.error == "user_id: must not be empty")
        }
    }

    @Test("GET without user_id pages through every pusher")
    func listAllPaged() async throws {
        try await withAPI { client, _ in
            for i in 1...5 { _ = try await client.send(.put, "/v1/pushers", Body.pusher("@u\(i):example.org", key: "k\(i)")) }
            let all = try await client.send(.get, "/v1/pushers")
            #expect(all.json["pushers"]?.arrayValue?.count == 5)
            #expect(all.json["next_from"] == .null)
            var keys: [String] = []
            var from: String? = nil
            var pages = 0
            repeat {
                let reply = try await client.send(.get, "/v1/pushers?limit=2" + (from.map { "&from=\($0)" } ?? ""))
                #expect(reply.status == .ok)
                keys += reply.json["pushers"]?.arrayValue?.compactMap { $0["pushkey"]?.stringValue } ?? []
                from = reply.json["next_from"]?.stringValue
                pages += 1
            } while from != nil && pages < 10
            #expect(keys == ["k1", "k2", "k3", "k4", "k5"])
            #expect(pages == 3)
            let bad = try await client.send(.get, "/v1/pushers?limit=0")
            #expect(bad.errcode == "M_INVALID_PARAM")
            let badFrom = try await client.send(.get, "/v1/pushers?from=x")
            #expect(badFrom.errcode == "M_INVALID_PARAM")
        }
    }

    @Test("GET with user_id still refuses a malformed from or limit, naming it (found by schemathesis)")
    func listOfUserChecksPaging() async throws {
        try await withAPI { client, _ in
            _ = try await client.send(.put, "/v1/pushers", Body.pusher())
            let limit = try await client.send(.get, "/v1/pushers?user_id=%40alice%3Aexample.org&limit=-6856&from=601")
            #expect(limit.status == .badRequest)
            #expect(limit.errcode == "M_INVALID_PARAM")
            #expect(limit.error.hasPrefix("limit: "))
            let from = try await client.send(.get, "/v1/pushers?user_id=%40alice%3Aexample.org&from=-1")
            #expect(from.error.hasPrefix("from: "))
            let ok = try await client.send(.get, "/v1/pushers?user_id=%40alice%3Aexample.org&limit=1&from=5")
            #expect(ok.json["pushers"]?.arrayValue?.count == 1, "paging is ignored with user_id")
        }
    }

    @Test("DELETE removes a pusher; an absent one is 404 M_NOT_FOUND")
    func delete() async throws {
        try await withAPI { client, store in
            _ = try await client.send(.put, "/v1/pushers", Body.pusher())
            let uri = "/v1/pushers?user_id=%40alice%3Aexample.org&app_id=org.example.app&pushkey=key1"
            let reply = try await client.send(.delete, uri)
            #expect(reply.status == .ok)
            #expect(reply.json == .object([:]))
            #expect(try store.read { view in try view.pusherState(alicePhone) } == nil)
            guard case .pusherRemoved(let id) = try store.allEntries().last?.entry else { Issue.record("no pusher_removed"); return }
            #expect(id == alicePhone)
            let again = try await client.send(.delete, uri)
            #expect(again.status == .notFound)
            #expect(again.errcode == "M_NOT_FOUND")
            let missing = try await client.send(.delete, "/v1/pushers?user_id=%40alice%3Aexample.org&app_id=org.example.app")
            #expect(missing.status == .badRequest)
            #expect(missing.errcode == "M_MISSING_PARAM")
            #expect(missing.error == "pushkey: is required")
        }
    }
}
