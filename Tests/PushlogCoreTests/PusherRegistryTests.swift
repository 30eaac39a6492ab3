import Foundation
import PushlogCore
import Testing

@Suite("Pusher registry and consumer state")
struct PusherRegistryTests {
    let alice = "@alice:example.org"
    let bob = "@bob:example.org"

    func pendingIDs(_ store: Store) throws -> Set<PusherID> {
        var out = Set<PusherID>()
        try store.read { view in try view.forEachPending { p in
            if let c = try view.pusher(key: p.key) { out.insert(c.id) }
            return true
        } }
        return out
    }

    @Test("a new pusher's cursor is the pos of its own pusher_set entry: nothing earlier is pending")
    func newPusherCursor() throws {
        try withStore { store in
            try store.append([Make.notify(alice, so: 1), Make.notify(alice, so: 2)])
            let r = try store.append([Make.set(alice)])
            #expect(r.firstPos == 3)
            #expect(r.pusherChanges == [Make.pusher(alice).id])
            let s = try #require(try store.read { view in try view.pusherState(Make.pusher(alice).id) })
            #expect(s.state.cursor == 3)
            #expect(s.head == 2)
            #expect(s.pending == 0)
            #expect(s.state.enabled)
            #expect(s.state.kind == .http)
            #expect(try pendingIDs(store).isEmpty)
            try store.append([Make.notify(alice, so: 3)])
            let t = try #require(try store.read { view in try view.pusherState(Make.pusher(alice).id) })
            #expect(t.head == 4)
            #expect(t.pending == 1)
            #expect(try pendingIDs(store) == [Make.pusher(alice).id])
        }
    }

    @Test("within one batch, a pusher set between notifications starts at its own pos")
    func newPusherMidBatch() throws {
        try withStore { store in
            try store.append([Make.notify(alice, so: 1), Make.set(alice), Make.notify(alice, so: 2)])
            let s = try #require(try store.read { view in try view.pusherState(Make.pusher(alice).id) })
            #expect(s.state.cursor == 2)
            #expect(s.head == 3)
            #expect(s.pending == 1)
        }
    }

    @Test("a disabled pusher is not pending, and re-enabling it moves its cursor to the re-enabling entry")
    func reEnable() throws {
        try withStore { store in
            let id = Make.pusher(alice).id
            try store.append([Make.set(alice), Make.notify(alice, so: 1)])  // 1, 2
            #expect(try store.read { view in try view.pusherState(id) }?.state.cursor == 1)
            try store.append([Make.set(alice, enabled: false)])  // 3
            let disabled = try #require(try store.read { view in try view.pusherState(id) })
            #expect(!disabled.state.enabled)
            #expect(!disabled.config.enabled)
            #expect(disabled.state.cursor == 1)  // disabling does not move the cursor
            try store.append([Make.notify(alice, so: 2), Make.notify(alice, so: 3)])  // 4, 5
            #expect(try store.read { view in try view.pusherState(id) }?.pending == 3)
            #expect(try pendingIDs(store).isEmpty)
            try store.append([Make.set(alice, enabled: true)])  // 6
            let enabled = try #require(try store.read { view in try view.pusherState(id) })
            #expect(enabled.state.enabled)
            #expect(enabled.state.cursor == 6)
            #expect(enabled.pending == 0)
            #expect(try pendingIDs(store).isEmpty)
        }
    }

    @Test("updating an enabled pusher keeps its createdTS and its cursor, and takes the new config")
    func updateKeepsCreatedAndCursor() throws {
        try withStore { store in
            let id = Make.pusher(alice).id
            try store.append([Make.set(alice, createdTS: 1_000, name: "old phone"), Make.notify(alice, so: 1)])  // 1, 2
            try store.setCursor(id, 1)
            try store.write { ctx in
                var s = try #require(try ctx.consumerState(id))
                s.failingSince = 123
                s.lastBadge = 4
                try ctx.setConsumerState(id, s)
            }
            try store.append([Make.set(alice, createdTS: 9_000, name: "new phone")])  // 3
            let s = try #require(try store.read { view in try view.pusherState(id) })
            #expect(s.config.createdTS == 1_000)
            #expect(s.config.deviceDisplayName == "new phone")
            #expect(s.state.cursor == 1)
            #expect(s.state.failingSince == 123)
            #expect(s.state.lastBadge == 4)
            #expect(s.pending == 1)
            #expect(s.json["pushkey_ts"] == .int(1))
        }
    }

