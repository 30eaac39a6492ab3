import Foundation
import PushlogCore
import Testing
import TestSupport
@testable import PushlogRuntime

@Suite("HTTP pusher and pool against a real gateway", .serialized)
struct PusherPoolTests {
    @Test("notifications reach the gateway one at a time in log order, and the cursor follows")
    func deliversInOrder() async throws {
        try await withHarness { h in
            let id = try h.addPusher()
            try h.notify((1...5).map { note($0) })
            let bodies = try await h.gateway.waitForBodies(5)
            #expect(bodies.map { $0.body["notification"]?["event_id"] } == (1...5).map { JSON.string("$e\($0)") })
            #expect(bodies.allSatisfy { $0.body["notification"]?["counts"] == .object(["unread": .int(1)]) })
            await h.pool.waitUntilIdle()
            let s = try #require(try h.state(id))
            #expect(s.cursor == (try h.store.read { view in try view.head() }))
            #expect(s.lastSuccess != nil && s.failingSince == nil)
            #expect(s.lastBadge == 1)
        }
    }

    @Test("a notification read before its turn is skipped and the cursor still advances")
    func skipsRead() async throws {
        try await withHarness { h in
            let id = try h.addPusher()
            // Appended without poking, then read, then poked: only the unread one goes out.
            try h.store.append([.notification(note(1, so: 10)), .notification(note(2, room: "!other:example.org", so: 11))])
            try h.store.append([.receipt(Receipt(userID: "@alice:example.org", roomID: "!r:example.org", eventID: "$e1",
                                                 streamOrdering: 10, ts: 0))])
            h.pool.onNewNotifications(users: ["@alice:example.org"])
            await h.pool.waitUntilIdle()
            let bodies = try await h.gateway.bodies()
            #expect(bodies.map { $0["notification"]?["event_id"] } == [.string("$e2")])
            #expect(try h.state(id)?.cursor == (try h.store.read { view in try view.head(user: "@alice:example.org") }))
        }
    }

    @Test("the badge counts rooms by default and notifications when group_unread_count_by_room is off")
    func badgeRule() async throws {
        for grouped in [true, false] {
            var c = Harness.fastConfig
            c.groupUnreadCountByRoom = grouped
            try await withHarness(config: c) { h in
                try h.addPusher()
                try h.store.append((1...3).map { .notification(note($0)) })
                h.pool.onNewNotifications(users: ["@alice:example.org"])
                let bodies = try await h.gateway.waitForBodies(3)
                #expect(bodies.last?.body["notification"]?["counts"] == .object(["unread": .int(grouped ? 1 : 3)]))
            }
        }
    }

    @Test("a receipt that changes the badge sends one badge-only push; one that does not, none")
    func badgeOnReceipt() async throws {
        try await withHarness { h in
            try h.addPusher()
            try h.notify([note(1, so: 10)])
            _ = try await h.gateway.waitForBodies(1)
            await h.pool.waitUntilIdle()
            try h.receipt(Receipt(userID: "@alice:example.org", roomID: "!r:example.org", eventID: "$e1", streamOrdering: 10, ts: 0))
            let bodies = try await h.gateway.waitForBodies(2)
            #expect(bodies[1].body["notification"]?["counts"] == .object(["unread": .int(0)]))
            #expect(bodies[1].body["notification"]?["id"] == .string(""))
            await h.pool.waitUntilIdle()
            // A newer receipt in the same room leaves the badge at 0: nothing is sent.
            try h.receipt(Receipt(userID: "@alice:example.org", roomID: "!r:example.org", eventID: "$e9", streamOrdering: 20, ts: 0))
            await h.pool.waitUntilIdle()
            #expect(try await h.gateway.bodies().count == 2)
        }
    }

    @Test("no badge-only push to a pusher that disables badge counts")
    func badgeDisabled() async throws {
        try await withHarness { h in
            try h.addPusher(data: ["org.matrix.msc4076.disable_badge_count": .bool(true)])
            try h.notify([note(1, so: 10)])
            let first = try await h.gateway.waitForBodies(1)
            #expect(first[0].body["notification"]?["counts"] == nil)
            await h.pool.waitUntilIdle()
            try h.receipt(Receipt(userID: "@alice:example.org", roomID: "!r:example.org", eventID: "$e1", streamOrdering: 10, ts: 0))
            await h.pool.waitUntilIdle()
            #expect(try await h.gateway.bodies().count == 1)
        }
    }

