import DelayGateway
import Foundation
import PushlogCore
import Testing
import TestSupport
@testable import PushlogRuntime

/// The engine against gateways that take their time, as Sygnal does in front of APNs and FCM:
/// how many pushes it keeps in flight is read off the gateway's own count, never off timings.
@Suite("Delivery against slow gateways", .serialized)
struct GatewayConcurrencyTests {
    /// `count` users with one pusher each on `gateway`, in one append.
    func pushers(_ h: Harness, _ gateway: DelayGateway, count: Int, prefix: String = "u") throws -> [PusherID] {
        let ids = (0..<count).map { PusherID(userID: "@\(prefix)\($0):example.org", appID: "org.example.app", pushkey: "\(prefix)\($0)") }
        try h.store.append(ids.map {
            .pusherSet(PusherConfig(id: $0, kind: .http, appDisplayName: "App", deviceDisplayName: "Phone",
                                    data: ["url": .string(gateway.url)], append: true, createdTS: 1))
        })
        return ids
    }

    @Test("2,000 pushers with one notification each have their pushes in flight together, up to the host limit")
    func inFlightUpToTheHostLimit() async throws {
        let gateway = try await DelayGateway.start(delay: .uniform(minMS: 100, maxMS: 300))
        var config = Harness.fastConfig
        // A ceiling a debug build on two loaded cores can feed with room to spare (128 in flight
        // at ~200 ms is ~640 pushes/s; 256 was at the edge of what it sends, and the peak then
        // depended on the machine's load); the release benchmark (BENCHMARKS.md, fanout) shows
        // the default 1,024.
        config.maxInFlightPerHost = 128
        config.requestTimeoutMS = 30_000
        try await withHarness(config: config) { h in
            let ids = try pushers(h, gateway, count: 2_000)
            try h.notify(ids.enumerated().map { note($0.offset, user: $0.element.userID) })
            try await gateway.waitUntil(received: 2_000, timeout: .seconds(120))
            await h.pool.waitUntilIdle()
            let stats = gateway.stats()
            #expect(stats.peakInFlight >= 115, "at most \(stats.peakInFlight) pushes were in flight at once")
            #expect(stats.peakInFlight <= 128, "the host limit was exceeded: \(stats.peakInFlight)")
            #expect(Set(gateway.pushkeys()).count == 2_000)
            for id in ids { #expect(try h.state(id)?.cursor == (try h.store.read { view in try view.head(user: id.userID) })) }
            await gateway.stop()
        }
    }

    @Test("a gateway whose latency grows with its load: the limit settles below the ceiling, no push fails, every push arrives")
    func overloadedGateway() async throws {
        // 20 ms unloaded, and 1 ms more per request in flight: at 20 in flight it is twice as slow.
        let gateway = try await DelayGateway.start(delay: .overload(baseMS: 20, perInFlightMS: 1))
        var config = Harness.fastConfig
        config.requestTimeoutMS = 30_000
        try await withHarness(config: config) { h in
            let ids = try pushers(h, gateway, count: 3_000)
            try h.notify(ids.enumerated().map { note($0.offset, user: $0.element.userID) })
            try await gateway.waitUntil(received: 3_000, timeout: .seconds(120))
            await h.pool.waitUntilIdle()
            let stats = gateway.stats()
            #expect(Set(gateway.pushkeys()).count == 3_000)
            #expect(stats.statuses.keys.allSatisfy { $0 == 200 })
            #expect(!h.logs.lines.contains { $0.message.contains("push failed") })
            let host = try #require(h.pool.engine.hosts.snapshot(GatewayHosts.host(of: gateway.url)))
            #expect(host.limit < 300, "the limit did not settle: \(host.limit)")
            #expect(stats.peakInFlight < 400, "the gateway was driven to \(stats.peakInFlight) in flight")
            for id in ids { #expect(try h.state(id)?.failingSince == nil) }
            await gateway.stop()
        }
    }

    @Test("429 with Retry-After pauses that host; the pushers' backoff is untouched, and the push goes once the pause is over")
    func retryAfterPausesTheHost() async throws {
        let gateway = try await DelayGateway.start(delay: .fixed(ms: 5))
        gateway.setMode(.init(latency: .fixed(ms: 5), failure: .tooManyRequests(retryAfterSeconds: 1, count: 1)))
        try await withHarness { h in
            let ids = try pushers(h, gateway, count: 1)
            let t0 = ContinuousClock.now
            try h.notify([note(1, user: ids[0].userID), note(2, user: ids[0].userID)])
            try await gateway.waitUntil { $0.statuses[429] == 1 }
            // Paused: the pusher is not failing, and has no backoff of its own.
            let paused = try #require(try h.state(ids[0]))
            #expect(paused.failingSince == nil && paused.nextAttempt == nil)
            try await gateway.waitUntil { $0.statuses[200, default: 0] == 2 }
            let stats = gateway.stats()
            #expect(stats.received == 3, "the same push once more after the pause, then the next")
            #expect(try #require(stats.lastReceived) - t0 >= .milliseconds(900), "sent again before Retry-After")
            await h.pool.waitUntilIdle()
            let s = try #require(try h.state(ids[0]))
            #expect(s.failingSince == nil && s.nextAttempt == nil)
            #expect(s.cursor == (try h.store.read { view in try view.head() }))
            #expect(!h.logs.lines.contains { $0.message.contains("push failed") })
            await gateway.stop()
        }
    }

    @Test("a badge storm: 10,000 receipts for one user against a slow gateway give at most one badge request in flight per pusher")
    func badgeStorm() async throws {
        let gateway = try await DelayGateway.start(delay: .fixed(ms: 200))
        try await withHarness { h in
            let alice = "@alice:example.org"
            try h.store.append((0..<3).map {
                .pusherSet(PusherConfig(id: PusherID(userID: alice, appID: "org.example.app", pushkey: "pk\($0)"), kind: .http,
                                        appDisplayName: "App", deviceDisplayName: "Phone", data: ["url": .string(gateway.url)],
                                        append: true, createdTS: 1))
            })
            // 50 rooms with one unread notification each: a badge of 50.
            try h.notify((0..<50).map { note($0, user: alice, room: "!r\($0):example.org", so: Int64($0 + 1)) })
            try await gateway.waitUntil(received: 150, timeout: .seconds(60))
            await h.pool.waitUntilIdle()
            gateway.reset()
            // 10,000 receipts, 100 per append, each append poked as the API does.
            var so: Int64 = 1
            for _ in 0..<100 {
                let receipts = (0..<100).map { i -> LogEntry in
                    let room = Int(so + Int64(i)) % 50
                    return .receipt(Receipt(userID: alice, roomID: "!r\(room):example.org", eventID: "$e\(room)",
                                            streamOrdering: so + Int64(i) + 100, ts: 0))
                }
                so += 100
                let r = try h.store.append(receipts)
                h.pool.onNewReceipts(users: r.receiptUsers)
                // One run per pusher at most, whatever the receipts: no task per receipt.
                #expect((h.processes.snapshot()["httppush.process"]?.inFlight ?? 0) <= 3, "more runs than pushers")
            }
            await h.pool.waitUntilIdle()
            let stats = gateway.stats()
            #expect(stats.peakInFlight <= 3, "\(stats.peakInFlight) badge requests in flight for 3 pushers")
            #expect(stats.received <= 3 * 60, "receipts were not coalesced: \(stats.received) badge requests")
            #expect(try #require(h.processes.snapshot()["httppush.process"]?.startCount) < 3 * 100 + 150,
                    "more runs than appends: one was started per receipt")
            #expect(h.processes.snapshot()["http_pusher.on_new_receipts"] == nil, "a task per receipt")
            // The last badge each pusher got is the true one: nothing unread.
            var last: [String: Int] = [:]
            for b in gateway.bodies() {
                let n = b["notification"] as? [String: Any]
                let pk = ((n?["devices"] as? [[String: Any]])?.first?["pushkey"] as? String) ?? ""
                last[pk] = ((n?["counts"] as? [String: Any])?["unread"] as? Int) ?? -1
            }
            #expect(last == ["pk0": 0, "pk1": 0, "pk2": 0])
            await gateway.stop()
        }
    }

    @Test("SIGTERM during the boot stagger of 10,000 pending pushers stops within push.shutdown_grace; a second signal exits at once; nothing is lost")
    func sigtermDuringBootStagger() async throws {
        // A gateway that never answers: every push the server starts stays in flight.
        let gateway = try await DelayGateway.start(delay: .hold, keepBodies: false)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-stagger-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let count = 10_000
        do {
            let store = try Store(dataDir: dir)
            let ids = (0..<count).map { PusherID(userID: "@u\($0):example.org", appID: "org.example.app", pushkey: "u\($0)") }
            try store.append(ids.map {
                .pusherSet(PusherConfig(id: $0, kind: .http, appDisplayName: "App", deviceDisplayName: "Phone",
                                        data: ["url": .string(gateway.url)], append: true, createdTS: 1))
            })
            try store.append(ids.enumerated().map { .notification(note($0.offset, user: $0.element.userID)) })
            store.close()
        }
        let environment = ["PUSHLOG_PUSH_SHUTDOWN_GRACE": "2s", "PUSHLOG_PUSH_REQUEST_TIMEOUT": "5m"]

        // One SIGTERM: the boot walk stops, the held pushes get the grace, then serve exits.
        // One pusher at a time (push.startup_concurrency 1), so the walk is still going when
        // the signal comes: it must stop there, not finish first (its log says where it stopped).
        let first = try ServeProcess(dataDir: dir, environment: environment.merging(["PUSHLOG_PUSH_STARTUP_CONCURRENCY": "1"]) { $1 })
        try await gateway.waitUntil(received: 1, timeout: .seconds(60))
        let t0 = ContinuousClock.now
        #expect(first.stop(SIGTERM, timeout: 20) == .exited(0))
        let took = ContinuousClock.now - t0
        #expect(took < .seconds(6), "SIGTERM took \(took) with push.shutdown_grace 2s")
        #expect(first.log.contains("stopped by shutdown: "), "the boot walk was not stopped by SIGTERM")

        // A second signal while the first waits out a long grace: serve exits at once.
        gateway.reset()
        let second = try ServeProcess(dataDir: dir, environment: ["PUSHLOG_PUSH_SHUTDOWN_GRACE": "10m", "PUSHLOG_PUSH_REQUEST_TIMEOUT": "5m"])
        try await gateway.waitUntil(received: 1, timeout: .seconds(60))
        kill(second.process.processIdentifier, SIGTERM)
        #expect(second.stop(SIGINT, timeout: 10) == .exited(128 + SIGINT))

        // None of those pushes was answered, so none was acknowledged: a restart sends them all.
        gateway.setMode(.init(latency: .fixed(ms: 1)))
        gateway.reset()
        let third = try ServeProcess(dataDir: dir, environment: environment)
        // Counted by pushkey: `answered` and even `received` since the reset may also count the
        // second process's last requests (bytes it sent before it died, parsed after the reset,
        // or held ones released by setMode before the gateway saw their connections close).
        let all = try await eventually(timeout: 180) { gateway.counts().count == count }
        #expect(all, "\(gateway.counts().count) of \(count) pushers got their push after the restart")
        try await gateway.waitUntil(timeout: .seconds(30)) { $0.inFlight == 0 }
        #expect(third.stop(SIGTERM) == .exited(0))
        let store = try Store(dataDir: dir)
        #expect(try store.read { view in try view.stats() }.pendingPushers == 0)
        store.close()
        await gateway.stop()
    }
}
