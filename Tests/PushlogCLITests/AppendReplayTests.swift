import Foundation
import Testing

@Suite("pushlog append and replay")
struct AppendReplayTests {
    @Test("append from a file and from stdin gives contiguous positions, and replay --json shows every entry with the contract's fields")
    func appendAndReplay() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let startMS = Int64(Date().timeIntervalSince1970 * 1000)

        let fileLines = [
            Make.notification(user: "@alice:example.org", room: "!one:example.org", event: "$a1", so: 10),
            Make.notification(user: "@alice:example.org", room: "!two:example.org", event: "$a2", so: 11, thread: "t1"),
            Make.notification(user: "@bob:example.org", room: "!one:example.org", event: "$b1", so: 12, receivedTS: nil),
        ]
        let file = try box.file("n.jsonl", lines: fileLines.map(jsonLine))
        let r1 = try box.run(["append", "notifications", file, "--json"])
        #expect(r1.status == 0, "\(r1)")
        let res1 = r1.jsonRows()
        #expect(int(res1.first?["first_pos"]) == 1 && int(res1.first?["last_pos"]) == 3, "append said \(r1.out)")

        var withContext = Make.notification(user: "@carol:example.org", room: "!one:example.org", event: "$c1", so: 13)
        withContext["context"] = ["sender_display_name": "Bob", "room_name": "Lunch", "member_count": 3] as [String: Any]
        let stdinLines = [
            withContext,
            Make.notification(user: "@alice:example.org", room: "!one:example.org", event: "$a3", so: 14, body: "ünïcødé ✓"),
        ]
        let r2 = try box.run(["append", "notifications", "-", "--json"], stdin: Data((stdinLines.map(jsonLine).joined(separator: "\n") + "\n").utf8))
        #expect(r2.status == 0, "\(r2)")
        let res2 = r2.jsonRows()
        #expect(int(res2.first?["first_pos"]) == 4 && int(res2.first?["last_pos"]) == 5, "append - said \(r2.out)")

        var receiptInput = Make.receipt(user: "@alice:example.org", room: "!one:example.org", event: "$a1", so: 10)
        receiptInput["ts"] = 1_700_000_000_123
        let receiptFile = try box.file("r.jsonl", lines: [jsonLine(receiptInput)])
        let r3 = try box.run(["append", "receipts", receiptFile])
        #expect(r3.status == 0, "\(r3)")

        let pusherFile = try box.file("p.jsonl", lines: [jsonLine(Make.httpPusher(user: "@alice:example.org", pushkey: "pk-alice"))])
        let r4 = try box.run(["pushers", "set", pusherFile])
        #expect(r4.status == 0, "\(r4)")
        let endMS = Int64(Date().timeIntervalSince1970 * 1000)

