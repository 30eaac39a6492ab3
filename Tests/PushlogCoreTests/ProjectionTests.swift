import Foundation
import PushlogCore
import Testing

@Suite("Projections: notifications, receipts and badges")
struct ProjectionTests {
    let alice = "@alice:example.org"

    @Test("the badge counts rooms with unread notifications by default, and notifications with BadgeRule.notifications")
    func badgeRules() throws {
        try withStore { store in
            try store.append([
                Make.notify(alice, room: "!a", so: 1), Make.notify(alice, room: "!a", so: 2),
                Make.notify(alice, room: "!b", so: 3), Make.notify(alice, room: "!c", so: 4, thread: "t"),
                Make.notify("@bob:x", room: "!a", so: 5),
            ])
            #expect(try store.read { view in try view.badge(user: alice) } == 3)
            #expect(try store.read { view in try view.badge(user: alice, rule: .rooms) } == 3)
            #expect(try store.read { view in try view.badge(user: alice, rule: .notifications) } == 4)
            #expect(try store.read { view in try view.badge(user: "@bob:x", rule: .notifications) } == 1)
            #expect(try store.read { view in try view.badge(user: "@nobody:x") } == 0)
            // Reading room !a entirely drops one room and two notifications.
            try store.append([Make.receipt(alice, room: "!a", so: 2)])
            #expect(try store.read { view in try view.badge(user: alice) } == 2)
            #expect(try store.read { view in try view.badge(user: alice, rule: .notifications) } == 2)
            #expect(try store.read { view in try view.badge(user: "@bob:x") } == 1)
        }
    }

    @Test("a receipt at or above a notification's stream_ordering makes it read; below leaves it unread")
    func receiptThreshold() throws {
        try withStore { store in
            try store.append([Make.notify(alice, so: 10), Make.notify(alice, so: 20)])
            try store.append([Make.receipt(alice, so: 9)])
            #expect(try store.read { view in try view.notifications(user: alice, after: 0) }.map(\.isRead) == [false, false])
            try store.append([Make.receipt(alice, so: 10)])
            #expect(try store.read { view in try view.notifications(user: alice, after: 0) }.map(\.isRead) == [true, false])
            #expect(try store.read { view in try view.badge(user: alice, rule: .notifications) } == 1)
            try store.append([Make.receipt(alice, so: 25, type: .readPrivate)])
            #expect(try store.read { view in try view.notifications(user: alice, after: 0) }.map(\.isRead) == [true, true])
            #expect(try store.read { view in try view.badge(user: alice) } == 0)
        }
    }

    @Test("a notification appended below an existing receipt is read from the start")
    func notificationBelowReceipt() throws {
        try withStore { store in
            try store.append([Make.receipt(alice, so: 100)])
            try store.append([Make.notify(alice, so: 50), Make.notify(alice, so: 100), Make.notify(alice, so: 101)])
            #expect(try store.read { view in try view.notifications(user: alice, after: 0) }.map(\.isRead) == [true, true, false])
            #expect(try store.read { view in try view.badge(user: alice, rule: .notifications) } == 1)
        }
    }

    @Test("an unthreaded receipt covers every thread of its room, and only its room")
    func unthreadedCoversAllThreads() throws {
        try withStore { store in
            try store.append([
                Make.notify(alice, room: "!r", so: 5, thread: "main"), Make.notify(alice, room: "!r", so: 6, thread: "t1"),
                Make.notify(alice, room: "!r", so: 7, thread: "t2"), Make.notify(alice, room: "!other", so: 3),
            ])
            #expect(try store.read { view in try view.badge(user: alice, rule: .notifications) } == 4)
            try store.append([Make.receipt(alice, room: "!r", so: 7)])
            let ns = try store.read { view in try view.notifications(user: alice, after: 0) }
            #expect(ns.filter { $0.roomID == "!r" }.allSatisfy { $0.isRead })
            #expect(ns.first { $0.roomID == "!other" }?.isRead == false)
            #expect(try store.read { view in try view.badge(user: alice) } == 1)
            #expect(try store.read { view in try view.badge(user: alice, rule: .notifications) } == 1)
        }
    }

