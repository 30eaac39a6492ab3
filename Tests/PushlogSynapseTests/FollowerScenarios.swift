import Foundation
import PushlogCore
@testable import PushlogSynapse
import Testing

/// A Synapse database for one test: a connection that writes as Synapse would, and the
/// follower's read-only source.
protocol SynapseTestDatabase: Sendable {
    func writer() async throws -> SynapseWriter
    func source() async throws -> any SynapseSource
}

/// The follower's behaviours, each run on SQLite and on PostgreSQL.
enum FollowerScenarios {
    static func store(_ name: String) throws -> Store {
        try Store(dataDir: tempDir(name) + "/data")
    }

    /// Pushers, push actions (with event and context) and receipts reach the log as the API
    /// would append them.
    static func followed(_ db: some SynapseTestDatabase) async throws {
        let w = try await db.writer()
        let store = try store("followed")
        let follower = SynapseFollower(store: store, source: try await db.source(), options: testOptions())
        try await w.pusher(id: 1, user: "@alice:example.org")
        _ = try await follower.catchUp()
        let id = PusherID(userID: "@alice:example.org", appID: "com.example.app", pushkey: "key")
        let pusher = try #require(try store.read { view in try view.pusherState(id) })
        #expect(pusher.config.kind == .http && pusher.config.data["url"] == .string("http://127.0.0.1:9/_matrix/push/v1/notify"))
        #expect(pusher.config.createdTS == 1_700_000_000_000 && pusher.config.appDisplayName == "App")

        try await w.room("!r:example.org", name: "Lunch", alias: "#lunch:example.org", members: 3)
        try await w.member(10, room: "!r:example.org", user: "@bob:example.org", displayName: "Bob")
        try await w.event(11, id: "$e11", room: "!r:example.org", sender: "@bob:example.org", ts: 1_700_000_001_000)
        try await w.pushAction(11, event: "$e11", room: "!r:example.org", user: "@alice:example.org")
        try await w.pushAction(11, event: "$e11", room: "!r:example.org", user: "@carol:example.org")  // no pusher
        try await w.event(12, id: "$e12", room: "!r:example.org", sender: "@bob:example.org")
        try await w.pushAction(12, event: "$e12", room: "!r:example.org", user: "@alice:example.org",
                               actions: #"["notify",{"set_tweak":"sound","value":"default"}]"#, thread: "$root")
        try await w.event(13, id: "$e13", room: "!r:example.org", sender: "@bob:example.org")
        try await w.pushAction(13, event: "$e13", room: "!r:example.org", user: "@alice:example.org", notif: false)
        _ = try await follower.catchUp()
        let ns = try notifications(store)
        #expect(ns.map(\.eventID) == ["$e11", "$e12"])
        let n = try #require(ns.first)
        #expect(n.userID == "@alice:example.org" && n.roomID == "!r:example.org" && n.streamOrdering == 11)
        #expect(n.actions == SynapseRows.defaultNotifyActions && n.threadID == "main" && n.receivedTS == 1_700_000_001_000)
        #expect(n.event["type"] == .string("m.room.message") && n.event["sender"] == .string("@bob:example.org"))
        #expect(n.event["content"] == .object(["msgtype": .string("m.text"), "body": .string("Hi!")]))
        #expect(n.event["origin_server_ts"] == .int(1_700_000_001_000))
        #expect(n.context == ["sender_display_name": .string("Bob"), "room_name": .string("Lunch"),
                              "room_alias": .string("#lunch:example.org"), "member_count": .int(3)])
        #expect(ns[1].threadID == "$root" && ns[1].actions == [.string("notify"), .object(["set_tweak": .string("sound"), "value": .string("default")])])