        let rows = try box.replayRows()
        #expect(rows.count == 7)
        #expect(expectContiguous(rows) == 7)
        #expect(rows.map { str($0["type"]) ?? "?" } ==
            ["notification", "notification", "notification", "notification", "notification", "receipt", "pusher_set"])

        // Append times: milliseconds, within the test's window, never decreasing.
        var lastTS: Int64 = 0
        for row in rows {
            let ts = int(row["ts"])
            #expect(ts != nil, "row without an integer ts: \(row)")
            if let ts {
                #expect(ts >= startMS - 2_000 && ts <= endMS + 2_000, "ts \(ts) outside [\(startMS), \(endMS)]")
                #expect(ts >= lastTS, "ts went backwards at pos \(String(describing: row["pos"]))")
                lastTS = ts
            }
        }

        // Notification rows: the entry's own fields, flat, nothing left out.
        let inputs = fileLines + stdinLines
        let notificationKeys = ["pos", "type", "ts", "user_id", "room_id", "event_id", "stream_ordering", "actions",
                                "thread_id", "received_ts", "event", "context"]
        for (i, input) in inputs.enumerated() where i < rows.count {
            let row = rows[i]
            for key in notificationKeys { #expect(row.keys.contains(key), "notification row \(i + 1) lacks \(key): \(row.keys.sorted())") }
            #expect(str(row["user_id"]) == str(input["user_id"]))
            #expect(str(row["room_id"]) == str(input["room_id"]))
            #expect(str(row["event_id"]) == str(input["event_id"]))
            #expect(int(row["stream_ordering"]) == int(input["stream_ordering"]))
            #expect(canonical(row["actions"]) == canonical(input["actions"]))
            #expect(canonical(row["event"]) == canonical(input["event"]))
            #expect(str(row["thread_id"]) == (str(input["thread_id"]) ?? "main"), "thread_id defaults to main")
            if let context = input["context"] {
                #expect(canonical(row["context"]) == canonical(context))
            } else {
                #expect(isNull(row["context"]), "absent context is null: \(String(describing: row["context"]))")
            }
            if let received = int(input["received_ts"]) {
                #expect(int(row["received_ts"]) == received)
            } else {
                let r = int(row["received_ts"]) ?? 0
                #expect(r >= startMS - 2_000 && r <= endMS + 2_000, "received_ts defaults to now, got \(r)")
            }
        }

        let receipt = rows.count > 5 ? rows[5] : [:]
        for key in ["pos", "type", "ts", "user_id", "room_id", "event_id", "stream_ordering", "receipt_type", "thread_id"] {
            #expect(receipt.keys.contains(key), "receipt row lacks \(key): \(receipt.keys.sorted())")
        }
        #expect(str(receipt["receipt_type"]) == "m.read")
        #expect(int(receipt["stream_ordering"]) == 10)
        #expect(isNull(receipt["thread_id"]), "an unthreaded receipt shows thread_id null")
        #expect(receipt.values.contains { int($0) == 1_700_000_000_123 }, "the receipt's own ts is kept in its row: \(receipt)")

        let pusher = rows.count > 6 ? rows[6] : [:]
        #expect(str(pusher["kind"]) == "http")
        #expect(str(pusher["pushkey"]) == "pk-alice")
        #expect(str(pusher["app_id"]) == "com.example.app")
        #expect(pusher.keys.contains("profile_tag") && isNull(pusher["profile_tag"]), "profile_tag is null, not left out")

        // The plain listing has one line per entry too.
        let plain = try box.run(["replay"])
        #expect(plain.status == 0, "\(plain)")
        #expect(plain.outLines.count == 7)
    }

    @Test("replay filters: --type, --user and --from/--to select the right entries")
    func replayFilters() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        // pos 1..6 notifications (alice, bob alternating), 7 receipt (bob), 8 pusher set (alice), 9 pusher removed (alice)
        var lines: [String] = []
        for i in 1...6 {
            lines.append(Make.notificationLine(user: i % 2 == 1 ? "@alice:example.org" : "@bob:example.org", event: "$e\(i)", so: 100 + i))
        }
        #expect(try box.run(["append", "notifications", box.file("n.jsonl", lines: lines)]).status == 0)
        #expect(try box.run(["append", "receipts", box.file("r.jsonl", lines: [jsonLine(Make.receipt(user: "@bob:example.org", event: "$e2", so: 102))])]).status == 0)
        #expect(try box.run(["pushers", "set", box.file("p.jsonl", lines: [jsonLine(Make.httpPusher(user: "@alice:example.org", pushkey: "k"))])]).status == 0)
        var removal = Make.httpPusher(user: "@alice:example.org", pushkey: "k")
        removal["kind"] = NSNull()
        #expect(try box.run(["pushers", "set", box.file("rm.jsonl", lines: [jsonLine(removal)])]).status == 0)

        func positions(_ args: [String]) throws -> [Int64] {
            try box.replayRows(args).compactMap { int($0["pos"]) }
        }
        #expect(try positions([]) == Array(1...9))
        #expect(try positions(["--type", "notification"]) == [1, 2, 3, 4, 5, 6])
        #expect(try positions(["--type", "receipt"]) == [7])
        #expect(try positions(["--type", "pusher"]) == [8, 9], "--type pusher selects both pusher types")
        let pusherTypes = try box.replayRows(["--type", "pusher"]).map { str($0["type"]) }
        #expect(pusherTypes == ["pusher_set", "pusher_removed"])
        #expect(try positions(["--user", "@alice:example.org"]) == [1, 3, 5, 8, 9])
        #expect(try positions(["--user", "@bob:example.org"]) == [2, 4, 6, 7])
        #expect(try positions(["--user", "@nobody:example.org"]) == [])
        #expect(try positions(["--from", "3", "--to", "5"]) == [3, 4, 5])
        #expect(try positions(["--from", "7"]) == [7, 8, 9])
        #expect(try positions(["--to", "2"]) == [1, 2])
        #expect(try positions(["--from", "10"]) == [])
        #expect(try positions(["--from", "2", "--to", "8", "--user", "@alice:example.org", "--type", "notification"]) == [3, 5])
        let removed = try box.replayRows(["--from", "9"]).first ?? [:]
        #expect(removed.keys.contains("kind") && isNull(removed["kind"]), "a pusher_removed row has kind null: \(removed)")
    }
}

