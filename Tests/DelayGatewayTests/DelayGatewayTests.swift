import Curl
import DelayGateway
import Foundation
import Testing

/// The delaying gateway the delivery tests and benchmarks push to: it must hold its delay,
/// count what is in flight, and answer failures and rejections as Sygnal does.
@Suite(.timeLimit(.minutes(2)))
struct DelayGatewayTests {
    static func body(_ pushkey: String) -> [UInt8] {
        Array("""
            {"notification":{"event_id":"$e","room_id":"!r:example.org","counts":{"unread":1},\
            "devices":[{"app_id":"com.example.app","pushkey":"\(pushkey)","pushkey_ts":0}]}}
            """.utf8)
    }

    static func post(_ client: CurlClient, _ gateway: DelayGateway, _ pushkey: String) async throws -> HTTPResponse {
        try await client.post(gateway.url, body: body(pushkey), headers: ["Content-Type": "application/json"], timeout: .seconds(30))
    }

    @Test("an answer does not come before the delay")
    func delayHonoured() async throws {
        let gateway = try await DelayGateway.start(delay: .fixed(ms: 150))
        let client = try CurlClient()
        defer { client.shutdown() }
        for _ in 0..<3 {
            let clock = ContinuousClock()
            let started = clock.now
            let response = try await Self.post(client, gateway, "k")
            #expect(clock.now - started >= .milliseconds(150))
            #expect(response.status == 200)
            #expect(String(decoding: response.body, as: UTF8.self) == #"{"rejected":[]}"#)
        }
        let stats = gateway.stats()
        #expect(stats.received == 3 && stats.answered == 3 && stats.statuses == [200: 3] && stats.inFlight == 0)
        #expect(gateway.pushkeys() == ["k", "k", "k"])
        #expect(gateway.count(for: "k") == 3)
        let devices = (gateway.bodies().first?["notification"] as? [String: Any])?["devices"] as? [[String: Any]]
        #expect(devices?.first?["app_id"] as? String == "com.example.app")
        await gateway.stop()
    }

    @Test("200 concurrent requests are all in flight together, and peakInFlight says so")
    func peakInFlight() async throws {
        let gateway = try await DelayGateway.start(delay: .fixed(ms: 500))
        let client = try CurlClient(maxConnectionsPerHost: 256, connectionCacheSize: 256)
        defer { client.shutdown() }
        try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<200 { group.addTask { try await Self.post(client, gateway, "k\(i)").status } }
            try await gateway.waitUntil(inFlight: 200)
            for try await status in group { #expect(status == 200) }
        }
        let stats = gateway.stats()
        #expect(stats.peakInFlight == 200)
        #expect(stats.peakInFlightPerPushkey == 1, "every request had its own pushkey")
        #expect(stats.inFlight == 0 && stats.answered == 200)
        #expect(Set(gateway.pushkeys()) == Set((0..<200).map { "k\($0)" }))
        gateway.reset()
        #expect(gateway.stats().received == 0 && gateway.stats().peakInFlight == 0 && gateway.pushkeys().isEmpty)
        await gateway.stop()
    }

    @Test("tooManyRequests answers 429 with Retry-After for its count, then 200 again")
    func tooManyRequests() async throws {
        let gateway = try await DelayGateway.start(delay: .fixed(ms: 0))
        let client = try CurlClient()
        defer { client.shutdown() }
        gateway.setMode(.init(latency: .fixed(ms: 0), failure: .tooManyRequests(retryAfterSeconds: 7, count: 2)))
        for _ in 0..<2 {
            let response = try await Self.post(client, gateway, "k")
            #expect(response.status == 429)
            #expect(response.header("Retry-After") == "7")
            #expect(response.retryAfterSeconds == 7)
        }
        #expect(gateway.mode.failure == nil)
        #expect(try await Self.post(client, gateway, "k").status == 200)
        gateway.setMode(.init(latency: .fixed(ms: 0), failure: .status(503, count: 1)))
        #expect(try await Self.post(client, gateway, "k").status == 503)
        #expect(gateway.stats().statuses == [429: 2, 200: 1, 503: 1])
        await gateway.stop()
    }

    @Test("a rejected pushkey is answered 200 with it in rejected; others are not")
    func rejectedPushkeys() async throws {
        let gateway = try await DelayGateway.start(delay: .fixed(ms: 0))
        let client = try CurlClient()
        defer { client.shutdown() }
        gateway.setMode(.init(latency: .fixed(ms: 0), rejectedPushkeys: ["gone"]))
        let rejected = try await Self.post(client, gateway, "gone")
        #expect(rejected.status == 200)
        #expect(String(decoding: rejected.body, as: UTF8.self) == #"{"rejected":["gone"]}"#)
        let kept = try await Self.post(client, gateway, "here")
        #expect(String(decoding: kept.body, as: UTF8.self) == #"{"rejected":[]}"#)
        await gateway.stop()
    }

    @Test("hold keeps every request unanswered until the mode changes, then answers them all")
    func hold() async throws {
        let gateway = try await DelayGateway.start(delay: .hold)
        let client = try CurlClient(maxConnectionsPerHost: 64)
        defer { client.shutdown() }
        try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<20 { group.addTask { try await Self.post(client, gateway, "k\(i)").status } }
            for _ in 0..<3 { group.addTask { try await Self.post(client, gateway, "same").status } }
            try await gateway.waitUntil(received: 23)
            #expect(gateway.stats().answered == 0 && gateway.stats().inFlight == 23)
            #expect(gateway.inFlight(for: "same") == 3 && gateway.stats().peakInFlightPerPushkey == 3)
            gateway.setLatency(.fixed(ms: 10))
            try await gateway.waitUntil(answered: 23)
            for try await status in group { #expect(status == 200) }
        }
        #expect(gateway.stats().inFlight == 0 && gateway.inFlight(for: "same") == 0)
        #expect(gateway.peakInFlight(for: "same") == 3 && gateway.peakInFlight(for: "k0") == 1)
        await gateway.stop()
    }

    @Test("a wait that times out throws with the last counters; other paths get 404 uncounted")
    func timeoutAndOtherPaths() async throws {
        let gateway = try await DelayGateway.start(delay: .fixed(ms: 0))
        let client = try CurlClient()
        defer { client.shutdown() }
        let other = try await client.send(method: "GET", url: gateway.url.replacingOccurrences(of: "/notify", with: "/other"), timeout: .seconds(5))
        #expect(other.status == 404)
        do {
            try await gateway.waitUntil(received: 1, timeout: .milliseconds(50))
            Issue.record("the wait should have timed out")
        } catch let error as DelayGateway.TimedOut {
            #expect(error.stats.received == 0)
        }
        await gateway.stop()
    }

    @Test("overload latency grows with the requests in flight")
    func overload() async throws {
        let gateway = try await DelayGateway.start(delay: .overload(baseMS: 10, perInFlightMS: 20))
        let client = try CurlClient(maxConnectionsPerHost: 64)
        defer { client.shutdown() }
        let clock = ContinuousClock()
        let started = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<10 { group.addTask { _ = try await Self.post(client, gateway, "k\(i)") } }
            try await group.waitForAll()
        }
        // The last of ten concurrent arrivals waits at least 10 + 20 × (its in-flight count ≥ 1).
        #expect(clock.now - started >= .milliseconds(30))
        #expect(gateway.stats().answered == 10)
        await gateway.stop()
    }
}
