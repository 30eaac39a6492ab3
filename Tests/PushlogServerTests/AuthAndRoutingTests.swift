import Hummingbird
import HummingbirdTesting
import PushlogCore
import Testing
@testable import PushlogServer

@Suite("auth, health and routing")
struct AuthAndRoutingTests {
    let secured = APIConfig(token: "s3cret", maxBodySize: 1 << 20)

    @Test("/health answers the head without a token")
    func health() async throws {
        try await withAPI(secured) { client, _ in
            let empty = try await client.send(.get, "/health")
            #expect(empty.status == .ok)
            #expect(empty.json == .object(["status": .string("ok"), "head": .int(0)]))
            _ = try await client.send(.post, "/v1/notifications", Body.notifications([Body.notification()]), token: "s3cret")
            let after = try await client.send(.get, "/health")
            #expect(after.json["head"] == .int(1))
        }
    }

    @Test("a /v1 request without the token is 401 M_MISSING_TOKEN, with a wrong one M_UNKNOWN_TOKEN")
    func token() async throws {
        try await withAPI(secured) { client, store in
            let body = Body.notifications([Body.notification()])
            let missing = try await client.send(.post, "/v1/notifications", body)
            #expect(missing.status == .unauthorized)
            #expect(missing.errcode == "M_MISSING_TOKEN")
            for wrong in ["s3cre", "s3cret!", "S3CRET", ""] {
                let reply = try await client.send(.post, "/v1/notifications", body, token: wrong)
                #expect(reply.status == .unauthorized)
                #expect(reply.errcode == "M_UNKNOWN_TOKEN")
            }
            let list = try await client.send(.get, "/v1/pushers")
            #expect(list.errcode == "M_MISSING_TOKEN")
            #expect(try store.read { view in try view.head() } == 0)
            let ok = try await client.send(.post, "/v1/notifications", body, token: "s3cret")
            #expect(ok.status == .ok)
        }
    }

    @Test("the token compare is exact")
    func compare() {
        let expected = Array("abc".utf8)
        #expect(BearerToken.constantTimeEqual(Array("abc".utf8), expected))
        #expect(!BearerToken.constantTimeEqual(Array("abd".utf8), expected))
        #expect(!BearerToken.constantTimeEqual(Array("abcabc".utf8), expected))
        #expect(!BearerToken.constantTimeEqual([], expected))
    }

    @Test("an unknown path is 404 M_NOT_FOUND; a wrong method on a known path is 405")
    func routing() async throws {
        try await withAPI { client, _ in
            let unknown = try await client.send(.get, "/v1/nothing")
            #expect(unknown.status == .notFound)
            #expect(unknown.errcode == "M_NOT_FOUND")
            let root = try await client.send(.get, "/")
            #expect(root.errcode == "M_NOT_FOUND")
            let method = try await client.send(.get, "/v1/notifications")
            #expect(method.status == .methodNotAllowed)
            #expect(method.errcode == "M_UNRECOGNIZED")
        }
    }
}