/// Does `line` name `field` as a whole field name (not as part of a longer one such as event_id for event)?
func mentionsField(_ line: String, _ field: String) -> Bool {
    let chars = Array(line)
    let f = Array(field)
    guard f.count <= chars.count else { return false }
    func isNameChar(_ c: Character) -> Bool { c.isLetter || c.isNumber || c == "_" || c == "." }
    var i = 0
    while i + f.count <= chars.count {
        if Array(chars[i..<(i + f.count)]) == f {
            let before = i == 0 ? " " : chars[i - 1]
            let after = i + f.count == chars.count ? " " : chars[i + f.count]
            // "." after is fine when it ends a sentence ("field event."), not when it continues a path.
            let afterOK = !isNameChar(after) || (after == "." && (i + f.count + 1 == chars.count || chars[i + f.count + 1] == " "))
            if !isNameChar(before) && afterOK { return true }
        }
        i += 1
    }
    return false
}

@Suite("pushlog append: bad input")
struct BadInputTests {
    struct BadLine: CustomStringConvertible, Sendable {
        let name: String
        let kind: String          // "notifications" or "receipts"
        let line: [UInt8]
        let field: String?        // the field the error must name; nil when the line is not JSON at all
        var description: String { name }
    }

    static func notif(_ edit: (inout [String: Any]) -> Void) -> [UInt8] {
        var o = Make.notification(event: "$bad", so: 50)
        edit(&o)
        return Array(jsonLine(o).utf8)
    }