    @Test("a failing gateway gets exponential backoff that new notifications do not cut short")
    func backoff() async throws {
        try await withHarness { h in
            let id = try h.addPusher()
            try await h.gateway.setMode("status", status: 500)
            try h.notify([note(1)])
            _ = try await h.gateway.waitForBodies(1)
            #expect(try await eventually { try h.state(id)?.nextAttempt != nil })
            let s = try #require(try h.state(id))
            #expect(s.failingSince != nil)
            #expect(s.cursor < (try h.store.read { view in try view.head() }))
            let next = try #require(s.nextAttempt)
            // A poke during the backoff changes nothing: the retry comes at next_attempt, not before.
            try await h.gateway.setMode("ok")
            try h.notify([note(2)])
            let bodies = try await h.gateway.waitForBodies(3)
            #expect(bodies[1].t >= next - 5)
            #expect(bodies[1].body["notification"]?["event_id"] == .string("$e1"))
            #expect(bodies[2].body["notification"]?["event_id"] == .string("$e2"))
            await h.pool.waitUntilIdle()
            #expect(try h.state(id)?.failingSince == nil)
            #expect(try h.state(id)?.nextAttempt == nil)
        }
    }

    @Test("the backoff survives a restart of the pool on the same store")
    func backoffSurvivesRestart() async throws {
        var c = Harness.fastConfig
        c.backoffInitialMS = 1_500
        try await withHarness(config: c) { h in
            let id = try h.addPusher()
            try await h.gateway.setMode("status", status: 503)
            try h.notify([note(1)])
            _ = try await h.gateway.waitForBodies(1)
            #expect(try await eventually { try h.state(id)?.nextAttempt != nil })
            let next = try #require(try h.state(id)?.nextAttempt)
            await h.restartPool()
            try await h.gateway.setMode("ok")
            h.pool.start()
            let bodies = try await h.gateway.waitForBodies(2)
            #expect(bodies[1].t >= next - 5, "the restarted pool retried before next_attempt")
            await h.pool.waitUntilIdle()
            #expect(try h.state(id)?.cursor == (try h.store.read { view in try view.head() }))
        }
    }

    @Test("a non-JSON 200, a dropped connection and a timeout are failures; JSON labelled text/html is a success")
    func failureKinds() async throws {
        var c = Harness.fastConfig
        c.requestTimeoutMS = 300
        for (mode, delay, ok) in [("nonjson", 0, false), ("drop", 0, false), ("ok", 1_000, false), ("html", 0, true)] {
            try await withHarness(config: c) { h in
                let id = try h.addPusher()
                if mode == "html" {
                    try await h.gateway.setMode("ok", contentType: "text/html")
                } else {
                    try await h.gateway.setMode(mode, delayMS: delay)
                }
                try h.notify([note(1)])
                if ok {
                    await h.pool.waitUntilIdle()
                    #expect(try h.state(id)?.cursor == (try h.store.read { view in try view.head() }), "\(mode)")
                } else {
                    #expect(try await eventually { try h.state(id)?.failingSince != nil }, "\(mode)")
                    #expect(try h.state(id)?.cursor ?? 0 < (try h.store.read { view in try view.head() }), "\(mode)")
                }
            }
        }
    }

    @Test("give_up_after dead-letters what a failing pusher cannot deliver, and the cursor moves on")
    func giveUp() async throws {
        var c = Harness.fastConfig
        c.backoffInitialMS = 100
        c.giveUpAfterMS = 250
        try await withHarness(config: c) { h in
            let id = try h.addPusher()
            try await h.gateway.setMode("status", status: 500)
            try h.notify([note(1), note(2)])
            #expect(try await eventually { try h.state(id)?.cursor == (try h.store.read { view in try view.head() }) })
            let dead = try h.store.read { view in try view.deadLetters(key: Keys.pusher(id)) }
            #expect(dead.count >= 1)
            #expect(dead.allSatisfy { $0.reason == .giveUp })
        }
    }

    @Test("a notification older than max_age is dead-lettered, not pushed")
    func maxAge() async throws {
        var c = Harness.fastConfig
        c.maxAgeMS = 60_000
        try await withHarness(config: c) { h in
            let id = try h.addPusher()
            try h.notify([note(1, receivedTS: SystemClock.nowMS() - 120_000), note(2)])
            let bodies = try await h.gateway.waitForBodies(1)
            #expect(bodies.map { $0.body["notification"]?["event_id"] } == [.string("$e2")])
            await h.pool.waitUntilIdle()
            let dead = try h.store.read { view in try view.deadLetters(key: Keys.pusher(id)) }
            #expect(dead.count == 1 && dead[0].reason == .maxAge)
        }
    }

