import Foundation
import Testing

/// Ids at exactly their limits (255-byte Matrix ids and thread id, 64-character app id, 512-byte
/// pushkey), and one byte over.
private enum Bound {
    static func id(_ sigil: String) -> String {
        sigil + String(repeating: "x", count: 255 - sigil.utf8.count - ":e.org".utf8.count) + ":e.org"
    }
    static let user = id("@"), room = id("!"), event = id("$"), thread = id("$")
    /// 64 characters of 4 bytes each: the app id's limit is in characters.
    static let appID = String(repeating: "😀", count: 64)
    static let pushkey = String(repeating: "k", count: 512)
    /// 64 actions, the most allowed, and a context near its 4 KiB.
    static var actions: [Any] { ["notify"] + Array(repeating: ["set_tweak": "sound", "value": "default"] as [String: Any], count: 63) }
    static var context: [String: Any] { ["sender_display_name": String(repeating: "B", count: 1_000),
                                         "room_name": String(repeating: "R", count: 1_000),
                                         "room_alias": String(repeating: "A", count: 1_000), "member_count": 3] }

    static func notification(so: Int, thread: String? = Bound.thread) -> [String: Any] {
        var n = Make.notification(user: user, room: room, event: event, so: so, thread: thread)
        n["actions"] = actions
        n["context"] = context
        return n
    }
}

@Suite("pushlog input bounds")
struct InputBoundsCLITests {
    @Test("the longest legal combination of every field appends, projects, rebuilds clean and answers every query")
    func longestLegal() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let pusher = Make.httpPusher(user: Bound.user, appID: Bound.appID, pushkey: Bound.pushkey)
        let set = try box.run(["pushers", "set", box.file("p.jsonl", lines: [jsonLine(pusher)])])
        #expect(set.status == 0, "\(set)")
        let notes = try box.run(["append", "notifications", box.file("n.jsonl", lines: [
            jsonLine(Bound.notification(so: 10)), jsonLine(Bound.notification(so: 11)), jsonLine(Bound.notification(so: 12, thread: nil)),
        ])])
        #expect(notes.status == 0, "\(notes)")
        var threaded = Make.receipt(user: Bound.user, room: Bound.room, event: Bound.event, so: 10)
        threaded["thread_id"] = Bound.thread
        let receipts = try box.run(["append", "receipts", box.file("r.jsonl", lines: [jsonLine(threaded)])])
        #expect(receipts.status == 0, "\(receipts)")

        let rows = try box.pusherRows(["pushers", "list", "--user", Bound.user])
        #expect(rows.count == 1)
        #expect(str(rows.first?["app_id"]) == Bound.appID && str(rows.first?["pushkey"]) == Bound.pushkey)
        #expect(int(rows.first?["pending"]) == 3)
        #expect(int(rows.first?["head"]) == 4)
        #expect(try box.pusherRows(["cursors", "--user", Bound.user]).count == 1)
        let replayed = try box.replayRows(["--user", Bound.user])
        #expect(replayed.count == 5)
        #expect(str(replayed[1]["thread_id"]) == Bound.thread)

        let rebuild = try box.run(["replay", "--rebuild", "--json"])
        #expect(rebuild.status == 0, "\(rebuild)")
        #expect(rebuild.jsonRows().first?["clean"] as? Bool == true, "\(rebuild.out)")
        let recover = try box.run(["recover", "--json"])
        #expect(recover.status == 0, "\(recover)")
        #expect(recover.jsonRows().first?["projections_clean"] as? Bool == true, "\(recover.out)")
        let remove = try box.run(["pushers", "remove", "--user", Bound.user, "--app-id", Bound.appID, "--pushkey", Bound.pushkey])
        #expect(remove.status == 0, "\(remove)")
        #expect(try box.pusherRows().isEmpty)
    }

    @Test("one byte over any limit: exit 65 naming the line and the field, nothing appended")
    func overByOne() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        #expect(try box.run(["append", "notifications", box.file("ok.jsonl", lines: [jsonLine(Bound.notification(so: 1))])]).status == 0)
        func over(_ change: (inout [String: Any]) -> Void) -> [String: Any] {
            var n = Bound.notification(so: 2)
            change(&n)
            return n
        }
        let notifications: [(String, [String: Any])] = [
            ("user_id", over { $0["user_id"] = Bound.user + "x" }),
            ("room_id", over { $0["room_id"] = Bound.room + "x" }),
            ("event_id", over { $0["event_id"] = Bound.event + "x" }),
            ("thread_id", over { $0["thread_id"] = Bound.thread + "x" }),
            ("actions", over { $0["actions"] = Bound.actions + ["notify"] }),
            ("actions", over { $0["actions"] = ["notify", ["set_tweak": "sound", "value": String(repeating: "s", count: 4_096)]] }),
            ("context", over { $0["context"] = Bound.context.merging(["room_avatar_url": String(repeating: "m", count: 1_024)]) { $1 } }),
        ]
        for (field, bad) in notifications {
            let r = try box.run(["append", "notifications", box.file("bad.jsonl", lines: [jsonLine(Bound.notification(so: 2)), jsonLine(bad)])])
            #expect(r.status == 65, "\(field): \(r)")
            #expect(r.err.contains("line 2") && r.err.contains("'\(field)'"), "\(field): \(r.err)")
        }
        var receipt = Make.receipt(user: Bound.user, room: Bound.room, event: Bound.event, so: 1)
        receipt["thread_id"] = Bound.thread + "x"
        let r = try box.run(["append", "receipts", box.file("bad.jsonl", lines: [jsonLine(receipt)])])
        #expect(r.status == 65 && r.err.contains("line 1") && r.err.contains("'thread_id'"), "\(r)")
        let pushers: [(String, [String: Any])] = [
            ("user_id", Make.httpPusher(user: Bound.user + "x", pushkey: "k")),
            ("app_id", Make.httpPusher(user: Bound.user, appID: Bound.appID + "a", pushkey: "k")),
            ("pushkey", Make.httpPusher(user: Bound.user, pushkey: Bound.pushkey + "k")),
        ]
        for (field, bad) in pushers {
            let r = try box.run(["pushers", "set", box.file("bad.jsonl", lines: [jsonLine(bad)])])
            #expect(r.status == 65 && r.err.contains("line 1") && r.err.contains("'\(field)'"), "\(field): \(r)")
        }
        #expect(try box.head() == 1, "nothing was appended")

        let options: [(String, [String])] = [
            ("--user", ["pushers", "list", "--user", Bound.user + "x"]),
            ("--user", ["cursors", "--user", Bound.user + "x"]),
            ("--user", ["replay", "--user", Bound.user + "x"]),
            ("--user", ["pushers", "remove", "--user", Bound.user + "x", "--app-id", "a", "--pushkey", "k"]),
            ("--app-id", ["pushers", "remove", "--user", "@a:x", "--app-id", Bound.appID + "a", "--pushkey", "k"]),
            ("--pushkey", ["pushers", "remove", "--user", "@a:x", "--app-id", "a", "--pushkey", Bound.pushkey + "k"]),
            ("--user", ["cursors", "rewind", "--to", "1", "--user", Bound.user + "x"]),
        ]
        for (field, args) in options {
            let r = try box.run(args)
            #expect(r.status == 65, "\(args.prefix(2)): \(r)")
            #expect(r.err.contains("'\(field)'"), "\(args.prefix(2)): \(r.err)")
            #expect(!r.err.contains("MDB_BAD_VALSIZE"))
        }
    }
}
