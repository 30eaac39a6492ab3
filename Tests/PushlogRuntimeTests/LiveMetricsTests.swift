import Curl
import Foundation
import PushlogCore
import PushlogRuntime
import Testing
import TestSupport

/// `pushlog_pushers{kind}`, `pushlog_pending_pushers` and `pushlog_pusher_lag_entries` follow
/// the store while `serve` runs (they were boot snapshots).
@Suite("live pusher metrics", .serialized)
struct LiveMetricsTests {
    /// The values of the three metrics in one scrape.
    struct Scrape: Equatable, CustomStringConvertible {
        var http = -1, email = -1, pending = -1, lagCount = -1, lagSum = -1
        var description: String { "http \(http) email \(email) pending \(pending) lag count \(lagCount) sum \(lagSum)" }
    }

    static func parse(_ text: String) -> Scrape {
        var s = Scrape()
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let value = Int(parts[1]) else { continue }
            switch parts[0] {
            case #"pushlog_pushers{kind="http"}"#: s.http = value
            case #"pushlog_pushers{kind="email"}"#: s.email = value
            case "pushlog_pending_pushers": s.pending = value
            case "pushlog_pusher_lag_entries_count": s.lagCount = value
            case "pushlog_pusher_lag_entries_sum": s.lagSum = value
            default: break
            }
        }
        return s
    }

    @Test("the pusher gauges follow PUT, DELETE, appends and deliveries")
    func gaugesFollowTheStore() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-metrics-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gateway = try TestGateway()
        try await gateway.setMode("status", status: 503)
        let server = try ServeProcess(dataDir: dir, environment: [
            "PUSHLOG_PUSH_BACKOFF_INITIAL": "50ms", "PUSHLOG_PUSH_BACKOFF_MAX": "100ms",
        ])
        defer { server.stop(SIGKILL) }
        let client = try CurlClient()
        defer { client.shutdown() }
        let base = "http://127.0.0.1:\(server.port)"
        func call(_ method: String, _ path: String, _ body: String = "") async throws -> HTTPResponse {
            try await client.send(method: method, url: base + path, body: Array(body.utf8),
                                  headers: ["Content-Type": "application/json"], timeout: .seconds(30))
        }
        func scrape() async throws -> Scrape {
            Self.parse(String(decoding: try await call("GET", "/metrics").body, as: UTF8.self))
        }
        /// The next scrape equal to `want` (the figures are recomputed at most once a second).
        func expectScrape(_ want: Scrape, _ what: String) async throws {
            var last = Scrape()
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                last = try await scrape()
                if last == want { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(last == want, "\(what): got \(last), want \(want)")
        }
        func pusher(_ user: String, kind: String = "http", key: String) -> String {
            let data = kind == "http" ? #"{"url": "\#(gateway.url)"}"# : "{}"
            return #"{"user_id": "\#(user)", "kind": "\#(kind)", "app_id": "org.example", "pushkey": "\#(key)", "app_display_name": "A", "device_display_name": "D", "lang": "en", "data": \#(data)}"#
        }

        try await expectScrape(Scrape(http: 0, email: 0, pending: 0, lagCount: 0, lagSum: 0), "an empty store")
        for (user, kind, key) in [("@alice:example.org", "http", "pk-alice"), ("@bob:example.org", "http", "pk-bob"),
                                  ("@carol:example.org", "email", "carol@example.org")] {
            #expect(try await call("PUT", "/v1/pushers", pusher(user, kind: kind, key: key)).status == 200)
        }
        try await expectScrape(Scrape(http: 2, email: 1, pending: 0, lagCount: 0, lagSum: 0), "after three PUTs")

        // Three notifications for alice (pos 4, 5, 6; her cursor is at 1, where her pusher was set):
        // the gateway fails them, so she stays pending, 5 entries behind.
        let notifications = (1...3).map { i in
            #"{"user_id": "@alice:example.org", "room_id": "!r:example.org", "event_id": "$e\#(i)", "stream_ordering": \#(i), "actions": ["notify"], "event": {"type": "m.room.message", "sender": "@bob:example.org", "content": {"body": "hi"}}}"#
        }
        let posted = try await call("POST", "/v1/notifications", #"{"notifications": [\#(notifications.joined(separator: ","))]}"#)
        #expect(posted.status == 200)
        _ = try await gateway.waitForBodies(1)
        try await expectScrape(Scrape(http: 2, email: 1, pending: 1, lagCount: 1, lagSum: 5), "alice's pushes failing")

        #expect(try await call("DELETE", "/v1/pushers?user_id=@bob:example.org&app_id=org.example&pushkey=pk-bob").status == 200)
        try await expectScrape(Scrape(http: 1, email: 1, pending: 1, lagCount: 1, lagSum: 5), "after the DELETE")

        try await gateway.setMode("ok")
        _ = try await gateway.deliveries(covering: ["pk-alice $e1", "pk-alice $e2", "pk-alice $e3"], timeout: 10)
        try await expectScrape(Scrape(http: 1, email: 1, pending: 0, lagCount: 0, lagSum: 0), "once alice's pushes are delivered")
    }

    @Test("the lag histogram counts each pending pusher in its bucket")
    func histogramText() {
        var census = PusherCensus()
        census.byKind = [.http: 3]
        census.lags = [1, 3, 3, 2_000_000]
        let text = PusherMetrics.text(census)
        #expect(text.contains(#"pushlog_pushers{kind="http"} 3"#))
        #expect(text.contains(#"pushlog_pushers{kind="email"} 0"#))
        #expect(text.contains("pushlog_pending_pushers 4\n"))
        #expect(text.contains(#"pushlog_pusher_lag_entries_bucket{le="1"} 1"#))
        #expect(text.contains(#"pushlog_pusher_lag_entries_bucket{le="2"} 1"#))
        #expect(text.contains(#"pushlog_pusher_lag_entries_bucket{le="5"} 3"#))
        #expect(text.contains(#"pushlog_pusher_lag_entries_bucket{le="1000000"} 3"#))
        #expect(text.contains(#"pushlog_pusher_lag_entries_bucket{le="+Inf"} 4"#))
        #expect(text.contains("pushlog_pusher_lag_entries_sum 2000007\n"))
    }
}
