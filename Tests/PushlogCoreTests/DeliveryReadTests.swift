import Foundation
import PushlogCore
import Testing

/// What the delivery engine reads in place: positions with their read flags, and badges kept
/// while the unread counters say nothing changed.
@Suite("Reads for the delivery engine")
struct DeliveryReadTests {
    let alice = "@alice:example.org"

    @Test("notificationPositions agrees with notifications(): rooms, threads, unthreaded and threaded receipts")
    func positionsMatchTheFullQuery() throws {
        try withStore(mapSize: 16 << 20) { store in
            var rng = SystemRandomNumberGenerator()
            var entries: [LogEntry] = []
            let rooms = (0..<7).map { "!room\($0):example.org" }
            let threads = ["main", "$t1", "$t2"]
            for so in Int64(1)...400 {
                let room = rooms.randomElement(using: &rng)!
                if Int.random(in: 0..<5, using: &rng) == 0 {
                    let thread: String? = Bool.random(using: &rng) ? nil : threads.randomElement(using: &rng)
                    entries.append(Make.receipt(alice, room: room, so: so, thread: thread))
                } else {
                    entries.append(Make.notify(alice, room: room, so: so, thread: threads.randomElement(using: &rng)!))
                }
                if Int.random(in: 0..<3, using: &rng) == 0 { entries.append(Make.notify("@bob:example.org", room: room, so: so)) }
            }
            try store.append(entries)
            let all = try store.read { view in try view.notifications(user: alice, after: 0) }
            #expect(all.contains { $0.isRead } && all.contains { !$0.isRead })
            for (cursor, limit) in [(UInt64(0), 1_000), (0, 10), (all[all.count / 2].pos, 50), (all.last!.pos, 10)] {
                let expected = try store.read { view in try view.notifications(user: alice, after: cursor, limit: limit) }.map { "\($0.pos):\($0.isRead)" }
                let raw = try store.read { try $0.notificationPositions(user: alice, after: cursor, limit: limit) }
                #expect(raw.map { "\($0.pos):\($0.isRead)" } == expected, "after \(cursor), limit \(limit)")
            }
        }
    }

    @Test("a cached badge holds while the user's unread rows are unchanged, and is counted again after a notification or a receipt")
    func badgeCache() throws {
        try withStore { store in
            try store.append([Make.notify(alice, room: "!a:x", so: 1), Make.notify(alice, room: "!b:x", so: 2)])
            var cache = BadgeCache()
            func badge() throws -> Int {
                let before = store.unreadGenerations.global
                return try store.read { try $0.badge(user: alice, rule: .rooms, cache: &cache, globalBeforeRead: before) }
            }
            #expect(try badge() == 2)
            let generation = store.unreadGenerations.generation(user: alice)
            #expect(generation % 2 == 0)
            // Someone else's notification leaves alice's counter alone (unless they share a slot).
            try store.append([Make.notify("@bob:example.org", room: "!a:x", so: 3)])
            #expect(try badge() == 2)
            try store.append([Make.notify(alice, room: "!c:x", so: 4)])
            #expect(store.unreadGenerations.generation(user: alice) == generation + 2)
            #expect(try badge() == 3)
            try store.append([Make.receipt(alice, room: "!a:x", so: 10)])
            #expect(try badge() == 2)
            #expect(try badge() == 2)
            // A reader whose "before" value is stale (a commit landed since) counts but caches nothing.
            var fresh = BadgeCache()
            let stale = store.unreadGenerations.global
            try store.append([Make.notify(alice, room: "!d:x", so: 11)])
            #expect(try store.read { try $0.badge(user: alice, rule: .rooms, cache: &fresh, globalBeforeRead: stale) } == 3)
            try store.append([Make.receipt(alice, room: "!d:x", so: 12)])
            #expect(try store.read { try $0.badge(user: alice, rule: .rooms, cache: &fresh, globalBeforeRead: store.unreadGenerations.global) } == 2)
            // The rule is part of what is cached.
            let before = store.unreadGenerations.global
            #expect(try store.read { try $0.badge(user: alice, rule: .notifications, cache: &cache, globalBeforeRead: before) } == 2)
        }
    }

    @Test("lazy writes wait for company up to the lazy delay; an eager write takes them along at once")
    func lazyWrites() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-lazy-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try Store(dataDir: dir, options: StoreOptions(durability: .nometasync, lazyCommitDelay: .seconds(1)))
        defer { store.close() }
        let clock = ContinuousClock()

        // Alone, a lazy write commits after about the delay, not at once.
        let start = clock.now
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            store.writeDeferred(lazy: true, { _ in }, onCommit: { _ in c.resume() })
        }
        #expect(clock.now - start >= .milliseconds(900))

        // An eager write queued behind it carries it: the group commit that answers the eager
        // write has committed the lazy one first (completions go in queue order).
        let t0 = clock.now
        let lazy = Committed()
        store.writeDeferred(lazy: true, { _ in }, onCommit: { r in if case .success = r { lazy.set() } })
        try await store.appendAsync([Make.notify(alice, so: 1)])
        #expect(lazy.value)
        #expect(clock.now - t0 < .milliseconds(800))
    }

    @Test("closing the store commits lazy writes still waiting")
    func closeDrainsLazyWrites() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-lazy-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try Store(dataDir: dir, options: StoreOptions(durability: .nometasync, lazyCommitDelay: .seconds(30)))
        let committed = Committed()
        store.writeDeferred(lazy: true, { _ in }, onCommit: { r in if case .success = r { committed.set() } })
        store.close()
        #expect(committed.value)
    }

    final class Committed: @unchecked Sendable {
        private let lock = NSLock()
        private var done = false
        func set() { lock.withLock { done = true } }
        var value: Bool { lock.withLock { done } }
    }
}