    @Test("append false removes other users' pushers with the same app_id and pushkey")
    func appendFalseRemovesOthers() throws {
        try withStore { store in
            let shared = "shared-key"
            let aliceID = Make.pusher(alice, key: shared).id
            let bobID = Make.pusher(bob, key: shared).id
            try store.append([
                Make.set(alice, key: shared),
                Make.set(alice, app: "other.app", key: shared),  // same pushkey, other app: unaffected
                Make.set("@carol:x", key: "carol-key"),
            ])
            let r = try store.append([Make.set(bob, key: shared, append: false)])
            #expect(r.pusherChanges == [bobID, aliceID])
            #expect(try store.read { view in try view.pusherState(aliceID) } == nil)
            #expect(try store.write { ctx in try ctx.consumerState(aliceID) } == nil)
            #expect(try store.read { view in try view.pusherState(bobID) } != nil)
            #expect(try store.read { view in try view.pusherState(Make.pusher(alice, app: "other.app", key: shared).id) } != nil)
            #expect(try store.read { view in try view.pusherState(Make.pusher("@carol:x", key: "carol-key").id) } != nil)
        }
    }

    @Test("append true keeps other users' pushers with the same app_id and pushkey")
    func appendTrueKeepsOthers() throws {
        try withStore { store in
            let shared = "shared-key"
            try store.append([Make.set(alice, key: shared)])
            let r = try store.append([Make.set(bob, key: shared, append: true)])
            #expect(r.pusherChanges == [Make.pusher(bob, key: shared).id])
            #expect(try store.read { view in try view.pusherState(Make.pusher(alice, key: shared).id) } != nil)
            #expect(try store.read { view in try view.pusherState(Make.pusher(bob, key: shared).id) } != nil)
            // And a later append:false by a third user removes both.
            try store.append([Make.set("@carol:x", key: shared)])
            #expect(try store.read { view in try view.pusherState(Make.pusher(alice, key: shared).id) } == nil)
            #expect(try store.read { view in try view.pusherState(Make.pusher(bob, key: shared).id) } == nil)
        }
    }

    @Test("removing a pusher drops its registry entry and its consumer state; setting it again starts afresh")
    func removal() throws {
        try withStore { store in
            let id = Make.pusher(alice).id
            try store.append([Make.set(alice), Make.notify(alice, so: 1)])
            try store.write { ctx in try ctx.setConsumerState(id, ConsumerState(cursor: 0, failingSince: 5, nextAttempt: 6)) }
            let r = try store.append([.pusherRemoved(id)])  // 3
            #expect(r.pusherChanges == [id])
            #expect(try store.read { view in try view.pusherState(id) } == nil)
            #expect(try store.write { ctx in try ctx.consumerState(id) } == nil)
            #expect(try pendingIDs(store).isEmpty)
            // Removing it again changes nothing.
            #expect(try store.append([.pusherRemoved(id)]).pusherChanges.isEmpty)
            let again = try store.append([Make.set(alice)])  // 5
            let s = try #require(try store.read { view in try view.pusherState(id) })
            #expect(s.state.cursor == again.firstPos)
            #expect(s.state.failingSince == nil)
            #expect(s.state.nextAttempt == nil)
        }
    }

    @Test("forEachPusherState lists every pusher in key order, or one user's")
    func listing() throws {
        try withStore { store in
            try store.append([Make.set(bob), Make.set(alice), Make.set(alice, app: "two"), Make.set("@a:x")])
            var all: [String] = []
            try store.read { view in try view.forEachPusherState { all.append($0.config.id.userID); return true } }
            #expect(all == ["@a:x", alice, alice, bob])
            var alices = 0
            try store.read { view in try view.forEachPusherState(user: alice) { s in
                #expect(s.config.id.userID == alice)
                alices += 1
                return true
            } }
            #expect(alices == 2)
            var none = 0
            try store.read { view in try view.forEachPusherState(user: "@alice") { _ in none += 1; return true } }
            #expect(none == 0)
            let stats = try store.read { view in try view.stats() }
            #expect(stats.pushers == 4)
            #expect(stats.pushersByKind[.http] == 4)
        }
    }

    @Test("consumer state round-trips through its fixed 46-byte encoding, and a 42-byte record from before the generation reads as generation 0")
    func consumerStateCodec() throws {
        for s in [ConsumerState(cursor: 0), ConsumerState(cursor: .max - 1, failingSince: 1, nextAttempt: -2, lastSuccess: .max,
                                                            lastBadge: 0, enabled: false, kind: .email, generation: .max)] {
            let b = s.encoded()
            #expect(b.count == 46)
            #expect(try b.withUnsafeBytes { try ConsumerState.decode($0) } == s)
            var old = s
            old.generation = 0
            #expect(try Array(b.prefix(42)).withUnsafeBytes { try ConsumerState.decode($0) } == old)
        }
        #expect(throws: CorruptData.self) { try [UInt8](repeating: 0, count: 41).withUnsafeBytes { try ConsumerState.decode($0) } }
    }
}

@Suite("Rewinding cursors")
struct RewindTests {
    let alice = "@alice:example.org"
    let bob = "@bob:example.org"

