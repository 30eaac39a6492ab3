import Foundation
import PushlogCore
import Testing
import TestSupport

@Suite("The boot check (merge join of consumers and heads)")
struct PendingCheckTests {
    /// Users whose ids are prefixes of each other, or differ only after a shared prefix, stress
    /// the key order the merge join relies on.
    static let trickyUsers = ["@a:x", "@a:x.y", "@a:xy", "@a:x0", "@a", "@aa:x", "@b:x", "@é:x", "@z:x", "@Z:x", "@a b:x"]

    struct World {
        var users: [String]
        var pushers: [PusherID]
    }

    /// Random data from a seed: users with 0–3 pushers, some disabled, random notifications,
    /// random cursors. Returns the users and pushers created.
    func build(_ store: Store, seed: UInt64, userCount: Int) throws -> World {
        var rng = SplitMix64(seed: seed)
        let users = Self.trickyUsers + (0..<(userCount - Self.trickyUsers.count)).map { "@u\($0 * 7919 % 1000):s\(Int.random(in: 0..<3, using: &rng)).org" }
        var setEntries: [LogEntry] = []
        var ids: [PusherID] = []
        for user in Set(users).sorted() {
            for p in 0..<Int.random(in: 0...3, using: &rng) {
                let kind: PusherKind = p == 2 ? .email : .http
                let key = kind == .email ? "p\(p)-\(ids.count)@example.org" : "key-\(ids.count)"
                var c = Make.pusher(user, app: kind == .email ? "m.email" : "app\(p)", key: key, kind: kind, append: true)
                c.enabled = Int.random(in: 0..<5, using: &rng) != 0
                setEntries.append(.pusherSet(c))
                ids.append(c.id)
            }
        }
        // Interleave pusher sets with notifications, in a few batches.
        var entries: [LogEntry] = setEntries
        for i in 0..<1_500 {
            let user = users.randomElement(using: &rng)!
            let notify = Int.random(in: 0..<10, using: &rng) != 0
            entries.append(Make.notify(user, room: "!r\(i % 5)", so: Int64(i), actions: notify ? [.string("notify")] : []))
        }
        entries.shuffle(using: &rng)
        for chunk in stride(from: 0, to: entries.count, by: 250) {
            try store.append(Array(entries[chunk..<min(chunk + 250, entries.count)]))
        }
        // Random cursors: some caught up, some behind, some ahead of their user's head.
        let head = try store.read { view in try view.head() }
        for id in ids {
            let userHead = try store.read { view in try view.head(user: id.userID) }
            let cursor: UInt64
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: cursor = userHead
            case 1: cursor = userHead == 0 ? 0 : userHead - 1
            case 2: cursor = UInt64.random(in: 0...head, using: &rng)
            default: cursor = head
            }
            try store.setCursor(id, cursor)
        }
        return World(users: users, pushers: ids)
    }

    /// The naive answer: every enabled pusher whose user's head is past its cursor.
    func naivePending(_ store: Store) throws -> [PusherID: (cursor: UInt64, head: UInt64)] {
        var out: [PusherID: (UInt64, UInt64)] = [:]
        var states: [PusherState] = []
        try store.read { view in try view.forEachPusherState { states.append($0); return true } }
        for s in states where s.state.enabled {
            let head = try store.read { view in try view.head(user: s.config.id.userID) }
            if head > s.state.cursor { out[s.config.id] = (s.state.cursor, head) }
        }
        return out
    }

    @Test("forEachPending finds exactly the pushers a naive per-pusher check finds", arguments: [UInt64(1), 2, 3, 42])
    func matchesNaive(seed: UInt64) throws {
        try withStore { store in
            let world = try build(store, seed: seed, userCount: 300)
            let expected = try naivePending(store)
            // The data must exercise both outcomes, or the comparison proves little.
            try #require(expected.count > 10)
            try #require(expected.count < world.pushers.count - 10)

            var found: [PusherID: (cursor: UInt64, head: UInt64)] = [:]
            var order: [[UInt8]] = []
            let examined = try store.read { view in try view.forEachPending { p in
                guard let config = try store.read({ view in try view.pusher(key: p.key) }) else {
                    Issue.record("pending key without a pusher: \(p.userID)")
                    return true
                }
                #expect(config.id.userID == p.userID)
                #expect(found[config.id] == nil, "yielded twice: \(config.id)")
                found[config.id] = (p.cursor, p.head)
                order.append(p.key)
                return true
            } }
            #expect(examined == world.pushers.count)
            #expect(Set(found.keys) == Set(expected.keys))
            for (id, v) in expected {
                #expect(found[id]?.cursor == v.cursor, "\(id)")
                #expect(found[id]?.head == v.head, "\(id)")
            }
            // Key order, as LMDB keeps it.
            #expect(order == order.sorted { $0.lexicographicallyPrecedes($1) })

            // The paging sequence yields the same pushers in the same order, 7 at a time.
            let paged = Array(store.pendingPushers(pageSize: 7)).map(\.key)
            #expect(paged == order)
            // Pages that end exactly on the last pending pusher still terminate.
            #expect(Array(store.pendingPushers(pageSize: order.count)).map(\.key) == order)
            #expect(Array(store.pendingPushers(pageSize: 1)).count == order.count)

            // stats agrees on the count, and so does the census of /metrics, lags included.
            #expect(try store.read { view in try view.stats() }.pendingPushers == expected.count)
            let census = try store.read { view in try view.pusherCensus() }
            #expect(census.lags.sorted() == expected.values.map { $0.head - $0.cursor }.sorted())
            var states: [PusherState] = []
            try store.read { view in try view.forEachPusherState { states.append($0); return true } }
            #expect(census.byKind[.http] == states.filter { $0.config.kind == .http }.count)
            #expect(census.byKind[.email] == states.filter { $0.config.kind == .email }.count)
            #expect((census.byKind[.http] ?? 0) + (census.byKind[.email] ?? 0) == world.pushers.count, "disabled pushers counted too")
        }
    }

    @Test("forEachPending resumes after a key and honours its limit")
    func afterAndLimit() throws {
        try withStore { store in
            _ = try build(store, seed: 9, userCount: 100)
            var all: [PendingPusher] = []
            try store.read { view in try view.forEachPending { all.append($0); return true } }
            try #require(all.count > 6)
            var page: [PendingPusher] = []
            try store.read { view in try view.forEachPending(after: all[2].key, limit: 3) { page.append($0); return true } }
            #expect(page == Array(all[3..<6]))
            var stopped: [PendingPusher] = []
            try store.read { view in try view.forEachPending { stopped.append($0); return stopped.count < 2 } }
            #expect(stopped == Array(all[0..<2]))
            var tail: [PendingPusher] = []
            try store.read { view in try view.forEachPending(after: all.last!.key) { tail.append($0); return true } }
            #expect(tail.isEmpty)
        }
    }

    @Test("the boot check follows live changes: a new notification, a cursor advance, a disable")
    func followsChanges() throws {
        try withStore { store in
            let users = Self.trickyUsers
            try store.append(users.map { Make.set($0) })
            func pendingUsers() throws -> [String] {
                var out: [String] = []
                try store.read { view in try view.forEachPending { out.append($0.userID); return true } }
                return out
            }
            #expect(try pendingUsers().isEmpty)
            try store.append([Make.notify("@a:x", so: 1), Make.notify("@a:x.y", so: 2), Make.notify("@a b:x", so: 3)])
            #expect(Set(try pendingUsers()) == ["@a:x", "@a:x.y", "@a b:x"])
            try store.setCursor(Make.pusher("@a:x").id, try store.read { view in try view.head() })
            #expect(Set(try pendingUsers()) == ["@a:x.y", "@a b:x"])
            try store.append([Make.set("@a:x.y", enabled: false)])
            #expect(try pendingUsers() == ["@a b:x"])
        }
    }
}
