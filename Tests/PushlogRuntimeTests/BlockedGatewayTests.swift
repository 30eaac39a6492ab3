import Curl
import Foundation
import PushlogCore
@testable import PushlogRuntime
import Testing
import TestSupport

/// `push.ip_range_blacklist` at push time: a gateway whose address is blocked gets nothing,
/// and the failure says `blocked_address`, on both delivery paths.
@Suite("blocked gateway addresses")
struct BlockedGatewayTests {
    private static var blockingConfig: PushConfig {
        var c = Harness.fastConfig
        c.addressPolicy = .default
        return c
    }

    @Test("a notification push to a blocked gateway fails as blocked_address, backs off, and reaches nothing")
    func notificationBlocked() async throws {
        try await withHarness(config: Self.blockingConfig) { h in
            let id = try h.addPusher()
            try h.notify([note(1)])
            #expect(try await eventually { try h.state(id)?.nextAttempt != nil }, "a failure like any other: backoff applies")
            #expect(h.logs.lines.contains { $0.level == .warning && $0.message.hasPrefix("push failed (blocked_address: ") && $0.message.contains("127.0.0.1") },
                    "\(h.logs.lines.map(\.message))")
            #expect(try await h.gateway.bodies().isEmpty)
        }
    }

    @Test("a badge-only push to a blocked gateway fails as blocked_address")
    func badgeBlocked() async throws {
        try await withHarness(config: Self.blockingConfig) { h in
            try h.addPusher()
            try h.receipt(Receipt(userID: "@alice:example.org", roomID: "!r:example.org", eventID: "$e1", streamOrdering: 10, ts: 0))
            await h.pool.waitUntilIdle()
            #expect(h.logs.lines.contains { $0.message.hasPrefix("failed to send badge count (blocked_address: ") }, "\(h.logs.lines.map(\.message))")
            #expect(try await h.gateway.bodies().isEmpty)
        }
    }
}