    @Test("a gateway rejecting our own pushkey removes the pusher; someone else's is ignored with a warning")
    func rejected() async throws {
        try await withHarness { h in
            let id = try h.addPusher()
            try await h.gateway.setMode("ok", reject: ["someone-else"])
            try h.notify([note(1)])
            await h.pool.waitUntilIdle()
            #expect(try h.store.read { view in try view.pusherState(id) } != nil)
            #expect(h.logs.lines.contains { $0.level == .warning && $0.message.contains("not this pusher's") })
            try await h.gateway.setMode("ok", reject: ["pk1"])
            try h.notify([note(2)])
            await h.pool.waitUntilIdle()
            #expect(try h.store.read { view in try view.pusherState(id) } == nil)
        }
    }

    @Test("a pusher removed while its push is in flight stops without error")
    func removedMidFlight() async throws {
        try await withHarness { h in
            let id = try h.addPusher()
            try await h.gateway.setMode("ok", delayMS: 300)
            try h.notify([note(1), note(2), note(3)])
            _ = try await h.gateway.waitForBodies(1)
            try h.store.append([.pusherRemoved(id)])
            await h.pool.waitUntilIdle()
            #expect(try h.store.read { view in try view.pusherState(id) } == nil)
            #expect(!h.logs.lines.contains { $0.level == .error })
            #expect(try await h.gateway.bodies().count < 3)
        }
    }

    @Test("a long backlog whose first 150 entries were read is skipped through without a stall, and the rest is pushed")
    func noBatchStall() async throws {
        try await withHarness { h in
            let id = try h.addPusher()
            try h.store.append((1...250).map { .notification(note($0, so: Int64($0))) })
            try h.store.append([.receipt(Receipt(userID: "@alice:example.org", roomID: "!r:example.org", eventID: "$e150",
                                                 streamOrdering: 150, ts: 0))])
            h.pool.onNewNotifications(users: ["@alice:example.org"])
            let bodies = try await h.gateway.waitForBodies(100)
            await h.pool.waitUntilIdle()
            #expect(bodies.count == 100)
            #expect(bodies.first?.body["notification"]?["event_id"] == .string("$e151"))
            #expect(bodies.last?.body["notification"]?["event_id"] == .string("$e250"))
            #expect(try h.state(id)?.cursor == (try h.store.read { view in try view.head(user: "@alice:example.org") }))
        }
    }

    @Test("disabling a pusher stops its loop at the next notification")
    func disableTakesEffect() async throws {
        try await withHarness { h in
            let id = try h.addPusher()
            try await h.gateway.setMode("ok", delayMS: 200)
            try h.notify((1...5).map { note($0) })
            _ = try await h.gateway.waitForBodies(1)
            var config = try #require(try h.store.read { view in try view.pusherState(id) }?.config)
            config.enabled = false
            let r = try h.store.append([.pusherSet(config)])
            h.pool.onPushersChanged(r.pusherChanges)
            await h.pool.waitUntilIdle()
            #expect(try await h.gateway.bodies().count < 5)
            #expect(try h.state(id)?.enabled == false)
        }
    }

    @Test("email pushers with work are left alone by the HTTP pool")
    func emailPushersUntouched() async throws {
        try await withHarness { h in
            let id = PusherID(userID: "@alice:example.org", appID: "m.email", pushkey: "alice@example.org")
            try h.store.append([.pusherSet(PusherConfig(id: id, kind: .email, append: true, createdTS: 0))])
            try h.store.append([.notification(note(1))])
            await h.pool.start().value
            h.pool.onNewNotifications(users: ["@alice:example.org"])
            await h.pool.waitUntilIdle()
            let s = try #require(try h.state(id))
            #expect(s.failingSince == nil && s.nextAttempt == nil)
            #expect(s.cursor < (try h.store.read { view in try view.head() }))
            #expect(h.processes.snapshot()["httppush.process"]?.startCount ?? 0 == 0)
        }
    }

