import Foundation
import LMDB
import PushlogCore
import Testing

let alice = "@alice:example.org"
let bob = "@bob:example.org"
let carol = "@carol:example.org"

/// A store with a bit of everything: notifications in several rooms and threads, receipts
/// (threaded, unthreaded, older ones), pushers set, updated, disabled, removed and displaced.
func populate(_ store: Store) throws {
    try store.append([Make.set(alice, createdTS: 100), Make.set(bob), Make.set(carol, app: "m.email", key: "carol@example.org")])
    for i in 0..<30 {
        let user = [alice, bob, carol][i % 3]
        try store.append([
            Make.notify(user, room: "!r\(i % 4)", so: Int64(i * 10), thread: i % 5 == 0 ? "t\(i % 2)" : "main"),
            Make.notify(user, room: "!q", so: Int64(i * 10 + 1), actions: i % 7 == 0 ? [.string("dont_notify")] : [.string("notify")]),
        ])
        if i % 4 == 3 {
            try store.append([Make.receipt(user, room: "!r\(i % 4)", so: Int64(i * 10 - 5)),
                              Make.receipt(user, room: "!q", so: Int64(i * 10 - 20), thread: "main"),
                              Make.receipt(user, room: "!r1", so: 1)])
        }
        if i == 10 { try store.append([Make.set(alice, createdTS: 100, name: "renamed"), Make.set(bob, enabled: false)]) }
        if i == 15 { try store.append([Make.set("@dave:x", key: "shared"), Make.set("@erin:x", key: "shared", append: true)]) }
        if i == 20 { try store.append([Make.set("@frank:x", key: "shared"), .pusherRemoved(Make.pusher(carol, app: "m.email", key: "carol@example.org").id)]) }
        if i == 25 { try store.append([Make.set(bob, enabled: true), Make.set(carol)]) }
    }
}

/// (missing, extra, changed) of one projection's diff.
func counts(_ d: ProjectionDiff?) -> [Int] { d.map { [$0.missing, $0.extra, $0.changed] } ?? [] }

@Suite("Rebuild")
struct RebuildTests {
    @Test("a rebuild of a consistent store reports clean and repairs nothing")
    func cleanStore() throws {
        try withStore { store in
            try populate(store)
            var progressCalls = 0
            let report = try store.rebuild(repair: true, chunk: 7) { done, total in
                progressCalls += 1
                #expect(done <= total)
            }
            #expect(report.isClean, "\(report.differences)")
            #expect(!report.repaired)
            #expect(report.entries == (try store.read { view in try view.head() }))
            #expect(report.differences.count == 6)
            #expect(progressCalls > 0)
            #expect(!(try store.rebuildInterrupted()))
            #expect(try store.checkLog().isHealthy)
        }
    }