    /// Alice has pushers on app a and b, Bob on app a; all cursors at 10.
    func seeded(_ store: Store) throws -> (a: PusherID, b: PusherID, bob: PusherID) {
        try store.append([Make.set(alice, app: "a"), Make.set(alice, app: "b"), Make.set(bob, app: "a")])
        try store.append((1...9).map { Make.notify($0 % 2 == 0 ? alice : bob, so: Int64($0)) })
        let ids = (Make.pusher(alice, app: "a").id, Make.pusher(alice, app: "b").id, Make.pusher(bob, app: "a").id)
        for id in [ids.0, ids.1, ids.2] { try store.setCursor(id, 10) }
        return ids
    }

    @Test("rewind moves matching cursors back to toPos - 1")
    func rewindAll() throws {
        try withStore { store in
            let ids = try seeded(store)
            let moved = try store.rewind(toPos: 5, filter: .init())
            #expect(Set(moved) == [ids.a, ids.b, ids.bob])
            for id in [ids.a, ids.b, ids.bob] { #expect(try store.cursor(id) == 4) }
        }
    }

    @Test("rewind never moves a cursor forward")
    func neverForward() throws {
        try withStore { store in
            let ids = try seeded(store)
            try store.setCursor(ids.b, 2)
            let moved = try store.rewind(toPos: 6, filter: .init())
            #expect(Set(moved) == [ids.a, ids.bob])
            #expect(try store.cursor(ids.a) == 5)
            #expect(try store.cursor(ids.b) == 2)
            // Rewinding to where a cursor already is, or past the head, moves nothing.
            #expect(try store.rewind(toPos: 6, filter: .init()).isEmpty)
            #expect(try store.rewind(toPos: 100, filter: .init()).isEmpty)
            #expect(try store.cursor(ids.a) == 5)
        }
    }

    @Test("rewind to pos 0 or 1 redelivers everything")
    func rewindToStart() throws {
        try withStore { store in
            let ids = try seeded(store)
            #expect(try store.rewind(toPos: 1, filter: .init(userID: bob)) == [ids.bob])
            #expect(try store.cursor(ids.bob) == 0)
            #expect(try store.rewind(toPos: 0, filter: .init(userID: alice, appID: "a")) == [ids.a])
            #expect(try store.cursor(ids.a) == 0)
        }
    }

    @Test("rewind respects the user, app_id and pushkey filters")
    func filters() throws {
        try withStore { store in
            let ids = try seeded(store)
            #expect(Set(try store.rewind(toPos: 9, filter: .init(userID: alice))) == [ids.a, ids.b])
            #expect(try store.cursor(ids.bob) == 10)
            #expect(Set(try store.rewind(toPos: 7, filter: .init(appID: "a"))) == [ids.a, ids.bob])
            #expect(try store.cursor(ids.b) == 8)
            #expect(try store.rewind(toPos: 3, filter: .init(pushkey: "key-\(bob)")) == [ids.bob])
            #expect(try store.cursor(ids.a) == 6)
            #expect(try store.rewind(toPos: 1, filter: .init(userID: alice, appID: "a", pushkey: "nope")).isEmpty)
            #expect(try store.rewind(toPos: 1, filter: .init(userID: "@alice")).isEmpty)
            #expect(try store.cursor(ids.a) == 6)
        }
    }

    @Test("a dry run reports what would move and moves nothing")
    func dryRun() throws {
        try withStore { store in
            let ids = try seeded(store)
            let would = try store.rewind(toPos: 3, filter: .init(userID: alice), dryRun: true)
            #expect(Set(would) == [ids.a, ids.b])
            for id in [ids.a, ids.b, ids.bob] { #expect(try store.cursor(id) == 10) }
            #expect(Set(try store.rewind(toPos: 3, filter: .init(userID: alice))) == [ids.a, ids.b])
            #expect(try store.cursor(ids.a) == 2)
        }
    }

    @Test("a rewind combined with position(atOrAfter:) redelivers what was appended since a time")
    func sinceTime() throws {
        try withStore { store in
            try store.append([Make.set(alice)], now: 1_000)                              // 1
            try store.append([Make.notify(alice, so: 1)], now: 2_000)                    // 2
            try store.append([Make.notify(alice, so: 2), Make.notify(alice, so: 3)], now: 3_000)  // 3, 4
            let id = Make.pusher(alice).id
            try store.setCursor(id, 4)
            let from = try store.read { view in try view.position(atOrAfter: 2_500) }
            #expect(from == 3)
            #expect(try store.rewind(toPos: from, filter: .init()) == [id])
            let s = try #require(try store.read { view in try view.pusherState(id) })
            #expect(s.state.cursor == 2)
            #expect(s.pending == 2)
        }
    }
}