    @Test("the boot check starts exactly the pending pushers: 10,000 pushers, 100 pending, 100 loops")
    func bootCheck() async throws {
        try await withHarness { h in
            var entries: [LogEntry] = []
            for i in 0..<10_000 {
                entries.append(.pusherSet(PusherConfig(id: PusherID(userID: String(format: "@u%05d:example.org", i), appID: "app", pushkey: "k\(i)"),
                                                       kind: .http, data: ["url": .string(h.gateway.url)], append: true, createdTS: 0)))
            }
            try h.store.append(entries)
            try h.store.append((0..<100).map { .notification(note($0, user: String(format: "@u%05d:example.org", $0 * 100))) })
            h.pool.start()
            _ = try await h.gateway.waitForBodies(100, timeout: 30)
            await h.pool.waitUntilIdle()
            let stats = h.processes.snapshot()
            #expect(stats["httppush.process"]?.startCount == 100)
            #expect(stats["start_pushers"]?.startCount == 1)
            #expect(h.logs.lines.contains { $0.message.hasPrefix("started pushers: 100 pending of 10000 in ") && $0.message.hasSuffix(" ms") })
            #expect(try await h.gateway.bodies().count == 100)
        }
    }

    @Test("spread over three delivery threads, every push arrives once and each pusher's in log order")
    func severalDeliveryThreads() async throws {
        var c = Harness.fastConfig
        c.deliveryThreads = 3
        c.startupConcurrency = 100
        try await withHarness(config: c) { h in
            let users = (0..<12).map { "@user\($0):example.org" }
            for (i, user) in users.enumerated() { try h.addPusher(user: user, pushkey: "pk\(i)") }
            var notes: [PushNotification] = []
            for k in 0..<6 {
                for (i, user) in users.enumerated() { notes.append(note(k * 100 + i, user: user)) }
            }
            try h.notify(notes)
            let bodies = try await h.gateway.waitForBodies(notes.count)
            await h.pool.waitUntilIdle()
            #expect(bodies.count == notes.count)
            var perPusher: [String: [String]] = [:]
            for b in bodies {
                let pk = b.body["notification"]?["devices"]?.arrayValue?.first?["pushkey"]?.stringValue ?? "?"
                perPusher[pk, default: []].append(b.body["notification"]?["event_id"]?.stringValue ?? "?")
            }
            for i in users.indices {
                #expect(perPusher["pk\(i)"] == (0..<6).map { "$e\($0 * 100 + i)" }, "pusher pk\(i)")
            }
            #expect(h.processes.snapshot()["httppush.process"]?.startCount == users.count)
        }
    }

    @Test("a backlog's badges follow a receipt and a new notification that arrive while it is pushed")
    func badgeFollowsChangesDuringBacklog() async throws {
        try await withHarness { h in
            try h.addPusher()
            // The gateway records a body after the delay, just before it answers, so the next push is
            // built as the test hears of the last one: only a push built a whole delay after a change
            // must show it.
            try await h.gateway.setMode("ok", delayMS: 500)
            // Rooms A (1-3) and B (4-6): two rooms unread.
            try h.notify((1...3).map { note($0, room: "!a:example.org", so: Int64($0)) }
                         + (4...6).map { note($0, room: "!b:example.org", so: Int64($0)) })
            _ = try await h.gateway.waitForBodies(1)
            // While the first push waits for its answer, room A is read: one room unread.
            try h.receipt(Receipt(userID: "@alice:example.org", roomID: "!a:example.org", eventID: "$e3", streamOrdering: 3,
                                  receiptType: .read, threadID: nil, ts: SystemClock.nowMS()))
            _ = try await h.gateway.waitForBodies(4)  // $e1 to $e4: each push carries the badge, no badge-only push between
            // And a new notification in room C: two rooms again.
            try h.notify([note(7, room: "!c:example.org", so: 7)])
            let bodies = try await h.gateway.waitForBodies(7, timeout: 30)
            await h.pool.waitUntilIdle()
            func badge(_ event: String) -> JSON? {
                bodies.first { $0.body["notification"]?["event_id"] == .string(event) }?.body["notification"]?["counts"]?["unread"]
            }
            #expect(badge("$e1") == .int(2))
            #expect(badge("$e3") == .int(1))  // counted again after the receipt, not the cached 2
            // The run was busy with the backlog when the receipt came: its badge went with the next
            // pushes, and no badge-only push was sent beside them (nor after: the last badge was right).
            #expect(try await h.gateway.bodies().count == 7)
            #expect(!bodies.contains { $0.body["notification"]?["id"] == .string("") })
            for e in ["$e6", "$e7"] { #expect(badge(e) == .int(2), "\(e)") }  // and again after the new room
        }
    }
}