    @Test("a rebuild after damaging the projections reports each difference, repairs it, and a second rebuild is clean")
    func repairsDamage() throws {
        try withStore { store in
            try populate(store)
            let aliceID = Make.pusher(alice).id, bobID = Make.pusher(bob).id, carolID = Make.pusher(carol).id
            let aliceHead = try store.read { view in try view.head(user: alice) }
            let aliceBadge = try store.read { view in try view.badge(user: alice, rule: .notifications) }
            let aliceNotifs = try store.read { view in try view.notifications(user: alice, after: 0) }
            let bobCursor = try #require(try store.cursor(bobID))
            try #require(aliceBadge > 0)
            try #require(aliceNotifs.count > 3)

            let heads = try store.env.database("heads"), notifs = try store.env.database("notifs")
            let receipts = try store.env.database("receipts"), unread = try store.env.database("unread")
            let pushers = try store.env.database("pushers"), pusherKeys = try store.env.database("pusher_keys")
            let consumers = try store.env.database("consumers")
            let ghost = PusherID(userID: "@ghost:x", appID: "a", pushkey: "k")
            try store.env.write { txn throws in
                #expect(try txn.delete(heads, Keys.user(alice)))
                #expect(try txn.delete(notifs, Keys.notif(alice, aliceNotifs[1].pos)))
                try txn.put(receipts, Keys.receipt(bob, "!r3", thread: nil), BigEndian.bytes(1))
                try txn.put(unread, Keys.room("@ghost:x", "!r"), BigEndian.bytes(1) + BigEndian.bytes(1))
                #expect(try txn.delete(pusherKeys, Keys.pusherKeyIndex(aliceID)))
                try txn.put(pushers, Keys.pusher(PusherID(userID: "@ghost:x", appID: "x", pushkey: "y")),
                            try #require(try txn.getBytes(pushers, Keys.pusher(aliceID))))
                #expect(try txn.delete(consumers, Keys.pusher(carolID)))
                try txn.put(consumers, Keys.pusher(ghost), ConsumerState(cursor: 1).encoded())
                var b = try ConsumerState.decode(try #require(try txn.get(consumers, Keys.pusher(bobID))))
                b.enabled.toggle()
                try txn.put(consumers, Keys.pusher(bobID), b.encoded())
            }
            #expect(try store.read { view in try view.head(user: alice) } == 0)

            let report = try store.rebuild(repair: true, chunk: 7)
            #expect(!report.isClean)
            #expect(report.repaired)
            #expect(counts(report.differences["heads"]) == [1, 0, 0])
            #expect(counts(report.differences["notifs"]) == [1, 0, 0])
            #expect(counts(report.differences["receipts"]) == [0, 0, 1])
            #expect(counts(report.differences["unread"]) == [0, 1, 0])
            #expect(counts(report.differences["pushers"]) == [0, 1, 0])
            #expect(counts(report.differences["pusher_keys"]) == [1, 0, 0])
            #expect(report.orphanConsumers == 1)
            #expect(report.missingConsumers == 1)
            #expect(report.consumerFlagsFixed == 1)

            #expect(try store.read { view in try view.head(user: alice) } == aliceHead)
            #expect(try store.read { view in try view.notifications(user: alice, after: 0) } == aliceNotifs)
            #expect(try store.read { view in try view.badge(user: alice, rule: .notifications) } == aliceBadge)
            #expect(try store.read { view in try view.badge(user: "@ghost:x") } == 0)
            #expect(try store.read { view in try view.pusherState(PusherID(userID: "@ghost:x", appID: "x", pushkey: "y")) } == nil)
            #expect(try store.write { ctx in try ctx.consumerState(ghost) } == nil)
            // A pusher that lost its state starts at the head: no history.
            #expect(try store.cursor(carolID) == (try store.read { view in try view.head() }))
            let bobState = try #require(try store.read { view in try view.pusherState(bobID) })
            #expect(bobState.state.enabled == bobState.config.enabled)
            #expect(bobState.state.cursor == bobCursor)
            #expect(!(try store.rebuildInterrupted()))

            let second = try store.rebuild(repair: true)
            #expect(second.isClean, "\(second.differences)")
            #expect(!second.repaired)
        }
    }

    @Test("a rebuild without repair reports differences but leaves the store as it was")
    func reportOnly() throws {
        try withStore { store in
            try populate(store)
            let heads = try store.env.database("heads")
            try store.env.write { txn in try txn.put(heads, Keys.user(alice), BigEndian.bytes(1)) }
            let report = try store.rebuild(repair: false)
            #expect(report.differences["heads"]?.changed == 1)
            #expect(!report.repaired)
            #expect(try store.read { view in try view.head(user: alice) } == 1)
            #expect(try store.rebuild(repair: true).repaired)
            #expect(try store.read { view in try view.head(user: alice) } != 1)
        }
    }
}

@Suite("Compaction")
struct CompactTests {
    /// Moves every pusher's cursor to `pos`.
    func advanceAll(_ store: Store, to pos: UInt64) throws {
        var ids: [PusherID] = []
        try store.read { view in try view.forEachPusherState { ids.append($0.config.id); return true } }
        for id in ids { try store.setCursor(id, pos) }
    }

    func pusherSnapshot(_ store: Store) throws -> [PusherConfig] {
        var out: [PusherConfig] = []
        try store.read { view in try view.forEachPusherState { out.append($0.config); return true } }
        return out
    }

    @Test("compaction drops the prefix every cursor has passed, keeps the pushers, and a rebuild afterwards is clean")
    func dropsPassedPrefix() throws {
        try withStore { store in
            try populate(store)
            let head = try store.read { view in try view.head() }
            let pushersBefore = try pusherSnapshot(store)
            let badgesBefore = try store.read { view in try [alice, bob, carol].map { try view.badge(user: $0, rule: .notifications) } }
            try advanceAll(store, to: head)
            let laggard = Make.pusher(alice).id
            try store.setCursor(laggard, head - 10)
            let report = try store.dropPassedPrefix(olderThan: SystemClock.nowMS() + 86_400_000, chunk: 9)
            #expect(report.newFirst == head - 9)
            #expect(report.dropped == head - 10)
            #expect(report.checkpointed > 0)
            #expect(try store.read { view in try view.firstPos() } == head - 9)
            #expect(try store.read { view in try view.entry(at: 1) } == nil)
            #expect(try store.read { view in try view.entry(at: head - 10) } == nil)
            #expect(try store.read { view in try view.entry(at: head - 9) } != nil)
            #expect(try store.allEntries().map(\.pos) == Array((head - 9)...head))
            #expect(try store.read { view in try view.head() } == head)
            #expect(try store.checkLog().isHealthy)
            #expect(try pusherSnapshot(store) == pushersBefore)
            // The pushers survive a rebuild too: they are replayed from the checkpoint.
            let rebuilt = try store.rebuild(repair: false)
            #expect(rebuilt.isClean, "\(rebuilt.differences) orphans \(rebuilt.orphanConsumers) missing \(rebuilt.missingConsumers)")
            // Only notifications everyone has passed went away; later ones keep their read state.
            let after = try store.read { view in try [alice, bob, carol].map { try view.badge(user: $0, rule: .notifications) } }
            #expect(zip(after, badgesBefore).allSatisfy { $0 <= $1 })
            // Appending continues after the old head.
            #expect(try store.append([Make.notify(alice, so: 10_000)]).firstPos == head + 1)
            #expect(try store.rebuild(repair: false).isClean)
        }
    }

    @Test("compaction keeps what was appended after the cutoff time, and a cutoff in the past drops nothing")
    func cutoff() throws {
        try withStore { store in
            try store.append([Make.set(alice)], now: 1_000)
            try store.append((1...5).map { Make.notify(alice, so: Int64($0)) }, now: 2_000)  // 2...6
            try store.append((6...9).map { Make.notify(alice, so: Int64($0)) }, now: 3_000)  // 7...10
            try advanceAll(store, to: 10)
            let none = try store.dropPassedPrefix(olderThan: 500)
            #expect(none.dropped == 0)
            #expect(try store.read { view in try view.firstPos() } == 1)
            let some = try store.dropPassedPrefix(olderThan: 3_000)
            #expect(some.newFirst == 7)
            #expect(some.dropped == 6)
            #expect(try store.allEntries().map(\.pos) == [7, 8, 9, 10])
            #expect(try store.read { view in try view.pusherState(Make.pusher(alice).id) } != nil)
            #expect(try store.read { view in try view.position(atOrAfter: 0) } == 7)
            #expect(try store.read { view in try view.position(atOrAfter: 3_001) } == 11)
            #expect(try store.rebuild(repair: false).isClean)
        }
    }

    @Test("a disabled pusher's cursor does not hold compaction back")
    func disabledDoesNotHoldBack() throws {
        try withStore { store in
            try store.append([Make.set(alice), Make.set(bob)])
            try store.append((1...8).map { Make.notify($0 % 2 == 0 ? alice : bob, so: Int64($0)) })  // 3...10
            try store.append([Make.set(bob, enabled: false)])  // 11
            try store.setCursor(Make.pusher(alice).id, 11)
            try store.setCursor(Make.pusher(bob).id, 0)
            let r = try store.dropPassedPrefix(olderThan: SystemClock.nowMS() + 60_000)
            #expect(r.newFirst == 12)
            #expect(try store.allEntries().isEmpty)
            #expect(try store.read { view in try view.pusherState(Make.pusher(bob).id) }?.config.enabled == false)
            #expect(try store.read { view in try view.pusherState(Make.pusher(alice).id) }?.config.enabled == true)
            #expect(try store.read { view in try view.head(user: alice) } == 10, "compaction keeps the head of a user whose notifications it dropped")
            #expect(try store.rebuild(repair: false).isClean)
        }
    }

    @Test("compaction keeps each user's head, through a rebuild and a second compaction, and a later notification moves it on")
    func keepsHeads() throws {
        try withStore { store in
            try store.append([Make.set(alice), Make.set(bob)])
            try store.append([Make.notify(alice, so: 1), Make.notify(bob, so: 2), Make.notify(alice, so: 3)])  // 3, 4, 5
            try advanceAll(store, to: try store.read { view in try view.head() })
            _ = try store.dropPassedPrefix(olderThan: SystemClock.nowMS() + 60_000)
            #expect(try store.allEntries().isEmpty)
            #expect(try store.read { view in try view.head(user: alice) } == 5)
            #expect(try store.read { view in try view.head(user: bob) } == 4)
            #expect(try store.read { view in try view.pusherState(Make.pusher(alice).id) }.map { $0.head <= $0.state.cursor } == true,
                    "the head is not behind the cursor")
            let report = try store.rebuild(repair: false)
            #expect(report.isClean, "a rebuild derives the kept heads: \(report.differences)")

            // Damage the heads: the repair restores them from what compaction recorded.
            let heads = try store.env.database("heads")
            try store.env.write { txn in try txn.clear(heads) }
            #expect(try store.rebuild(repair: true).repaired)
            #expect(try store.read { view in try view.head(user: alice) } == 5)
            #expect(try store.read { view in try view.head(user: bob) } == 4)

            try store.append([Make.notify(alice, so: 9)])  // 6
            try advanceAll(store, to: try store.read { view in try view.head() })
            _ = try store.dropPassedPrefix(olderThan: SystemClock.nowMS() + 60_000)
            #expect(try store.read { view in try view.head(user: alice) } == 6)
            #expect(try store.read { view in try view.head(user: bob) } == 4)
            #expect(try store.rebuild(repair: false).isClean)
        }
    }

    @Test("compaction keeps an updated pusher's original createdTS through a rebuild")
    func keepsCreatedTS() throws {
        try withStore { store in
            let id = Make.pusher(alice).id
            try store.append([Make.set(alice, createdTS: 1_000)])
            try store.append([Make.notify(alice, so: 1), Make.set(alice, createdTS: 9_000, name: "renamed")])
            #expect(try store.read { view in try view.pusherState(id) }?.config.createdTS == 1_000)
            try advanceAll(store, to: try store.read { view in try view.head() })
            let r = try store.dropPassedPrefix(olderThan: SystemClock.nowMS() + 60_000)
            #expect(r.dropped == 3)
            #expect(try store.read { view in try view.pusherState(id) }?.config.createdTS == 1_000)
            let report = try store.rebuild(repair: false)
            #expect(report.isClean, "\(report.differences)")
            _ = try store.rebuild(repair: true)
            #expect(try store.read { view in try view.pusherState(id) }?.config.createdTS == 1_000)
            #expect(try store.read { view in try view.pusherState(id) }?.config.deviceDisplayName == "renamed")
        }
    }

    @Test("compaction then a second compaction: the checkpoint carries forward what is still in force")
    func twice() throws {
        try withStore { store in
            try store.append([Make.set(alice), Make.set(bob), Make.receipt(alice, room: "!r", so: 50)])
            try store.append([Make.notify(alice, room: "!r", so: 40), Make.notify(alice, room: "!r", so: 60)])
            try advanceAll(store, to: try store.read { view in try view.head() })
            _ = try store.dropPassedPrefix(olderThan: SystemClock.nowMS() + 60_000)
            try store.append([.pusherRemoved(Make.pusher(bob).id), Make.notify(alice, room: "!r", so: 70)])
            try advanceAll(store, to: try store.read { view in try view.head() })
            _ = try store.dropPassedPrefix(olderThan: SystemClock.nowMS() + 60_000)
            #expect(try store.allEntries().isEmpty)
            #expect(try store.read { view in try view.pusherState(Make.pusher(bob).id) } == nil)
            #expect(try store.read { view in try view.pusherState(Make.pusher(alice).id) } != nil)
            #expect(try store.rebuild(repair: false).isClean)
            // The receipt from the first compacted prefix still decides read state for new notifications.
            try store.append([Make.notify(alice, room: "!r", so: 45), Make.notify(alice, room: "!r", so: 80)])
            let fresh = try store.read { view in try view.notifications(user: alice, after: try view.head() - 2) }
            #expect(fresh.map(\.isRead) == [true, false])
            _ = try store.rebuild(repair: true)
            #expect(try store.read { view in try view.notifications(user: alice, after: try view.head() - 2) }.map(\.isRead) == [true, false])
            #expect(try store.rebuild(repair: false).isClean)
        }
    }
}
