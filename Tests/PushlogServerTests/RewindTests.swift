import Hummingbird
import HummingbirdTesting
import PushlogCore
import Testing
@testable import PushlogServer

@Suite("rewinding cursors")
struct RewindTests {
    let bobPhone = PusherID(userID: "@bob:example.org", appID: "org.example.app", pushkey: "key2")

    /// Alice and Bob each with a pusher and three notifications, both cursors at the head (8).
    func setUp(_ client: any TestClientProtocol, _ store: Store) async throws {
        _ = try await client.send(.put, "/v1/pushers", Body.pusher())
        _ = try await client.send(.put, "/v1/pushers", Body.pusher("@bob:example.org", key: "key2"))
        let batch = (1...3).flatMap { [Body.notification(so: $0), Body.notification("@bob:example.org", so: $0)] }
        _ = try await client.send(.post, "/v1/notifications", Body.notifications(batch))
        try store.setCursor(alicePhone, 8)
        try store.setCursor(bobPhone, 8)
    }

    @Test("to_pos moves matching cursors back to to_pos - 1, never forward")
    func toPos() async throws {
        try await withAPI { client, store in
            try await setUp(client, store)
            let reply = try await client.send(.post, "/v1/pushers/rewind", #"{"to_pos": 5, "user_id": "@alice:example.org"}"#)
            #expect(reply.status == .ok)
            #expect(reply.json == .object(["rewound": .int(1)]))
            #expect(try store.read { view in try view.pusherState(alicePhone) }?.state.cursor == 4)
            #expect(try store.read { view in try view.pusherState(alicePhone) }?.pending == 2)
            #expect(try store.read { view in try view.pusherState(bobPhone) }?.state.cursor == 8)
            let forward = try await client.send(.post, "/v1/pushers/rewind", #"{"to_pos": 7}"#)
            #expect(forward.json == .object(["rewound": .int(1)]))
            #expect(try store.read { view in try view.pusherState(alicePhone) }?.state.cursor == 4)
            #expect(try store.read { view in try view.pusherState(bobPhone) }?.state.cursor == 6)
        }
    }

    @Test("since_ts rewinds to what was appended at or after that time")
    func sinceTS() async throws {
        try await withAPI { client, store in
            try await setUp(client, store)
            let future = try await client.send(.post, "/v1/pushers/rewind", #"{"since_ts": 99999999999999}"#)
            #expect(future.json == .object(["rewound": .int(0)]))
            let all = try await client.send(.post, "/v1/pushers/rewind", #"{"since_ts": 0, "pushkey": "key2"}"#)
            #expect(all.json == .object(["rewound": .int(1)]))
            #expect(try store.read { view in try view.pusherState(bobPhone) }?.state.cursor == 0)
            #expect(try store.read { view in try view.pusherState(alicePhone) }?.state.cursor == 8)
        }
    }

    @Test("rewind needs exactly one of to_pos and since_ts, of the right type")
    func badRequests() async throws {
        try await withAPI { client, _ in
            let neither = try await client.send(.post, "/v1/pushers/rewind", #"{"user_id": "@alice:example.org"}"#)
            #expect(neither.status == .badRequest)
            #expect(neither.errcode == "M_MISSING_PARAM")
            let both = try await client.send(.post, "/v1/pushers/rewind", #"{"to_pos": 1, "since_ts": 1}"#)
            #expect(both.errcode == "M_INVALID_PARAM")
            let negative = try await client.send(.post, "/v1/pushers/rewind", #"{"to_pos": -1}"#)
            #expect(negative.errcode == "M_INVALID_PARAM")
            #expect(negative.error.hasPrefix("to_pos: "))
            let string = try await client.send(.post, "/v1/pushers/rewind", #"{"to_pos": "3"}"#)
            #expect(string.errcode == "M_BAD_JSON")
            let user = try await client.send(.post, "/v1/pushers/rewind", #"{"to_pos": 1, "user_id": 5}"#)
            #expect(user.errcode == "M_BAD_JSON")
            #expect(user.error.hasPrefix("user_id: "))
            let empty = try await client.send(.post, "/v1/pushers/rewind")
            #expect(empty.errcode == "M_NOT_JSON")
        }
    }
}
