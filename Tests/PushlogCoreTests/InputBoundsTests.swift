import Foundation
import LMDB
import PushlogCore
import Testing

/// Ids at exactly their limits: 255-byte Matrix ids and thread ids, a 64-character app id of
/// 4-byte characters, a 512-byte pushkey.
enum Longest {
    static func id(_ sigil: String, _ tag: String) -> String {
        let base = sigil + tag
        return base + String(repeating: "x", count: Limits.idBytes - base.utf8.count - ":e.org".utf8.count) + ":e.org"
    }
    static let user = id("@", "u")
    static let room = id("!", "r")
    static let event = id("$", "e")
    static let thread = id("$", "t")
    static let appID = String(repeating: "😀", count: Limits.appIDChars)
    static let pushkey = String(repeating: "k", count: Limits.pushkeyBytes)
}

@Suite("Input bounds and store keys")
struct InputBoundsTests {
    @Test("the keys of ordinary ids are byte for byte what earlier versions wrote")
    func ordinaryKeysUnchanged() {
        let prefix = Array("@a:x".utf8) + [0]
        #expect(Keys.receipt("@a:x", "!r:x", thread: nil) == prefix + Array("!r:x".utf8) + [0, 0])
        #expect(Keys.receipt("@a:x", "!r:x", thread: "main") == prefix + Array("!r:x".utf8) + [0, 1] + Array("main".utf8))
        #expect(Keys.room("@a:x", "!r:x") == prefix + Array("!r:x".utf8))
        #expect(Keys.notif("@a:x", 7) == prefix + [0, 0, 0, 0, 0, 0, 0, 7])
        // The longest receipt key that still fits keeps the plain layout.
        let user = String(repeating: "u", count: 200), room = String(repeating: "r", count: 200)
        let thread = String(repeating: "t", count: Keys.maxKeyBytes - 201 - 200 - 2)
        #expect(Keys.receipt(user, room, thread: thread).count == Keys.maxKeyBytes)
        #expect(Keys.receipt(user, room, thread: thread).suffix(thread.utf8.count) == ArraySlice(Array(thread.utf8)))
    }