    static let cases: [BadLine] = [
        BadLine(name: "not JSON", kind: "notifications", line: Array(#"{"user_id": "@alice:example.org", "room_id": "#.utf8), field: nil),
        BadLine(name: "invalid UTF-8", kind: "notifications",
                line: Array(#"{"user_id":"@al"#.utf8) + [0xFF, 0xFE] + Array(#"ice:example.org","room_id":"!r:example.org","event_id":"$x","stream_ordering":1,"actions":["notify"],"event":{"type":"m.room.message","sender":"@b:example.org","content":{}}}"#.utf8),
                field: nil),
        BadLine(name: "missing user_id", kind: "notifications", line: notif { $0.removeValue(forKey: "user_id") }, field: "user_id"),
        BadLine(name: "negative stream_ordering", kind: "notifications", line: notif { $0["stream_ordering"] = -5 }, field: "stream_ordering"),
        BadLine(name: "string stream_ordering", kind: "notifications", line: notif { $0["stream_ordering"] = "12" }, field: "stream_ordering"),
        BadLine(name: "missing stream_ordering", kind: "notifications", line: notif { $0.removeValue(forKey: "stream_ordering") }, field: "stream_ordering"),
        BadLine(name: "fractional stream_ordering", kind: "notifications", line: notif { $0["stream_ordering"] = 1.5 }, field: "stream_ordering"),
        BadLine(name: "empty event_id", kind: "notifications", line: notif { $0["event_id"] = "" }, field: "event_id"),
        BadLine(name: "event larger than 65,536 bytes", kind: "notifications",
                line: notif { $0["event"] = ["type": "m.room.message", "sender": "@bob:example.org",
                                             "content": ["msgtype": "m.text", "body": String(repeating: "x", count: 70_000)]] as [String: Any] },
                field: "event"),
        BadLine(name: "actions not an array", kind: "notifications", line: notif { $0["actions"] = "notify" }, field: "actions"),
        BadLine(name: "a JSON array instead of an object", kind: "notifications", line: Array("[1, 2, 3]".utf8), field: nil),
        BadLine(name: "bad receipt_type", kind: "receipts",
                line: Array(jsonLine(Make.receipt(event: "$bad", so: 3, type: "m.unread")).utf8), field: "receipt_type"),
        BadLine(name: "receipt with negative stream_ordering", kind: "receipts",
                line: Array(jsonLine(Make.receipt(event: "$bad", so: -1)).utf8), field: "stream_ordering"),
    ]

    static func validLine(_ kind: String, _ i: Int) -> String {
        kind == "receipts"
            ? jsonLine(Make.receipt(room: "!r\(i):example.org", event: "$ok\(i)", so: i))
            : Make.notificationLine(event: "$ok\(i)", so: i)
    }

    @Test("a bad line 3 makes append exit 65 with one stderr line naming line 3 and the field, and appends nothing",
          arguments: cases)
    func badLine(_ bad: BadLine) throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        // Something in the log first, so "nothing appended" is a real comparison.
        let seed = try box.run(["append", bad.kind, box.file("seed.jsonl", lines: [Self.validLine(bad.kind, 100), Self.validLine(bad.kind, 101)])])
        #expect(seed.status == 0, "\(seed)")
        let before = try box.stats()
        #expect(int(before["head"]) == 2)

        var data = Data((Self.validLine(bad.kind, 1) + "\n" + Self.validLine(bad.kind, 2) + "\n").utf8)
        data.append(contentsOf: bad.line)
        data.append(contentsOf: Array(("\n" + Self.validLine(bad.kind, 4) + "\n").utf8))
        let path = try box.file("bad.jsonl", data)

        for source in ["file", "stdin"] {
            let r = source == "file"
                ? try box.run(["append", bad.kind, path])
                : try box.run(["append", bad.kind, "-"], stdin: data)
            #expect(r.status == 65, "\(bad.name) via \(source): \(r)")
            #expect(r.errLines.count == 1, "\(bad.name) via \(source): exactly one stderr line, got \(r.errLines)")
            let line = r.errLines.first ?? ""
            #expect(line.contains("line 3"), "\(bad.name) via \(source): error names line 3: \(line)")
            if let field = bad.field {
                #expect(mentionsField(line, field), "\(bad.name) via \(source): error names \(field): \(line)")
            }
            #expect(r.outLines.isEmpty, "\(bad.name) via \(source): nothing on stdout: \(r.out)")
        }

        let after = try box.stats()
        #expect(int(after["head"]) == 2, "\(bad.name): head unchanged, got \(String(describing: after["head"]))")
        #expect(int(after["entries"]) == 2, "\(bad.name): entries unchanged")
        let rows = try box.replayRows()
        #expect(rows.count == 2)
    }

    @Test("the error for a bad line of a file names the file as well as the line and field")
    func errorNamesFile() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        var bad = Make.notification(event: "$x", so: 1)
        bad["stream_ordering"] = -1
        let path = try box.file("incoming-batch.jsonl", lines: [Make.notificationLine(event: "$1", so: 1), jsonLine(bad)])
        let r = try box.run(["append", "notifications", path])
        #expect(r.status == 65, "\(r)")
        #expect(r.errLines.count == 1)
        #expect(r.err.contains("line 2") && mentionsField(r.err, "stream_ordering"), "\(r.err)")
        #expect(r.err.contains("incoming-batch.jsonl"), "the contract: errors say where (file, line, field): \(r.err)")
    }

    @Test("the first bad line is the one reported, counting blank lines")
    func firstBadLineCounted() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        // line 1 valid, line 2 blank, line 3 valid, line 4 bad (missing room_id), line 5 bad (missing user_id)
        var missingRoom = Make.notification(event: "$x", so: 1)
        missingRoom.removeValue(forKey: "room_id")
        var missingUser = Make.notification(event: "$y", so: 2)
        missingUser.removeValue(forKey: "user_id")
        let path = try box.file("n.jsonl", lines: [Make.notificationLine(event: "$1", so: 1), "",
                                                  Make.notificationLine(event: "$3", so: 3), jsonLine(missingRoom), jsonLine(missingUser)])
        let r = try box.run(["append", "notifications", path])
        #expect(r.status == 65, "\(r)")
        #expect(r.errLines.count == 1)
        #expect(r.err.contains("line 4") && mentionsField(r.err, "room_id"), "\(r.err)")
        #expect(try box.run(["stats"]).status == 66, "nothing appended: not even a store was created")
    }

    @Test("append of a file that does not exist fails with one stderr line naming it and appends nothing")
    func missingFile() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let r = try box.run(["append", "notifications", box.root.appendingPathComponent("nope.jsonl").path])
        #expect(r.status != 0, "\(r)")
        #expect(r.errLines.count == 1 && r.err.contains("nope.jsonl"), "\(r.err)")
        #expect(try box.run(["stats"]).status == 66, "nothing appended: not even a store was created")
    }
}
