import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The token is bound to the `/v1` routes, not to how a request spells its path: the real
/// `pushlog serve`, sent request targets byte for byte.
@Suite("the API token against every spelling of a path")
struct RouteAuthTests {
    static let token = "s3cret-token"
    static let pushkey = "PUSHKEY-SECRET-0123"

    /// One protected route: its method, its path, a query, and a body that it would accept.
    struct Route {
        var method: String
        var path: String
        var query = ""
        var body = ""
    }

    static let pusherBody = #"{"user_id": "@mallory:example.org", "kind": "http", "app_id": "a", "pushkey": "mallory", "app_display_name": "A", "device_display_name": "D", "lang": "en", "data": {"url": "https://push.example.org/_matrix/push/v1/notify"}}"#

    static let routes: [Route] = [
        Route(method: "POST", path: "/v1/notifications",
              body: #"{"notifications": [{"user_id": "@alice:example.org", "room_id": "!r:example.org", "event_id": "$x", "stream_ordering": 9, "actions": ["notify"], "event": {"type": "m.room.message", "sender": "@bob:example.org", "content": {}}}]}"#),
        Route(method: "POST", path: "/v1/receipts",
              body: #"{"receipts": [{"user_id": "@alice:example.org", "room_id": "!r:example.org", "event_id": "$x", "stream_ordering": 9, "receipt_type": "m.read"}]}"#),
        Route(method: "PUT", path: "/v1/pushers", body: pusherBody),
        Route(method: "GET", path: "/v1/pushers"),
        Route(method: "GET", path: "/v1/pushers", query: "?user_id=@alice:example.org"),
        Route(method: "DELETE", path: "/v1/pushers", query: "?user_id=@alice:example.org&app_id=com.example.app&pushkey=\(pushkey)"),
        Route(method: "POST", path: "/v1/pushers/rewind", body: #"{"to_pos": 1}"#),
    ]

    /// Ways to spell `path` that a lenient router, a proxy or a client might treat as the same.
    static func spellings(of path: String) -> [String] {
        let rest = String(path.dropFirst("/v1/".count))  // "pushers", "pushers/rewind", …
        let encodedRest = rest.replacingOccurrences(of: "/", with: "%2F")
        return [
            path,
            "/" + path, "//" + path, "/v1//" + rest, "/v1///" + rest, path + "/", path + "//",
            "/./" + path.dropFirst(), "/v1/./" + rest, path + "/.", "/x/../" + path.dropFirst(), "/v1/../v1/" + rest,
            "/v1/" + rest + "/..", "/v1/%2E/" + rest, "/%2E%2E" + path,
            "/v1%2F" + rest, "/v1/" + encodedRest, "%2Fv1/" + rest, "/%2Fv1/" + rest, path + "%2F", "/%76%31/" + rest,
            "/V1/" + rest, "/v1/" + rest.uppercased(), path.uppercased(),
            path + ";a=b", "/v1;x/" + rest, path + "%00", path + "%20", path + "\\", "/v1\\" + rest,
            "http://127.0.0.1" + path, "*",
        ]
    }

    @Test("no spelling of a /v1 path reaches its route without the token: 401 or 404, never the resource")
    func everySpellingNeedsTheToken() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-auth-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try ServeProcess(dataDir: dir, environment: ["PUSHLOG_API_TOKEN": Self.token])
        defer { server.stop(SIGKILL) }
        let auth = ["Authorization": "Bearer \(Self.token)", "Content-Type": "application/json"]

        // A pusher whose key must never be shown without the token.
        let pusher = Self.pusherBody.replacingOccurrences(of: "@mallory", with: "@alice")
            .replacingOccurrences(of: #""app_id": "a", "pushkey": "mallory""#, with: #""app_id": "com.example.app", "pushkey": "\#(Self.pushkey)""#)
        let put = try rawHTTP(port: server.port, method: "PUT", target: "/v1/pushers", headers: auth, body: pusher)
        #expect(put.status == 200, "seeding the pusher: \(put.body)")
        let head = try healthHead(server.port)

        var tried = 0
        for route in Self.routes {
            for spelling in Self.spellings(of: route.path) {
                for headers in [["Content-Type": "application/json"], ["Authorization": "Bearer wrong", "Content-Type": "application/json"],
                                ["Authorization": "Basic \(Self.token)"]] {
                    let target = spelling + (spelling == "*" ? "" : route.query)
                    let reply = try rawHTTP(port: server.port, method: route.method, target: target, headers: headers, body: route.body)
                    tried += 1
                    // 400 is the HTTP parser refusing a target it cannot read at all: not the resource either.
                    #expect([400, 401, 404].contains(reply.status),
                            "\(route.method) \(target) without the token answered \(reply.status): \(reply.body)")
                    #expect(!reply.body.contains(Self.pushkey), "\(route.method) \(target) showed a pushkey")
                }
            }
        }
        #expect(tried > 600)
        #expect(try healthHead(server.port) == head, "nothing was appended without the token")
        // And the pusher is still there: no DELETE spelling got through.
        let list = try rawHTTP(port: server.port, method: "GET", target: "/v1/pushers?user_id=@alice:example.org", headers: auth)
        #expect(list.status == 200 && list.body.contains(Self.pushkey), "\(list.body)")
        #expect(!list.body.contains("mallory"))
        // A method no route has (405 with the token) is a 401 without it, on every guarded path.
        let routed: Set<String> = ["POST /v1/notifications", "POST /v1/receipts", "PUT /v1/pushers", "GET /v1/pushers",
                                   "DELETE /v1/pushers", "POST /v1/pushers/rewind"]
        for path in ["/v1/notifications", "/v1/receipts", "/v1/pushers", "//v1/pushers/", "/v1/pushers/rewind"] {
            let plain = "/" + path.split(separator: "/").joined(separator: "/")
            for method in ["TRACE", "PATCH", "OPTIONS", "GET", "PUT", "POST", "DELETE"] where !routed.contains("\(method) \(plain)") {
                let anonymous = try rawHTTP(port: server.port, method: method, target: path)
                #expect(anonymous.status == 401, "\(method) \(path) without the token: \(anonymous.status) \(anonymous.body)")
                let known = try rawHTTP(port: server.port, method: method, target: path, headers: auth)
                #expect(known.status == 405, "\(method) \(path) with the token: \(known.status) \(known.body)")
            }
        }
        // The ordinary spelling with the token still works, and a doubled slash too (same route, same guard).
        let doubled = try rawHTTP(port: server.port, method: "GET", target: "//v1/pushers", headers: auth)
        #expect(doubled.status == 200)
        // The unsubscribe link needs no token (its signature is its authority) but an unsigned one is refused.
        let unsubscribe = try rawHTTP(port: server.port, method: "GET", target: "//v1/unsubscribe?user_id=@alice:example.org")
        #expect(unsubscribe.status == 403 || unsubscribe.status == 400, "\(unsubscribe.status) \(unsubscribe.body)")
    }

    func healthHead(_ port: Int) throws -> Int {
        let health = try rawHTTP(port: port, method: "GET", target: "/health")
        let object = try JSONSerialization.jsonObject(with: Data(health.body.utf8)) as? [String: Any]
        return object?["head"] as? Int ?? -1
    }
}
