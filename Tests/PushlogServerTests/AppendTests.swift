import Foundation
import Hummingbird
import HummingbirdTesting
import PushlogCore
import Testing
@testable import PushlogServer

@Suite("appending notifications and receipts")
struct AppendTests {
    @Test("a batch of notifications is durable and answered with its positions")
    func notifications() async throws {
        try await withAPI { client, store in
            let reply = try await client.send(.post, "/v1/notifications", Body.notifications([Body.notification(so: 1), Body.notification(so: 2)]))
            #expect(reply.status == .ok)
            #expect(reply.json == .object(["first_pos": .int(1), "last_pos": .int(2)]))
            #expect(try store.read { view in try view.head() } == 2)
            let entries = try store.allEntries()
            #expect(entries.map(\.pos) == [1, 2])
            guard case .notification(let n) = entries[1].entry else { Issue.record("not a notification"); return }
            #expect(n.userID == "@alice:example.org")
            #expect(n.streamOrdering == 2)
            #expect(n.threadID == "main")

            let next = try await client.send(.post, "/v1/notifications", Body.notifications([Body.notification(so: 3)]))
            #expect(next.json == .object(["first_pos": .int(3), "last_pos": .int(3)]))
        }
    }

    @Test("a batch of receipts is durable and answered with its positions")
    func receipts() async throws {
        try await withAPI { client, store in
            _ = try await client.send(.post, "/v1/notifications", Body.notifications([Body.notification(so: 5)]))
            let reply = try await client.send(.post, "/v1/receipts", Body.receipts([Body.receipt(so: 5), Body.receipt("@bob:example.org", so: 5, type: "m.read.private")]))
            #expect(reply.status == .ok)
            #expect(reply.json == .object(["first_pos": .int(2), "last_pos": .int(3)]))
            let entries = try store.allEntries()
            guard case .receipt(let r) = entries[2].entry else { Issue.record("not a receipt"); return }
            #expect(r.userID == "@bob:example.org")
            #expect(r.receiptType == .readPrivate)
        }
    }

    @Test("a batch with one bad element appends nothing and names the index and field")
    func allOrNothing() async throws {
        try await withAPI { client, store in
            let batch = Body.notifications([Body.notification(so: 1), Body.notification(so: 2), Body.notification(so: -3)])
            let reply = try await client.send(.post, "/v1/notifications", batch)
            #expect(reply.status == .badRequest)
            #expect(reply.errcode == "M_INVALID_PARAM")
            #expect(reply.error == "notifications[2].stream_ordering: must not be negative")
            #expect(try store.read { view in try view.head() } == 0)
            #expect(try store.allEntries().isEmpty)
        }
    }

    @Test("a field of the wrong type is M_BAD_JSON naming the index and field")
    func wrongType() async throws {
        try await withAPI { client, store in
            let bad = Body.notification(so: 1).replacingOccurrences(of: #""room_id": "!r:example.org""#, with: #""room_id": 7"#)
            let reply = try await client.send(.post, "/v1/notifications", Body.notifications([Body.notification(so: 1), bad]))
            #expect(reply.status == .badRequest)
            #expect(reply.errcode == "M_BAD_JSON")
            #expect(reply.error.hasPrefix("notifications[1].room_id: "))
            let notObject = try await client.send(.post, "/v1/receipts", #"{"receipts": [3]}"#)
            #expect(notObject.errcode == "M_BAD_JSON")
            #expect(notObject.error.hasPrefix("receipts[0]: "))
            let notArray = try await client.send(.post, "/v1/receipts", #"{"receipts": {}}"#)
            #expect(notArray.errcode == "M_BAD_JSON")
            #expect(notArray.error.hasPrefix("receipts: "))
            #expect(try store.read { view in try view.head() } == 0)
        }
    }

    @Test("a missing field is M_MISSING_PARAM; a bad value is M_INVALID_PARAM")
    func missingAndInvalid() async throws {
        try await withAPI { client, _ in
            let noEvent = Body.notification(so: 1).replacingOccurrences(of: #""event_id": "$e1","#, with: "")
            let missing = try await client.send(.post, "/v1/notifications", Body.notifications([noEvent]))
            #expect(missing.status == .badRequest)
            #expect(missing.errcode == "M_MISSING_PARAM")
            #expect(missing.error == "notifications[0].event_id: is required")
            let noKey = try await client.send(.post, "/v1/notifications", #"{"receipts": []}"#)
            #expect(noKey.errcode == "M_MISSING_PARAM")
            #expect(noKey.error.hasPrefix("notifications: "))
            let badType = try await client.send(.post, "/v1/receipts", Body.receipts([Body.receipt(type: "m.unread")]))
            #expect(badType.errcode == "M_INVALID_PARAM")
            #expect(badType.error.hasPrefix("receipts[0].receipt_type: "))
        }
    }

    @Test("an empty batch is M_INVALID_PARAM")
    func emptyBatch() async throws {
        try await withAPI { client, store in
            let reply = try await client.send(.post, "/v1/notifications", #"{"notifications": []}"#)
            #expect(reply.status == .badRequest)
            #expect(reply.errcode == "M_INVALID_PARAM")
            let receipts = try await client.send(.post, "/v1/receipts", #"{"receipts": []}"#)
            #expect(receipts.errcode == "M_INVALID_PARAM")
            #expect(try store.read { view in try view.head() } == 0)
        }
    }

    @Test("an empty, unparsable or non-object body is refused")
    func notJSON() async throws {
        try await withAPI { client, _ in
            for body in [nil, "", "{\"notifications\": [", "not json"] as [String?] {
                let reply = try await client.send(.post, "/v1/notifications", body)
                #expect(reply.status == .badRequest)
                #expect(reply.errcode == "M_NOT_JSON")
            }
            let array = try await client.send(.post, "/v1/notifications", "[]")
            #expect(array.errcode == "M_BAD_JSON")
        }
    }

    @Test("a body over max_body_size gets 413 M_TOO_LARGE and appends nothing")
    func tooLarge() async throws {
        try await withAPI(APIConfig(maxBodySize: 512)) { client, store in
            let big = Body.notifications((1...10).map { Body.notification(so: $0) })
            let reply = try await client.send(.post, "/v1/notifications", big)
            #expect(reply.status == .contentTooLarge)
            #expect(reply.errcode == "M_TOO_LARGE")
            #expect(try store.read { view in try view.head() } == 0)
            let small = try await client.send(.post, "/v1/notifications", Body.notifications([Body.notification(so: 1)]))
            #expect(small.status == .ok)
        }
    }
}
