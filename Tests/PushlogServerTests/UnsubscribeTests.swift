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

    @Test("GET of a good link shows a page whose form POSTs the same link, and removes nothing (link scanners fetch every link)")
    func getShowsConfirmation() async throws {
        try await withAPI(Self.config) { client, store in
            try seed(store)
            let uri = link(Self.email)
            let (status, page) = try await raw(client, .get, uri)
            #expect(status == .ok)
            #expect(page.contains("<form method=\"post\""))
            #expect(page.contains("name=\"List-Unsubscribe\" value=\"One-Click\""))
            let query = String(uri[uri.range(of: "?")!.lowerBound...])
            #expect(page.contains("action=\"\(query.replacingOccurrences(of: "&", with: "&amp;"))\""))
            #expect(page.contains("alice+x@example.org"))
            #expect(try store.read { view in try view.pusherState(Self.email) } != nil, "a GET changes nothing")
            #expect(try store.read { view in try view.pusherState(Self.other) } != nil)
        }
    }

    @Test("the confirmation page escapes the address it names")
    func pageEscapes() async throws {
        let hostile = PusherID(userID: "@alice:example.org", appID: "m.email", pushkey: "<b>\"x\"</b>@example.org")
        try await withAPI(Self.config) { client, store in
            try store.append([.pusherSet(PusherConfig(id: hostile, kind: .email))])
            let (status, page) = try await raw(client, .get, link(hostile))
            #expect(status == .ok)
            #expect(!page.contains("<b>"))
            #expect(page.contains("&lt;b&gt;&quot;x&quot;&lt;/b&gt;@example.org"))
        }
    }

    @Test("POST List-Unsubscribe=One-Click (RFC 8058) removes the pusher; again is still 200")
    func oneClickPost() async throws {
        try await withAPI(Self.config) { client, store in
            try seed(store)
            let (status, page) = try await raw(client, .post, link(Self.other), body: "List-Unsubscribe=One-Click")
            #expect(status == .ok)
            #expect(page.contains("unsubscribed"))
            #expect(try store.read { view in try view.pusherState(Self.other) } == nil)
            #expect(try store.read { view in try view.pusherState(Self.email) } != nil, "only the pusher the link names")
            let (again, _) = try await raw(client, .post, link(Self.other), body: "List-Unsubscribe=One-Click")
            #expect(again == .ok)
        }
    }

    @Test("POST with an empty body unsubscribes too; any other body is 400 and removes nothing")
    func postBodies() async throws {
        try await withAPI(Self.config) { client, store in
            try seed(store)
            let (refused, text) = try await raw(client, .post, link(Self.email), body: "List-Unsubscribe=Later")
            #expect(refused == .badRequest)
            #expect(text.contains("body"))
            #expect(try store.read { view in try view.pusherState(Self.email) } != nil)
            let (status, _) = try await raw(client, .post, link(Self.email))
            #expect(status == .ok)
            #expect(try store.read { view in try view.pusherState(Self.email) } == nil)
        }
    }

    @Test("a link older than its lifetime is 403 on GET and POST and removes nothing; a younger one works")
    func expired() async throws {
        let day: Int64 = 86_400_000
        try await withAPI(Self.config) { client, store in
            try seed(store)
            func uri(_ id: PusherID, age: Int64) -> String {
                let full = Self.signer.link(baseURL: "http://pushlog.example.org/", id, now: SystemClock.nowMS() - age)
                return String(full.dropFirst("http://pushlog.example.org".count))
            }
            let old = uri(Self.email, age: 91 * day)
            for method in [HTTPRequest.Method.get, .post] {
                let reply = try await client.send(method, old)
                #expect(reply.status == .forbidden)
                #expect(reply.errcode == "M_FORBIDDEN")
            }
            #expect(try store.read { view in try view.pusherState(Self.email) } != nil)
            let (status, _) = try await raw(client, .post, uri(Self.email, age: 89 * day), body: "List-Unsubscribe=One-Click")
            #expect(status == .ok)
            #expect(try store.read { view in try view.pusherState(Self.email) } == nil)
        }
    }

    @Test("a configured lifetime applies: a link made 2 s ago is refused under a 1 s lifetime")
    func shortLifetime() async throws {
        let signer = UnsubscribeSigner(key: Array(repeating: 7, count: 32), lifetimeMS: 1_000)
        try await withAPI(APIConfig(token: "secret", unsubscribeSigner: signer)) { client, store in
            try seed(store)
            let full = signer.link(baseURL: "http://x/", Self.email, now: SystemClock.nowMS() - 2_000)
            let reply = try await client.send(.post, String(full.dropFirst("http://x".count)))
            #expect(reply.status == .forbidden)
            #expect(try store.read { view in try view.pusherState(Self.email) } != nil)
        }
    }

    @Test("a link made before links carried a time (no t, signed v1) still works, so old mails keep their link")
    func legacyLink() async throws {
        try await withAPI(Self.config) { client, store in
            try seed(store)
            let id = Self.email
            let query = [("user_id", id.userID), ("app_id", id.appID), ("pushkey", id.pushkey), ("sig", Self.signer.signature(id))]
                .map { "\($0)=\(UnsubscribeSigner.percentEncoded($1))" }.joined(separator: "&")
            let (page, _) = try await raw(client, .get, "/v1/unsubscribe?" + query)
            #expect(page == .ok)
            #expect(try store.read { view in try view.pusherState(id) } != nil)
            let (status, _) = try await raw(client, .post, "/v1/unsubscribe?" + query, body: "List-Unsubscribe=One-Click")
            #expect(status == .ok)
            #expect(try store.read { view in try view.pusherState(id) } == nil)
        }
    }

    @Test("a forged or altered link is 403 M_FORBIDDEN and removes nothing",
          arguments: [
              "sig=0000000000000000000000000000000000000000000000000000000000000000",  // forged
              "swap-pushkey",  // the signature of another pusher
              "drop-sig",
              "truncate-sig",
              "change-time",  // the issue time is signed: a fresher t does not revive a link
              "drop-time",  // nor does dropping it make the link one of the first kind
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
            case "change-time", "drop-time":
                let t = good[good.range(of: "&t=")!.upperBound...].prefix { $0.isNumber }
                uri = good.replacingOccurrences(of: "&t=\(t)", with: how == "drop-time" ? "" : "&t=\(Int(t)! + 86_400)")
            default:
                uri = String(good[..<good.range(of: "sig=")!.lowerBound]) + how
            }
            #expect(uri != good)
            for method in [HTTPRequest.Method.get, .post] {
                let reply = try await client.send(method, uri)
                #expect(reply.status == .forbidden)
                #expect(reply.errcode == "M_FORBIDDEN")
            }
            #expect(try store.read { view in try view.pusherState(Self.email) } != nil)
            #expect(try store.read { view in try view.pusherState(Self.other) } != nil)
        }
    }

    @Test("a link signed with another data dir's key is refused")
    func otherKey() async throws {
        try await withAPI(Self.config) { client, store in
            try seed(store)
            let foreign = UnsubscribeSigner(key: Array(repeating: 8, count: 32)).link(baseURL: "http://x/", Self.email)
            let reply = try await client.send(.get, String(foreign.dropFirst("http://x".count)))
            #expect(reply.status == .forbidden)
            #expect(try store.read { view in try view.pusherState(Self.email) } != nil)
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
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["unsubscribe.key"], "no temporary file left behind")
    }

    @Test("concurrent first loads in one data dir all end with the same whole key")
    func concurrentKeyCreation() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-unsub-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let signatures = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<8 { group.addTask { try UnsubscribeSigner.load(dataDir: dir).signature(Self.email) } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(signatures.count == 1)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/unsubscribe.key")).count == 32)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["unsubscribe.key"])
    }

    @Test("HMAC-SHA256 matches RFC 4231 test case 2")
    func hmacVector() {
        let mac = Hashing.hmacSHA256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(mac.map { String(format: "%02x", $0) }.joined() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }
}