        try await w.receipt(5, user: "@alice:example.org", room: "!r:example.org", event: "$e12", so: 12)
        try await w.receipt(6, user: "@alice:example.org", room: "!r:example.org", event: "$e11", so: 11, type: "m.read.private", thread: "main")
        try await w.receipt(7, user: "@carol:example.org", room: "!r:example.org", event: "$e11", so: 11)  // no pusher
        _ = try await follower.catchUp()
        let receipts = try entries(store).compactMap { if case .receipt(let r) = $0 { r } else { nil } }
        #expect(receipts == [
            Receipt(userID: "@alice:example.org", roomID: "!r:example.org", eventID: "$e12", streamOrdering: 12, receiptType: .read, threadID: nil, ts: 1_700_000_000_123),
            Receipt(userID: "@alice:example.org", roomID: "!r:example.org", eventID: "$e11", streamOrdering: 11, receiptType: .readPrivate, threadID: "main", ts: 1_700_000_000_123),
        ])
        let positions = try store.sourcePositions()
        // 13 does not notify: push actions are followed by their notifying rows.
        #expect(positions["synapse.push_actions"]?.position == 12 && positions["synapse.receipts"]?.position == 6)  // 7 is of a user without a pusher
        #expect(positions["synapse.pushers"]?.position == 1)
        store.close()
    }

    /// A follower on a fresh store that has taken alice's pusher (its first start done), for the
    /// late-commit scenarios.
    static func followingAlice(_ db: some SynapseTestDatabase, _ name: String,
                               options: SynapseFollowerOptions = testOptions()) async throws -> (SynapseWriter, Store, SynapseFollower) {
        let w = try await db.writer()
        let store = try store(name)
        let follower = SynapseFollower(store: store, source: try await db.source(), options: options)
        try await w.pusher(id: 1, user: "@alice:example.org")
        _ = try await follower.catchUp()
        return (w, store, follower)
    }

    /// Bob's message at stream ordering `so`, notifying alice.
    static func bobToAlice(_ w: SynapseWriter, _ so: Int64) async throws {
        try await w.message(so, room: "!r:example.org", sender: "@bob:example.org", notifying: ["@alice:example.org"])
    }

    /// Alice's pusher's pending count.
    static func alicePending(_ store: Store) throws -> Int? {
        let id = PusherID(userID: "@alice:example.org", appID: "com.example.app", pushkey: "key")
        return try store.read { view in try view.pusherState(id) }?.pending
    }

    /// A row committed after a higher one was read is still appended, once.
    static func lateCommit(_ db: some SynapseTestDatabase) async throws {
        let (w, store, follower) = try await followingAlice(db, "late")
        try await bobToAlice(w, 20)
        _ = try await follower.catchUp()
        // 15 was handed out before 20 but commits only now.
        try await bobToAlice(w, 15)
        try await w.receipt(3, user: "@alice:example.org", room: "!r:example.org", event: "$e20", so: 20)
        _ = try await follower.catchUp()
        try await w.receipt(2, user: "@alice:example.org", room: "!r:other:example.org", event: "$e1", so: 1)
        _ = try await follower.catchUp()
        _ = try await follower.catchUp()
        #expect(try notifications(store).map(\.streamOrdering) == [20, 15])
        let receipts = try entries(store).compactMap { if case .receipt(let r) = $0 { r.roomID } else { nil } }
        #expect(receipts == ["!r:example.org", "!r:other:example.org"])
        // The late one is delivered: the pusher's cursor is behind it.
        #expect(try alicePending(store) == 2)
        store.close()
    }

    /// A push action whose event is gone (purged from `events` and `event_json`) is read and
    /// passed over: nothing is appended for it, and the event after it arrives.
    static func eventGone(_ db: some SynapseTestDatabase) async throws {
        let (w, store, follower) = try await followingAlice(db, "gone")
        try await w.pushAction(30, event: "$gone", room: "!r:example.org", user: "@alice:example.org")
        try await bobToAlice(w, 31)
        _ = try await follower.catchUp()
        #expect(try notifications(store).map(\.eventID) == ["$e31"])
        #expect(try store.sourcePositions()["synapse.push_actions"]?.position == 31)
        #expect(try alicePending(store) == 1)
        store.close()
    }

    /// Catching up (full batches), a row that commits late behind the rows being read is still
    /// appended, once. And once `lateness` has passed since the source's head was seen, the
    /// window closes behind the rows read: nothing is kept to tell them apart, where a window of
    /// positions reached would have grown with the catch-up.
    static func lateCommitWhileCatchingUp(_ db: some SynapseTestDatabase) async throws {
        var options = testOptions()
        options.batchSize = 2
        options.lateness = .milliseconds(300)
        let (w, store, follower) = try await followingAlice(db, "late-catch-up", options: options)
        for so in Int64(20)..<40 { try await bobToAlice(w, so) }
        #expect(try await follower.poll().caughtUp == false)
        // 15 was handed out before 20 but commits only now, while the follower is behind.
        try await bobToAlice(w, 15)
        // The time under test: the head seen by the first poll (39) settles.
        try await Task.sleep(for: .milliseconds(400))
        _ = try await follower.catchUp()
        let orderings = try notifications(store).map(\.streamOrdering)
        #expect(orderings.count == 21 && orderings.sorted() == [15] + Array(20..<40))
        let positions = try store.sourcePositions()
        #expect(try store.sourceSeenCount("synapse.push_actions", above: 0, atMost: .max) == 0, "\(positions)")
        #expect(try alicePending(store) == 21)
        store.close()
    }

    /// Following live with the whole-window count spaced out (`windowCheckInterval`), a late row
    /// is still appended once it settles: the part of the window that leaves it is checked on
    /// every poll.
    static func lateCommitBetweenWindowChecks(_ db: some SynapseTestDatabase) async throws {
        var options = testOptions()
        options.lateness = .milliseconds(300)
        options.windowCheckInterval = .seconds(3_600)
        // Its first catch-up checked the whole window: for the next hour, only what leaves it.
        let (w, store, follower) = try await followingAlice(db, "late-between-checks", options: options)
        try await bobToAlice(w, 20)
        _ = try await follower.catchUp()
        // 15 was handed out before 20 but commits only now.
        try await bobToAlice(w, 15)
        _ = try await follower.catchUp()
        #expect(try notifications(store).map(\.streamOrdering) == [20], "the whole window was counted again")
        // The time under test: the head seen with 20 settles, and 15 leaves the window.
        try await Task.sleep(for: .milliseconds(400))
        _ = try await follower.catchUp()
        _ = try await follower.catchUp()
        #expect(try notifications(store).map(\.streamOrdering) == [20, 15])
        store.close()
    }

    /// Behind a full batch, the next batch of push actions is read ahead; a read from positions
    /// other than the ones it was read for (a write failed, so the stored positions did not move)
    /// does not take it: the same rows are read again, and the catch-up after has every row once.
    static func readAhead(_ db: some SynapseTestDatabase) async throws {
        var options = testOptions()
        options.batchSize = 3
        let (w, store, follower) = try await followingAlice(db, "read-ahead", options: options)
        for so in Int64(20)..<30 { try await bobToAlice(w, so) }
        let stored = try store.sourcePositions()
        let (first, progress) = try await follower.read(from: stored)
        #expect(progress.caughtUp == false)
        let taken = first.filter { $0.stream.name == "push_actions" }.flatMap { $0.rows.map(\.position) }
        #expect(taken == [20, 21, 22])
        // Nothing was written: the same positions again, while the batch after 22 is read ahead.
        let (again, _) = try await follower.read(from: stored)
        #expect(again.filter { $0.stream.name == "push_actions" }.flatMap { $0.rows.map(\.position) } == taken)
        _ = try await follower.catchUp()
        #expect(try notifications(store).map(\.streamOrdering) == Array(20..<30))
        store.close()
    }

    /// A new follower on the same store (a restart) goes on where the last one stopped: no gap,
    /// nothing twice.
    static func restart(_ db: some SynapseTestDatabase) async throws {
        let w = try await db.writer()
        let dir = tempDir("restart") + "/data"
        var store = try Store(dataDir: dir)
        try await w.pusher(id: 1, user: "@alice:example.org")
        try await w.pusher(id: 2, user: "@bob:example.org")
        var options = testOptions()
        options.batchSize = 3  // several transactions per catch-up: a restart lands between them
        var follower = SynapseFollower(store: store, source: try await db.source(), options: options)
        _ = try await follower.catchUp()
        for so in Int64(30)..<40 { try await w.message(so, room: "!r:example.org", sender: "@carol:example.org", notifying: ["@alice:example.org", "@bob:example.org"]) }
        _ = try await follower.poll()  // part of it
        store.close()
        store = try Store(dataDir: dir)
        follower = SynapseFollower(store: store, source: try await db.source(), options: options)
        for so in Int64(40)..<45 { try await w.message(so, room: "!r:example.org", sender: "@carol:example.org", notifying: ["@alice:example.org", "@bob:example.org"]) }
        _ = try await follower.catchUp()
        let ns = try notifications(store)
        for user in ["@alice:example.org", "@bob:example.org"] {
            #expect(ns.filter { $0.userID == user }.map(\.streamOrdering) == Array(30..<45))
        }
        store.close()
    }

    /// N followers, shard k/N each, with their own stores: every notification lands in exactly
    /// one, the one Synapse's hash names.
    static func shards(_ db: some SynapseTestDatabase, count: Int) async throws {
        let w = try await db.writer()
        let users = (0..<12).map { "@user\($0):localhost" }
        for (i, u) in users.enumerated() { try await w.pusher(id: Int64(100 + i), user: u) }
        for so in Int64(50)..<60 { try await w.message(so, room: "!r:localhost", sender: "@sender:localhost", notifying: users) }
        var seen: [String: Int] = [:]
        var stores: [Store] = []
        var followers: [SynapseFollower] = []
        for k in 0..<count {
            let store = try store("shard\(k)")
            stores.append(store)
            followers.append(SynapseFollower(store: store, source: try await db.source(), options: testOptions(shard: Shard(index: k, count: count))))
            _ = try await followers[k].catchUp()  // the first start: 50..59 imported, not pushed
        }
        for so in Int64(60)..<70 { try await w.message(so, room: "!r:localhost", sender: "@sender:localhost", notifying: users) }
        var pending = 0
        for (k, store) in stores.enumerated() {
            _ = try await followers[k].catchUp()
            for n in try notifications(store) {
                #expect(Shard.instance(of: n.userID, count: count) == k)
                seen["\(n.userID) \(n.eventID)", default: 0] += 1
            }
            for e in try entries(store) {
                if case .pusherSet(let c) = e {
                    #expect(Shard.instance(of: c.id.userID, count: count) == k)
                    pending += try #require(try store.read { view in try view.pusherState(c.id) }).pending
                }
            }
        }
        // Each live message is pushed once, by the one shard that owns its user.
        #expect(pending == users.count * 10)
        #expect(seen.count == users.count * 20)
        #expect(seen.values.allSatisfy { $0 == 1 })
        for s in stores { s.close() }
    }

    /// A pusher deleted in Synapse is removed from Pushlog; one Pushlog removed itself (a
    /// rejected pushkey) stays removed until Synapse gives that pusher a new id.
    static func deletedAndRejected(_ db: some SynapseTestDatabase) async throws {
        let w = try await db.writer()
        let store = try store("deleted")
        let follower = SynapseFollower(store: store, source: try await db.source(), options: testOptions())
        try await w.pusher(id: 1, user: "@alice:example.org")
        try await w.pusher(id: 2, user: "@bob:example.org")
        _ = try await follower.catchUp()
        let alice = PusherID(userID: "@alice:example.org", appID: "com.example.app", pushkey: "key")
        let bob = PusherID(userID: "@bob:example.org", appID: "com.example.app", pushkey: "key")
        try await w.deletePusher(streamID: 3, user: "@alice:example.org")
        _ = try await follower.catchUp()
        #expect(try store.read { view in try view.pusherState(alice) } == nil)
        #expect(try store.read { view in try view.pusherState(bob) } != nil)
        // The gateway rejected bob's pushkey: the pusher pool removes it, as it does today.
        try store.append([.pusherRemoved(bob)])
        try await w.message(70, room: "!r:example.org", sender: "@carol:example.org", notifying: ["@bob:example.org"])
        _ = try await follower.catchUp()
        _ = try await follower.catchUp()
        #expect(try store.read { view in try view.pusherState(bob) } == nil)
        // Bob's app registers again: Synapse upserts the row under a new id.
        try await w.pusher(id: 4, user: "@bob:example.org")
        _ = try await follower.catchUp()
        #expect(try store.read { view in try view.pusherState(bob) }?.config.enabled == true)
        // Disabled in Synapse: disabled here.
        try await w.pusher(id: 5, user: "@bob:example.org", enabled: false)
        _ = try await follower.catchUp()
        #expect(try store.read { view in try view.pusherState(bob) }?.config.enabled == false)
        store.close()
    }

    /// The first start imports the last `backfill` of push actions and the current receipts
    /// before the pushers, so no history is pushed and badges are right from the first push.
    static func firstStart(_ db: some SynapseTestDatabase) async throws {
        let w = try await db.writer()
        let store = try store("backfill")
        try await w.pusher(id: 1, user: "@alice:example.org")
        let now = SystemClock.nowMS()
        try await w.message(80, room: "!old:example.org", sender: "@bob:example.org", notifying: ["@alice:example.org"], ts: now - 9 * 86_400_000)
        try await w.message(81, room: "!r:example.org", sender: "@bob:example.org", notifying: ["@alice:example.org"], ts: now - 86_400_000)
        try await w.message(82, room: "!r:example.org", sender: "@bob:example.org", notifying: ["@alice:example.org"], ts: now - 60_000)
        try await w.receipt(9, user: "@alice:example.org", room: "!r:example.org", event: "$e81", so: 81)
        let follower = SynapseFollower(store: store, source: try await db.source(), options: testOptions())
        _ = try await follower.catchUp()
        #expect(try notifications(store).map(\.streamOrdering) == [81, 82])
        let kinds = try entries(store).map(\.typeName)
        #expect(kinds == ["notification", "notification", "receipt", "pusher_set"])
        let alice = PusherID(userID: "@alice:example.org", appID: "com.example.app", pushkey: "key")
        let state = try #require(try store.read { view in try view.pusherState(alice) })
        #expect(state.pending == 0 && state.state.cursor == 4)
        try await w.message(83, room: "!r:example.org", sender: "@bob:example.org", notifying: ["@alice:example.org"])
        _ = try await follower.catchUp()
        #expect(try #require(try store.read { view in try view.pusherState(alice) }).pending == 1)
        store.close()
    }

    /// A first start read in batches smaller than one event's users: every notification lands
    /// once, in order, and the log is the same as when read in one batch (the rows of one event
    /// share its decoding; a user's own actions, thread and highlight stay theirs).
    static func firstStartInBatches(_ db: some SynapseTestDatabase) async throws {
        let w = try await db.writer()
        let users = ["@alice:example.org", "@bob:example.org", "@carol:example.org", "@dan:example.org"]
        for (i, u) in users.enumerated() { try await w.pusher(id: Int64(i + 1), user: u) }
        try await w.room("!r:example.org", name: "Lunch", alias: nil, members: 5)
        try await w.member(99, room: "!r:example.org", user: "@bob:example.org", displayName: "Bob")
        try await w.message(100, room: "!r:example.org", sender: "@bob:example.org", notifying: [users[0]])
        try await w.message(101, room: "!r:example.org", sender: "@bob:example.org", notifying: users)  // more than a batch
        try await w.message(102, room: "!other:example.org", sender: "@erin:example.org", notifying: [users[1], users[2]])
        try await w.event(103, id: "$e103", room: "!r:example.org", sender: "@bob:example.org")
        try await w.pushAction(103, event: "$e103", room: "!r:example.org", user: users[0])
        try await w.pushAction(103, event: "$e103", room: "!r:example.org", user: users[1],
                               actions: #"["notify",{"set_tweak":"highlight"}]"#, highlight: true)
        try await w.pushAction(103, event: "$e103", room: "!r:example.org", user: users[2], thread: "$root")
        try await w.pushAction(103, event: "$e103", room: "!r:example.org", user: "@erin:example.org")  // no pusher
        // A thread id as long as the one before it ("$root"): told apart by its bytes, not its length.
        try await w.pushAction(103, event: "$e103", room: "!r:example.org", user: users[3], thread: "$r000")
        for so in Int64(104)..<110 { try await w.message(so, room: "!r:example.org", sender: "@bob:example.org", notifying: Array(users[0..<Int(so % 4) + 1])) }

        var small = testOptions()
        small.batchSize = 3
        let batched = try store("batched")
        _ = try await SynapseFollower(store: batched, source: try await db.source(), options: small).catchUp()
        let whole = try store("whole")
        _ = try await SynapseFollower(store: whole, source: try await db.source(), options: testOptions()).catchUp()
        #expect(try entries(batched) == entries(whole))
        let ns = try notifications(batched)
        let expected = 24  // 100: 1, 101: 4, 102: 2, 103: 4 (not erin), 104 to 109: 1, 2, 3, 4, 1, 2
        #expect(ns.count == expected)
        for u in users {
            let mine = ns.filter { $0.userID == u }.map(\.streamOrdering)
            #expect(mine == mine.sorted() && Set(mine).count == mine.count)
        }
        let e103 = ns.filter { $0.streamOrdering == 103 }
        #expect(e103.map(\.userID) == [users[0], users[1], users[2], users[3]])
        #expect(e103.map(\.highlights) == [false, true, false, false])
        #expect(e103.map(\.threadID) == ["main", "main", "$root", "$r000"])
        #expect(e103.allSatisfy { $0.context?["sender_display_name"] == .string("Bob") && $0.event == e103[0].event })
        batched.close()
        whole.close()
    }
}