    @Test("every key built from ids at their limits fits LMDB's 511 bytes and starts with the user's prefix")
    func longestKeysFit() throws {
        let prefix = Keys.userPrefix(Longest.user)
        let id = PusherID(userID: Longest.user, appID: Longest.appID, pushkey: Longest.pushkey)
        let keys: [(String, [UInt8])] = [
            ("heads", Keys.user(Longest.user)),
            ("notifs", Keys.notif(Longest.user, .max)),
            ("unread", Keys.room(Longest.user, Longest.room)),
            ("receipts unthreaded", Keys.receipt(Longest.user, Longest.room, thread: nil)),
            ("receipts threaded", Keys.receipt(Longest.user, Longest.room, thread: Longest.thread)),
            ("pushers", Keys.pusher(id)),
            ("pusher_keys", Keys.pusherKeyIndex(id)),
            ("dead_letters", Keys.pusher(id) + Keys.pos(.max)),
        ]
        for (name, key) in keys {
            #expect(key.count <= Keys.maxKeyBytes, "\(name): \(key.count) bytes")
            if name != "pusher_keys" { #expect(key.starts(with: name == "heads" ? Array(Longest.user.utf8) : prefix), "\(name)") }
        }
        // Hashed receipt keys stay apart: thread versus no thread, and one thread from another.
        let a = Keys.receipt(Longest.user, Longest.room, thread: nil)
        let b = Keys.receipt(Longest.user, Longest.room, thread: Longest.thread)
        let c = Keys.receipt(Longest.user, Longest.room, thread: Longest.thread + "y")
        #expect(Set([a, b, c]).count == 3)
    }

    @Test("the longest legal ids append, project, rebuild clean and answer queries; receipts on them decide read state")
    func longestIDsInTheStore() throws {
        try withStore(mapSize: 8 << 20) { store in
            let pusher = PusherConfig(id: PusherID(userID: Longest.user, appID: Longest.appID, pushkey: Longest.pushkey),
                                      kind: .http, appDisplayName: "App", deviceDisplayName: "Phone", lang: "en",
                                      data: ["url": .string(gatewayURL)], append: false, enabled: true, createdTS: 1)
            try store.append([.pusherSet(pusher)])
            let cursor = try store.read { view in try view.head() }
            try store.append([
                Make.notify(Longest.user, room: Longest.room, so: 10, thread: Longest.thread),
                Make.notify(Longest.user, room: Longest.room, so: 11, thread: Longest.thread),
                Make.notify(Longest.user, room: Longest.room, so: 12),
                Make.receipt(Longest.user, room: Longest.room, so: 10, thread: Longest.thread),
                Make.receipt(Longest.user, room: Longest.room, so: 11),
            ])
            // so 10: read by both receipts; 11: by the unthreaded one; 12: unread.
            let rows = try store.read { view in try view.notifications(user: Longest.user, after: cursor) }
            #expect(rows.map(\.isRead) == [true, true, false])
            #expect(try store.read { try $0.notificationPositions(user: Longest.user, after: cursor, limit: 10) }.map(\.isRead) == [true, true, false])
            #expect(try store.read { view in try view.head(user: Longest.user) } == cursor + 3)
            let state = try #require(try store.read { view in try view.pusherState(pusher.id) })
            #expect(state.pending == 3)
            try store.write { ctx in
                try ctx.addDeadLetter(key: Keys.pusher(pusher.id), pos: cursor + 1, reason: .maxAge, ts: 5)
            }
            #expect(try store.read { view in try view.deadLetters(key: Keys.pusher(pusher.id)) }.count == 1)
            let report = try store.rebuild(repair: false)
            #expect(report.isClean, "\(report.differences)")
            // Damaged and repaired, the hashed keys come back the same.
            let receipts = try store.env.database("receipts")
            try store.env.write { txn in try txn.clear(receipts) }
            #expect(try store.rebuild(repair: true).repaired)
            #expect(try store.read { view in try view.notifications(user: Longest.user, after: cursor) }.map(\.isRead) == [true, true, false])
            #expect(try store.rebuild(repair: false).isClean)
        }
    }

    @Test("actions, context and thread_id have caps, each refused naming its field")
    func caps() {
        let base = NotificationValidationTests.valid
        let many = JSON.array(Array(repeating: .string("notify"), count: Limits.actionsCount + 1))
        expectInputError(field: "actions", kind: .invalid) { try EntryDecoder.notification(with(base, ["actions": many]), now: now) }
        let big = JSON.array([.string("notify"), .object(["set_tweak": .string("sound"), "value": .string(String(repeating: "s", count: Limits.actionsBytes))])])
        expectInputError(field: "actions", kind: .invalid) { try EntryDecoder.notification(with(base, ["actions": big]), now: now) }
        let atCap = JSON.array(Array(repeating: .string("notify"), count: Limits.actionsCount))
        #expect(throws: Never.self) { try EntryDecoder.notification(with(base, ["actions": atCap]), now: now) }

        var ctx: [String: JSON] = [:]
        for i in 0..<8 { ctx["x\(i)"] = .string(String(repeating: "c", count: 600)) }
        expectInputError(field: "context", kind: .invalid) { try EntryDecoder.notification(with(base, ["context": .object(ctx)]), now: now) }

        expectInputError(field: "thread_id", kind: .invalid) {
            try EntryDecoder.notification(with(base, ["thread_id": .string(Longest.thread + "y")]), now: now)
        }
        #expect(throws: Never.self) { try EntryDecoder.notification(with(base, ["thread_id": .string(Longest.thread)]), now: now) }
        let receipt: [String: JSON] = ["user_id": .string("@a:x"), "room_id": .string("!r:x"), "event_id": .string("$e"),
                                       "stream_ordering": .int(1), "receipt_type": .string("m.read")]
        expectInputError(field: "thread_id", kind: .invalid) {
            try EntryDecoder.receipt(with(receipt, ["thread_id": .string(Longest.thread + "y")]), now: now)
        }
        expectInputError(field: "user_id", kind: .invalid) {
            try EntryDecoder.receipt(with(receipt, ["user_id": .string(Longest.user + "y")]), now: now)
        }
    }

    @Test("ids given outside a body are held to the same bounds")
    func filterIDs() {
        #expect(throws: Never.self) { try EntryDecoder.checkID(Longest.user, field: "user_id") }
        expectInputError(field: "user_id", kind: .invalid) { try EntryDecoder.checkID(Longest.user + "y", field: "user_id") }
        expectInputError(field: "user_id", kind: .invalid) { try EntryDecoder.checkID("@a\u{0}:x", field: "user_id") }
        #expect(throws: Never.self) { try EntryDecoder.checkAppID(Longest.appID, field: "app_id") }
        expectInputError(field: "app_id", kind: .invalid) { try EntryDecoder.checkAppID(Longest.appID + "a", field: "app_id") }
        #expect(throws: Never.self) { try EntryDecoder.checkPushkey(Longest.pushkey, field: "pushkey") }
        expectInputError(field: "pushkey", kind: .invalid) { try EntryDecoder.checkPushkey(Longest.pushkey + "k", field: "pushkey") }
    }
}

@Suite("An interrupted repair")
struct InterruptedRepairTests {
    @Test("a repair marks the store from its first change to its last; the marker is gone after")
    func markerSpansTheRepair() throws {
        try withStore { store in
            try populate(store)
            let heads = try store.env.database("heads")
            try store.env.write { txn in try txn.clear(heads) }
            var seenMid: Bool?
            let report = try store.rebuild(repair: true, afterFirstRepairCommit: { seenMid = try? store.rebuildInterrupted() })
            #expect(report.repaired)
            #expect(seenMid == true, "the marker is committed before the first change")
            #expect(!(try store.rebuildInterrupted()))
            #expect(try store.rebuild(repair: false).isClean)
        }
    }

    @Test("a repair interrupted after its last copy is finished by the next one, although nothing differs")
    func finishesWhenClean() throws {
        try withStore { store in
            try populate(store)
            let meta = try store.env.database("meta")
            try store.env.write { txn in try txn.put(meta, Array("rebuilding".utf8), BigEndian.bytes(1)) }
            #expect(try store.rebuildInterrupted())
            let check = try store.rebuild(repair: false)
            #expect(check.isClean)
            #expect(try store.rebuildInterrupted(), "a dry run leaves the marker")
            let report = try store.rebuild(repair: true)
            #expect(report.isClean && report.repaired)
            #expect(!(try store.rebuildInterrupted()))
        }
    }
}
