import Foundation
import Hummingbird
import HummingbirdTesting
import PushlogCore
import Testing
@testable import PushlogServer

@Suite("/v1/unsubscribe: the signed one-click link of an email")
struct UnsubscribeTests {
    static let signer = UnsubscribeSigner(key: Array(repeating: 7, count: 32))
    static let config = APIConfig(token: "secret", unsubscribeSigner: signer)
    static let email = PusherID(userID: "@alice:example.org", appID: "m.email", pushkey: "alice+x@example.org")
    static let other = PusherID(userID: "@alice:example.org", appID: "m.email", pushkey: "alice@work.example.org")

    func seed(_ store: Store) throws {
        for id in [Self.email, Self.other] {
            try store.append([.pusherSet(PusherConfig(id: id, kind: .email))])
        }
    }

    /// The path and query of the link a mail would carry.
    func link(_ id: PusherID) -> String {
        let full = Self.signer.link(baseURL: "http://pushlog.example.org/", id)
        return String(full.dropFirst("http://pushlog.example.org".count))
    }

    func raw(_ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, body: String? = nil) async throws -> (HTTPResponse.Status, String) {
        let response = try await client.execute(uri: uri, method: method, headers: [:], body: body.map { ByteBuffer(string: $0) })
        return (response.status, String(buffer: response.body))
    }

    @Test("GET with a good link removes exactly that email pusher, without a token, and says so; again is still 200")
    func get() async throws {
        try await withAPI(Self.config) { client, store in
            try seed(store)
            let (status, page) = try await raw(client, .get, link(Self.email))
            #expect(status == .ok)
            #expect(page.contains("unsubscribed"))
            #expect(try store.pusherState(Self.email) == nil)
            #expect(try store.pusherState(Self.other) != nil, "only the pusher the link names")
            let (again, _) = try await raw(client, .get, link(Self.email))
            #expect(again == .ok)
        }
    }

    @Test("POST List-Unsubscribe=One-Click (RFC 8058) removes the pusher")
    func oneClickPost() async throws {
        try await withAPI(Self.config) { client, store in
            try seed(store)
            let (status, _) = try await raw(client, .post, link(Self.other), body: "List-Unsubscribe=One-Click")
            #expect(status == .ok)
            #expect(try store.pusherState(Self.other) == nil)
            #expect(try store.pusherState(Self.email) != nil)
        }
    }

    @Test("a forged or altered link is 403 M_FORBIDDEN and removes nothing",
          arguments: [
              "sig=0000000000000000000000000000000000000000000000000000000000000000",  // forged
              "swap-pushkey",  // the signature of another pusher
              "drop-sig",
              "truncate-sig",
          ])
    func forged(_ how: String) async throws {
        try await withAPI(Self.config) { client, store in
            try seed(store)
            let good = link(Self.email)
            let uri: String
            switch how {
            case "swap-pushkey":
                uri = good.replacingOccurrences(of: UnsubscribeSigner.percentEncoded(Self.email.pushkey),
                                                with: UnsubscribeSigner.percentEncoded(Self.other.pushkey))
            case "drop-sig":
                uri = String(good[..<good.range(of: "&sig=")!.lowerBound])
            case "truncate-sig":
                uri = String(good.dropLast(2))
            default:
                uri = String(good[..<good.range(of: "sig=")!.lowerBound]) + how
            }
            #expect(uri != good)
            let reply = try await client.send(.get, uri)
            #expect(reply.status == .forbidden)
            #expect(reply.errcode == "M_FORBIDDEN")
            #expect(try store.pusherState(Self.email) != nil)
            #expect(try store.pusherState(Self.other) != nil)
        }
    }

    @Test("a link signed with another data dir's key is refused")
    func otherKey() async throws {
        try await withAPI(Self.config) { client, store in
            try seed(store)
            let foreign = UnsubscribeSigner(key: Array(repeating: 8, count: 32)).link(baseURL: "http://x/", Self.email)
            let reply = try await client.send(.get, String(foreign.dropFirst("http://x".count)))
            #expect(reply.status == .forbidden)
            #expect(try store.pusherState(Self.email) != nil)
        }
    }

    @Test("the key is made once in the data dir, owner-only, and reloaded the same")
    func keyFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-unsub-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try UnsubscribeSigner.load(dataDir: dir)
        let b = try UnsubscribeSigner.load(dataDir: dir)
        #expect(a.signature(Self.email) == b.signature(Self.email))
        #expect(a.signature(Self.email) != a.signature(Self.other))
        let mode = try FileManager.default.attributesOfItem(atPath: dir + "/unsubscribe.key")[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test("HMAC-SHA256 matches RFC 4231 test case 2")
    func hmacVector() {
        let mac = HMAC.sha256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(mac.map { String(format: "%02x", $0) }.joined() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }
}
