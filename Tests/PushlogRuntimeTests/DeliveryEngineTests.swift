import Foundation
import PushlogCore
import Testing
import TestSupport
@testable import PushlogRuntime

/// The four defects of the delivery engine that issue 10 names, each shown by a test that failed
/// before its fix, against a real gateway and a real store.
@Suite("Delivery engine: failure state, storage errors, rewinds", .serialized)
struct DeliveryEngineTests {
    let alice = "@alice:example.org"

    @Test("failing_since is cleared when a pass ends caught up with no failure, not only by a successful push")
    func failingSinceClearedWhenCaughtUp() async throws {
        try await withHarness { h in
            let id = try h.addPusher()
            try await h.gateway.setMode("status", status: 500)
            try h.notify([note(1, so: 10)])
            _ = try await h.gateway.waitForBodies(1)
            #expect(try await eventually { try h.state(id)?.failingSince != nil })
            // The user reads it before the retry: the retry finds nothing to push and ends caught up.
            try await h.gateway.setMode("ok")
            try h.receipt(Receipt(userID: alice, roomID: "!r:example.org", eventID: "$e1", streamOrdering: 10, ts: 0))
            #expect(try await eventually { try h.state(id)?.failingSince == nil && h.state(id)?.nextAttempt == nil },
                    "failing_since stays set after a pass that ended caught up")
            await h.pool.waitUntilIdle()
            #expect(try h.state(id)?.cursor == (try h.store.read { view in try view.head(user: alice) }))
            // A later failure starts a fresh backoff (the initial wait), not the maximum one.
            try await h.gateway.setMode("status", status: 500)
            let before = SystemClock.nowMS()
            try h.notify([note(2, so: 20)])
            #expect(try await eventually { try h.state(id)?.nextAttempt != nil })
            let s = try #require(try h.state(id))
            #expect(try #require(s.failingSince) >= before)
            #expect(try #require(s.nextAttempt) - before <= h.config.backoffInitialMS * 2)
        }
    }

    @Test("a new URL clears the pusher's failure state, so the new gateway is tried at once; the same URL keeps it")
    func failingSinceClearedByNewURL() async throws {
        try await withHarness { h in
            let id = try h.addPusher()
            let failing = ConsumerState(cursor: try h.store.read { view in try view.head() }, failingSince: 1_000, nextAttempt: SystemClock.nowMS() + 3_600_000)
            try h.store.write { try $0.setConsumerState(id, failing) }
            // Set again with the same URL (a device re-registering): the schedule stands.
            try h.addPusher()
            #expect(try h.state(id)?.failingSince == 1_000)
            // A new URL: a new gateway, nothing known of it.
            let moved = PusherConfig(id: id, kind: .http, appDisplayName: "App", deviceDisplayName: "Phone",
                                     data: ["url": .string(h.gateway.url + "#moved")], append: true, createdTS: 1)
            try h.store.append([.pusherSet(moved)])
            let s = try #require(try h.state(id))
            // A #require: with the failure state kept, the run below would sleep out its hour-long backoff.
            try #require(s.failingSince == nil && s.nextAttempt == nil, "a new URL kept the old gateway's failure state")
            try h.notify([note(1)])
            try #require(try await h.gateway.waitForBodies(1, timeout: 5).count == 1, "the new gateway was not tried at once")
            await h.pool.waitUntilIdle()
            #expect(try h.state(id)?.cursor == (try h.store.read { view in try view.head() }))
        }
    }

    @Test("a rewind during an active backlog wins: everything from the rewind point is pushed again")
    func rewindDuringBacklog() async throws {
        try await withHarness { h in
            let id = try h.addPusher()
            try await h.gateway.setMode("ok", delayMS: 40)
            let first = try h.notify((1...20).map { note($0) }).firstPos
            // Rewind once a few are through, while the rest of the backlog is being pushed.
            _ = try await h.gateway.waitForBodies(5)
            let rewound = try h.store.rewind(toPos: first, filter: .init(userID: alice))
            #expect(rewound == [id])
            h.pool.onPushersChanged(rewound)
            let receivedBefore = try await h.gateway.bodies().count
            #expect(receivedBefore < 20, "the backlog was over before the rewind")
            await h.pool.waitUntilIdle()
            let ids = try await h.gateway.bodies().compactMap { $0["notification"]?["event_id"]?.stringValue }
            var count: [String: Int] = [:]
            for e in ids { count[e, default: 0] += 1 }
            // The ones sent before the rewind came again; none was lost.
            for i in 1...5 { #expect(count["$e\(i)", default: 0] >= 2, "$e\(i) was not sent again after the rewind") }
            for i in 1...20 { #expect(count["$e\(i)", default: 0] >= 1) }
            // Once the run is over, the stored cursor is at the head: the rewind was not undone, and
            // nothing after it was left behind.
            #expect(try h.state(id)?.cursor == (try h.store.read { view in try view.head() }))
            #expect(try h.state(id)?.generation == 1)
        }
    }

    @Test("the map fills while deliveries are written: it grows, and every cursor is stored")
    func mapFillsDuringDelivery() async throws {
        let small = 1 << 20
        try await withHarness(storeOptions: StoreOptions(mapSize: small)) { h in
            // 300 pushers, then notifications with large bodies appended while they are delivered: the
            // appends and the deliveries' cursor writes race for the last pages of a small map.
            var ids: [PusherID] = []
            for u in 0..<300 { ids.append(try h.addPusher(user: "@u\(u):example.org", pushkey: "pk\(u)")) }
            let big = String(repeating: "x", count: 2_000)
            for round in 0..<6 {
                try h.notify((0..<300).map { u in
                    note(round * 1_000 + u, user: "@u\(u):example.org", content: ["msgtype": .string("m.text"), "body": .string(big)])
                })
            }
            await h.pool.waitUntilIdle()
            let stats = try h.store.read { view in try view.stats() }
            #expect(stats.mapSizeBytes > small, "the map did not grow")
            for id in ids { #expect(try h.state(id)?.cursor == (try h.store.read { view in try view.head(user: id.userID) })) }
            for id in ids { #expect(try h.state(id)?.failingSince == nil) }
            #expect(!h.logs.lines.contains { $0.message.contains("delivery stopped by an error") },
                    "a storage error reached a run: \(h.logs.lines.filter { $0.level >= .error }.map(\.message))")
        }
    }
}