    @Test("a threaded receipt covers only its own thread")
    func threadedCoversOneThread() throws {
        try withStore { store in
            try store.append([
                Make.notify(alice, room: "!r", so: 5, thread: "main"), Make.notify(alice, room: "!r", so: 6, thread: "t1"),
                Make.notify(alice, room: "!r", so: 7, thread: "t2"),
            ])
            try store.append([Make.receipt(alice, room: "!r", so: 100, thread: "t1")])
            let read = Dictionary(uniqueKeysWithValues: try store.read { view in try view.notifications(user: alice, after: 0) }.map { ($0.threadID, $0.isRead) })
            #expect(read == ["main": false, "t1": true, "t2": false])
            #expect(try store.read { view in try view.badge(user: alice) } == 1)
            #expect(try store.read { view in try view.badge(user: alice, rule: .notifications) } == 2)
            // A "main" thread receipt is a thread receipt too: it does not cover t2.
            try store.append([Make.receipt(alice, room: "!r", so: 100, thread: "main")])
            #expect(try store.read { view in try view.badge(user: alice, rule: .notifications) } == 1)
            #expect(try store.read { view in try view.notifications(user: alice, after: 0) }.first { $0.threadID == "t2" }?.isRead == false)
            // New notifications in a read thread above its receipt are unread again.
            try store.append([Make.notify(alice, room: "!r", so: 101, thread: "t1")])
            #expect(try store.read { view in try view.badge(user: alice, rule: .notifications) } == 2)
        }
    }

    @Test("an older or equal receipt changes nothing and its user is not reported")
    func olderReceiptChangesNothing() throws {
        try withStore { store in
            try store.append([Make.notify(alice, so: 5), Make.notify(alice, so: 15)])
            let first = try store.append([Make.receipt(alice, so: 10)])
            #expect(first.receiptUsers == [alice])
            let older = try store.append([Make.receipt(alice, so: 4)])
            #expect(!older.receiptUsers.contains(alice))
            let equal = try store.append([Make.receipt(alice, so: 10, type: .readPrivate)])
            #expect(equal.receiptUsers.isEmpty)
            #expect(try store.read { view in try view.notifications(user: alice, after: 0) }.map(\.isRead) == [true, false])
            // A notification at 7 is still covered by the held receipt (10), not by the older one (4).
            try store.append([Make.notify(alice, so: 7)])
            #expect(try store.read { view in try view.notifications(user: alice, after: 0) }.map(\.isRead) == [true, false, true])
            // The same applies per thread: an older threaded receipt is ignored too.
            #expect(try store.append([Make.receipt(alice, so: 20, thread: "t")]).receiptUsers == [alice])
            #expect(try store.append([Make.receipt(alice, so: 19, thread: "t")]).receiptUsers.isEmpty)
            // A receipt in a batch with a newer one for the same key: only the first moves.
            let batch = try store.append([Make.receipt(alice, room: "!x", so: 3), Make.receipt(alice, room: "!x", so: 2)])
            #expect(batch.receiptUsers == [alice])
        }
    }

    @Test("notifications and receipts of one room in one append count as they do appended one by one")
    func roomsWithinOneAppend() throws {
        let carol = "@carol:example.org"
        // Carol: 40 rooms in one append (past the 16 a user's rooms are walked for), twice each,
        // a receipt in room 3 between.
        let carols = (0..<80).map { i in Make.notify(carol, room: "!c\(i % 40)", so: Int64(100 + i)) }
        let entries = [
            Make.notify(alice, room: "!r", so: 10), Make.notify(alice, room: "!r", so: 20, thread: "t1"),
            Make.notify(alice, room: "!s", so: 21),
            Make.receipt(alice, room: "!r", so: 15),  // reads 10
            Make.notify(alice, room: "!r", so: 30), Make.notify(alice, room: "!r", so: 35, thread: "t1"),
            Make.receipt(alice, room: "!r", so: 36, thread: "t1"),  // reads 20 and 35
            Make.notify(alice, room: "!r", so: 37, thread: "t1"), Make.notify(alice, room: "!s", so: 38),
        ] + carols[..<50] + [Make.receipt(carol, room: "!c3", so: 143)] + carols[50...]
        func badges(_ store: Store) throws -> [Int] {
            try store.read { view in
                [try view.badge(user: alice, rule: .notifications), try view.badge(user: alice, rule: .rooms),
                 try view.badge(user: carol, rule: .notifications), try view.badge(user: carol, rule: .rooms)]
            }
        }
        let (together, oneByOne) = try withStore { together in
            try withStore { oneByOne in
                for store in [together, oneByOne] { try store.append([Make.notify(alice, room: "!s", so: 5)]) }
                try together.append(entries)
                for e in entries { try oneByOne.append([e]) }
                var seen: [[[Int]]] = [[], []]
                for (i, store) in [together, oneByOne].enumerated() {
                    seen[i].append(try badges(store))
                    // Later receipts recount from each room's oldest unread notification.
                    try store.append([Make.receipt(alice, room: "!s", so: 21)])
                    seen[i].append(try badges(store))
                    try store.append([Make.receipt(alice, room: "!r", so: 31)])
                    seen[i].append(try badges(store))
                }
                return (seen[0], seen[1])
            }
        }
        // !r: 30 and 37 unread, !s: 5, 21 and 38; then !s: 38; then !r: 37. Carol: 80 less the
        // two of !c3 (103 and 143, both at or below its receipt), in 39 rooms.
        #expect(together == [[5, 2, 78, 39], [3, 2, 78, 39], [2, 2, 78, 39]])
        #expect(together == oneByOne)
    }

