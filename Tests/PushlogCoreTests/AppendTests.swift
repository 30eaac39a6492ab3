import Foundation
import LMDB
import PushlogCore
import Testing

@Suite("Appending to the log")
struct AppendTests {
    @Test("append assigns contiguous positions from 1 and returns the first and last")
    func contiguousPositions() throws {
        try withStore { store in
            #expect(try store.read { view in try view.head() } == 0)
            #expect(try store.read { view in try view.firstPos() } == 1)
            let a = try store.append([Make.notify("@a:x", so: 1)])
            #expect(a.firstPos == 1 && a.lastPos == 1)
            let b = try store.append([Make.notify("@a:x", so: 2), Make.receipt("@a:x", so: 2), Make.notify("@b:x", so: 3)])
            #expect(b.firstPos == 2 && b.lastPos == 4)
            let c = try store.append([Make.set("@a:x")])
            #expect(c.firstPos == 5 && c.lastPos == 5)
            #expect(try store.read { view in try view.head() } == 5)
            let entries = try store.allEntries()
            #expect(entries.map(\.pos) == [1, 2, 3, 4, 5])
            #expect(entries.map(\.entry.typeName) == ["notification", "notification", "receipt", "notification", "pusher_set"])
            #expect(try store.read { view in try view.entry(at: 3) }?.entry == Make.receipt("@a:x", so: 2))
            #expect(try store.read { view in try view.entry(at: 6) } == nil)
            #expect(try store.read { view in try view.entry(at: 0) } == nil)
        }
    }

    @Test("the result names users notified, users whose receipts moved, and pushers changed")
    func appendResultSets() throws {
        try withStore { store in
            let r = try store.append([
                Make.notify("@a:x", so: 1), Make.notify("@b:x", so: 2), Make.receipt("@c:x", so: 5),
                Make.set("@d:x"), .pusherRemoved(PusherID(userID: "@e:x", appID: "none", pushkey: "none")),
            ])
            #expect(r.notifiedUsers == ["@a:x", "@b:x"])
            #expect(r.receiptUsers == ["@c:x"])
            #expect(r.pusherChanges == [Make.pusher("@d:x").id])
        }
    }

    @Test("forEachEntry honours from and to and stops when the body says so")
    func forEachEntryRange() throws {
        try withStore { store in
            try store.append((1...10).map { Make.notify("@a:x", so: Int64($0)) })
            var seen: [UInt64] = []
            try store.read { view in try view.forEachEntry(from: 3, to: 6) { seen.append($0.pos); return true } }
            #expect(seen == [3, 4, 5, 6])
            seen = []
            try store.read { view in try view.forEachEntry(from: 8) { seen.append($0.pos); return seen.count < 2 } }
            #expect(seen == [8, 9])
        }
    }

    @Test("an append that fails part-way appends nothing and leaves every projection as it was")
    func allOrNothing() throws {
        try withStore { store in
            try store.append([Make.notify("@a:x", room: "!r1", so: 1)])
            // Damage the unread count of (@b:x, !bad) so applying a notification there throws.
            let unread = try store.env.database("unread")
            try store.env.write { txn in try txn.put(unread, Keys.room("@b:x", "!bad"), [1, 2, 3]) }
            #expect(throws: (any Error).self) {
                try store.append([
                    Make.notify("@a:x", room: "!r1", so: 2),
                    Make.set("@c:x"),
                    Make.receipt("@a:x", room: "!r1", so: 1),
                    Make.notify("@b:x", room: "!bad", so: 3),
                ])
            }
            #expect(try store.read { view in try view.head() } == 1)
            #expect(try store.allEntries().count == 1)
            #expect(try store.read { view in try view.head(user: "@a:x") } == 1)
            #expect(try store.read { view in try view.notifications(user: "@a:x", after: 0) }.map(\.pos) == [1])
            #expect(try store.read { view in try view.badge(user: "@a:x") } == 1)
            #expect(try store.read { view in try view.pusherState(Make.pusher("@c:x").id) } == nil)
            // The next good append takes the next pos: no gap, nothing reused wrongly.
            try store.env.write { txn in _ = try txn.delete(unread, Keys.room("@b:x", "!bad")) }
            let r = try store.append([Make.notify("@b:x", room: "!bad", so: 3)])
            #expect(r.firstPos == 2)
            #expect(try store.allEntries().map(\.pos) == [1, 2])
        }
    }

    @Test("append times never go backwards, and position(atOrAfter:) maps a time to the first pos at or after it")
    func timeToPosition() throws {
        try withStore { store in
            #expect(try store.read { view in try view.position(atOrAfter: 0) } == 1)  // empty log: head + 1
            try store.append([Make.notify("@a:x", so: 1), Make.notify("@a:x", so: 2)], now: 1_000)  // pos 1, 2
            try store.append([Make.notify("@a:x", so: 3)], now: 2_000)  // pos 3
            try store.append([Make.notify("@a:x", so: 4)], now: 1_500)  // pos 4: clock went back, ts stays 2000
            try store.append([Make.notify("@a:x", so: 5)], now: 3_000)  // pos 5
            #expect(try store.read { view in try view.entry(at: 1) }?.ts == 1_000)
            #expect(try store.read { view in try view.entry(at: 4) }?.ts == 2_000)
            #expect(try store.read { view in try view.position(atOrAfter: 0) } == 1)
            #expect(try store.read { view in try view.position(atOrAfter: 1_000) } == 1)
            #expect(try store.read { view in try view.position(atOrAfter: 1_001) } == 3)
            #expect(try store.read { view in try view.position(atOrAfter: 1_500) } == 3)
            #expect(try store.read { view in try view.position(atOrAfter: 2_000) } == 3)
            #expect(try store.read { view in try view.position(atOrAfter: 2_001) } == 5)
            #expect(try store.read { view in try view.position(atOrAfter: 3_000) } == 5)
            #expect(try store.read { view in try view.position(atOrAfter: 3_001) } == 6)
        }
    }

    @Test("appends survive closing and reopening the store, and the next append continues the positions")
    func reopen() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-core-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let store = try Store(dataDir: dir)
            try store.append([Make.set("@a:x"), Make.notify("@a:x", so: 1)])
            store.close()
        }
        let store = try Store(dataDir: dir)
        defer { store.close() }
        #expect(store.staleReadersCleared == 0)
        #expect(try store.read { view in try view.head() } == 2)
        #expect(try store.read { view in try view.head(user: "@a:x") } == 2)
        #expect(try store.append([Make.notify("@a:x", so: 2)]).firstPos == 3)
    }

    @Test("a store opened with a tiny map grows it and keeps appending")
    func tinyMapGrows() throws {
        try withStore(mapSize: 1 << 16) { store in
            for batch in 0..<10 {
                let r = try store.append((0..<100).map { Make.notify("@u\($0 % 7):x", so: Int64(batch * 100 + $0)) })
                #expect(r.firstPos == UInt64(batch * 100 + 1))
            }
            #expect(try store.read { view in try view.head() } == 1_000)
            #expect(try store.read { view in try view.stats() }.mapSizeBytes > 1 << 16)
            #expect(try store.allEntries().count == 1_000)
        }
    }
}