/// The same through the real `pushlog serve`, its configuration and `/metrics`.
@Suite("blocked gateway addresses end to end", .serialized)
struct BlockedGatewayEndToEndTests {
    private func dataDir() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-ssrf-\(UUID().uuidString)").path
    }

    private func pusherLine(_ url: String, pushkey: String = "pk1") -> String {
        #"{"user_id":"@alice:example.org","kind":"http","app_id":"org.example","pushkey":"\#(pushkey)","app_display_name":"A","device_display_name":"D","lang":"en","data":{"url":"\#(url)"}}"#
    }

    private func notificationLine(_ i: Int) -> String {
        #"{"user_id":"@alice:example.org","room_id":"!r:example.org","event_id":"$e\#(i)","stream_ordering":\#(i),"actions":["notify"],"event":{"type":"m.room.message","sender":"@bob:example.org"}}"#
    }

    /// `pushlog_http_push_failures_total{reason="blocked_address"}` on `server`'s `/metrics`.
    private func blockedCount(_ client: CurlClient, _ server: ServeProcess) async throws -> Int {
        let r = try await client.send(method: "GET", url: "http://127.0.0.1:\(server.port)/metrics", timeout: .seconds(5))
        let text = String(decoding: r.body, as: UTF8.self)
        let line = text.split(separator: "\n").first { $0.hasPrefix(#"pushlog_http_push_failures_total{reason="blocked_address"}"#) }
        return line.flatMap { Double($0.split(separator: " ").last ?? "") }.map { Int($0) } ?? 0
    }

    private func eventuallyBlocked(_ client: CurlClient, _ server: ServeProcess) async throws -> Bool {
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if try await blockedCount(client, server) > 0 { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    @Test("a gateway on 127.0.0.1 gets no push without the whitelist (blocked_address in /metrics), and gets it with it")
    func loopbackNeedsTheWhitelist() async throws {
        let dir = dataDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gateway = try TestGateway()
        let client = try CurlClient()
        defer { client.shutdown() }
        #expect(try pushlog(["pushers", "set", "--data-dir", dir], stdin: pusherLine(gateway.url)).status == 0)
        #expect(try pushlog(["append", "notifications", "--data-dir", dir], stdin: notificationLine(1)).status == 0)

        var server = try ServeProcess(dataDir: dir, environment: ["PUSHLOG_PUSH_IP_RANGE_WHITELIST": "", "PUSHLOG_PUSH_BACKOFF_INITIAL": "200ms"])
        #expect(try await eventuallyBlocked(client, server))
        #expect(try await gateway.bodies().isEmpty)
        #expect(server.stop(SIGTERM) == .exited(0))

        server = try ServeProcess(dataDir: dir, environment: ["PUSHLOG_PUSH_BACKOFF_INITIAL": "200ms"])
        let bodies = try await gateway.waitForBodies(1)
        #expect(bodies.first?.body["notification"]?["event_id"] == .string("$e1"))
        #expect(try await blockedCount(client, server) == 0)
        #expect(server.stop(SIGTERM) == .exited(0))
    }

    @Test("a host name that resolves to a blocked address passes PUT and is refused when the push connects")
    func nameResolvingToBlockedAddress() async throws {
        let dir = dataDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gateway = try TestGateway()
        let client = try CurlClient()
        defer { client.shutdown() }
        let server = try ServeProcess(dataDir: dir, environment: ["PUSHLOG_PUSH_IP_RANGE_WHITELIST": ""])
        let url = "http://localhost:\(gateway.port)/_matrix/push/v1/notify"
        let put = try await client.send(method: "PUT", url: "http://127.0.0.1:\(server.port)/v1/pushers",
                                        body: Array(pusherLine(url).utf8), headers: ["Content-Type": "application/json"], timeout: .seconds(10))
        #expect(put.status == 200, "\(String(decoding: put.body, as: UTF8.self))")
        let literal = try await client.send(method: "PUT", url: "http://127.0.0.1:\(server.port)/v1/pushers",
                                            body: Array(pusherLine(gateway.url, pushkey: "pk2").utf8), headers: ["Content-Type": "application/json"],
                                            timeout: .seconds(10))
        #expect(literal.status == 400)
        #expect(String(decoding: literal.body, as: UTF8.self).contains("data.url"))
        let post = try await client.send(method: "POST", url: "http://127.0.0.1:\(server.port)/v1/notifications",
                                         body: Array(#"{"notifications":[\#(notificationLine(1))]}"#.utf8),
                                         headers: ["Content-Type": "application/json"], timeout: .seconds(10))
        #expect(post.status == 200)
        #expect(try await eventuallyBlocked(client, server))
        #expect(try await gateway.bodies().isEmpty)
        #expect(server.stop(SIGTERM) == .exited(0))
    }

    @Test("http_proxy cannot carry a push round the check")
    func proxyIsNotUsed() async throws {
        let dir = dataDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The "proxy" is the test gateway on 127.0.0.1, which is allowed; the gateway URL names
        // 127.0.0.2, which is not. Through the proxy the push would reach 127.0.0.1.
        let proxy = try TestGateway()
        let client = try CurlClient()
        defer { client.shutdown() }
        #expect(try pushlog(["pushers", "set", "--data-dir", dir],
                            stdin: pusherLine("http://127.0.0.2:\(proxy.port)/_matrix/push/v1/notify")).status == 0)
        #expect(try pushlog(["append", "notifications", "--data-dir", dir], stdin: notificationLine(1)).status == 0)
        let server = try ServeProcess(dataDir: dir, environment: [
            "PUSHLOG_PUSH_IP_RANGE_WHITELIST": "127.0.0.1/32",
            "http_proxy": "http://127.0.0.1:\(proxy.port)", "HTTP_PROXY": "http://127.0.0.1:\(proxy.port)",
            "no_proxy": "", "NO_PROXY": "",
        ])
        #expect(try await eventuallyBlocked(client, server))
        #expect(try await proxy.bodies().isEmpty)
        #expect(server.stop(SIGTERM) == .exited(0))
    }
}