    @Test("a notification whose actions lack notify is logged but not indexed: no head move, no badge")
    func nonNotifyNotIndexed() throws {
        try withStore { store in
            try store.append([Make.notify(alice, so: 1)])
            let r = try store.append([Make.notify(alice, so: 2, actions: [.string("dont_notify")]),
                                      Make.notify(alice, so: 3, actions: [])])
            #expect(r.notifiedUsers.isEmpty)
            #expect(try store.read { view in try view.head() } == 3)
            #expect(try store.read { view in try view.head(user: alice) } == 1)
            #expect(try store.read { view in try view.notifications(user: alice, after: 0) }.map(\.pos) == [1])
            #expect(try store.read { view in try view.badge(user: alice, rule: .notifications) } == 1)
            if case .notification(let n)? = try store.read({ view in try view.entry(at: 2) })?.entry {
                #expect(!n.notifies)
            } else {
                Issue.record("entry 2 should be the dont_notify notification")
            }
        }
    }

    @Test("a user's head is the pos of their newest pushable notification")
    func userHeads() throws {
        try withStore { store in
            #expect(try store.read { view in try view.head(user: alice) } == 0)
            try store.append([Make.notify(alice, so: 1), Make.notify("@bob:x", so: 2), Make.notify(alice, so: 3),
                              Make.receipt(alice, so: 3)])
            #expect(try store.read { view in try view.head(user: alice) } == 3)
            #expect(try store.read { view in try view.head(user: "@bob:x") } == 2)
            // A receipt does not move the head; reading does not take notifications away.
            try store.append([Make.receipt(alice, so: 99), Make.set(alice)])
            #expect(try store.read { view in try view.head(user: alice) } == 3)
        }
    }

    @Test("notifications(user:after:) lists the user's notifications past a cursor, in order, with read flags and highlight")
    func notificationsAfter() throws {
        try withStore { store in
            let highlight: [JSON] = [.string("notify"), .object(["set_tweak": .string("highlight")])]
            try store.append([
                Make.notify(alice, room: "!a", so: 1),                          // 1
                Make.notify("@bob:x", room: "!a", so: 2),                       // 2
                Make.notify(alice, room: "!b", so: 3, thread: "t", actions: highlight),  // 3
                Make.receipt(alice, room: "!a", so: 1),                         // 4
                Make.notify(alice, room: "!a", so: 5),                          // 5
                Make.notify(alice, room: "!a", so: 6, actions: [.string("dont_notify")]),  // 6
            ])
            let all = try store.read { view in try view.notifications(user: alice, after: 0) }
            #expect(all.map(\.pos) == [1, 3, 5])
            #expect(all.map(\.isRead) == [true, false, false])
            #expect(all.map(\.roomID) == ["!a", "!b", "!a"])
            #expect(all.map(\.streamOrdering) == [1, 3, 5])
            #expect(all.map(\.threadID) == ["main", "t", "main"])
            #expect(all.map(\.highlight) == [false, true, false])
            #expect(try store.read { view in try view.notifications(user: alice, after: 1) }.map(\.pos) == [3, 5])
            #expect(try store.read { view in try view.notifications(user: alice, after: 3) }.map(\.pos) == [5])
            #expect(try store.read { view in try view.notifications(user: alice, after: 5) }.isEmpty)
            #expect(try store.read { view in try view.notifications(user: alice, after: .max) }.isEmpty)
            #expect(try store.read { view in try view.notifications(user: alice, after: 0, limit: 2) }.map(\.pos) == [1, 3])
            #expect(try store.read { view in try view.notifications(user: "@bob:x", after: 0) }.map(\.pos) == [2])
            // A user whose id is a prefix of another's sees only their own.
            try store.append([Make.notify("@alice:example.org.evil", so: 7)])
            #expect(try store.read { view in try view.notifications(user: alice, after: 0) }.map(\.pos) == [1, 3, 5])
        }
    }

    @Test("users whose ids share a prefix keep separate heads, badges and receipts")
    func prefixUsers() throws {
        try withStore { store in
            let a = "@a:x", ab = "@a:x.y"
            try store.append([Make.notify(a, room: "!r", so: 1), Make.notify(ab, room: "!r", so: 2), Make.notify(ab, room: "!s", so: 3)])
            try store.append([Make.receipt(a, room: "!r", so: 10)])
            #expect(try store.read { view in try view.badge(user: a) } == 0)
            #expect(try store.read { view in try view.badge(user: ab) } == 2)
            #expect(try store.read { view in try view.head(user: a) } == 1)
            #expect(try store.read { view in try view.head(user: ab) } == 3)
        }
    }
}
