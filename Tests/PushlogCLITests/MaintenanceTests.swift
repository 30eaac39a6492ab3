import Foundation
import Testing

@Suite("pushlog compact, recover and what is pending")
struct MaintenanceTests {
    static let alice = "@alice:example.org"
    static let bob = "@bob:example.org"

    @Test("a notification whose actions lack notify is logged but never pending")
    func nonNotifyNeverPending() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        #expect(try box.run(["pushers", "set", box.file("p.jsonl", lines: [jsonLine(Make.httpPusher(user: Self.alice, pushkey: "a"))])]).status == 0)
        var silent = Make.notification(user: Self.alice, event: "$silent", so: 1)
        silent["actions"] = ["dont_notify"]
        var empty = Make.notification(user: Self.alice, event: "$empty", so: 2)
        empty["actions"] = [Any]()
        let r = try box.run(["append", "notifications", box.file("n.jsonl", lines: [jsonLine(silent), jsonLine(empty)])])
        #expect(r.status == 0, "\(r)")
        #expect(try box.replayRows(["--type", "notification"]).compactMap { str($0["event_id"]) } == ["$silent", "$empty"], "both are logged")
        let row = try box.pusherRows(["cursors"]).first ?? [:]
        #expect(int(row["pending"]) == 0, "never pushed, so never pending: \(row)")
        #expect(try box.pusherRows(["cursors", "--lagging"]).isEmpty)
        #expect(int(try box.stats()["pending_pushers"]) == 0)

        #expect(try box.run(["append", "notifications", "-"], stdin: Data((Make.notificationLine(user: Self.alice, event: "$loud", so: 3) + "\n").utf8)).status == 0)
        #expect(int(try box.pusherRows(["cursors"]).first?["pending"]) == 1)
    }

    @Test("compact drops what every cursor has passed; positions are never reused and pushers survive")
    func compactKeepsPositionsAndPushers() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let lines = (1...10).map { Make.notificationLine(user: $0 % 2 == 0 ? Self.alice : Self.bob, event: "$n\($0)", so: $0) }
        #expect(try box.run(["append", "notifications", box.file("n.jsonl", lines: lines)]).status == 0)          // 1...10
        #expect(try box.run(["pushers", "set", box.file("p.jsonl", lines: [jsonLine(Make.httpPusher(user: Self.alice, pushkey: "a"))])]).status == 0)  // 11
        let before = try box.pusherRows()
        #expect(before.count == 1)

        let c = try box.run(["compact", "--retain", "0"])
        #expect(c.status == 0, "\(c)")
        let s = try box.stats()
        #expect(int(s["head"]) == 11, "compact keeps the head: \(s)")
        #expect((int(s["entries"]) ?? 99) < 11, "compact dropped the passed entries: \(s)")
        let rows = try box.replayRows()
        let first = int(rows.first?["pos"]) ?? (int(s["head"]) ?? 0) + 1
        #expect(first > 1, "the log now starts later")
        if !rows.isEmpty { #expect(expectContiguous(rows, from: first) == 11) }

        // The pusher is still there, at the same cursor.
        let after = try box.pusherRows()
        #expect(after.map { str($0["pushkey"]) } == ["a"])
        #expect(int(after.first?["cursor"]) == int(before.first?["cursor"]))

        // New entries continue after the old head; nothing is reused.
        let app = try box.run(["append", "notifications", "-", "--json"], stdin: Data((Make.notificationLine(user: Self.alice, event: "$new", so: 11) + "\n").utf8))
        #expect(app.status == 0, "\(app)")
        #expect(int(app.jsonRows().first?["first_pos"]) == 12, "\(app.out)")
        #expect(int(try box.pusherRows(["cursors"]).first?["pending"]) == 1)

        let rebuild = try box.run(["replay", "--rebuild", "--json"])
        #expect(rebuild.status == 0, "\(rebuild)")
        #expect(rebuild.jsonRows().first?["clean"] as? Bool == true, "rebuild after compact is clean: \(rebuild.out)")
        #expect(try box.pusherRows().map { str($0["pushkey"]) } == ["a"], "the pusher survives a rebuild after compact")
        let recover = try box.run(["recover"])
        #expect(recover.status == 0, "\(recover)")
    }

    @Test("recover on a healthy store exits 0, says the log is contiguous and names the pushers that will deliver; --dry-run changes nothing")
    func recoverHealthy() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        #expect(try box.run(["pushers", "set", box.file("p.jsonl", lines: [jsonLine(Make.httpPusher(user: Self.alice, pushkey: "a")),
                                                                           jsonLine(Make.httpPusher(user: Self.bob, pushkey: "b"))])]).status == 0)
        let lines = [Make.notificationLine(user: Self.alice, event: "$1", so: 1), Make.notificationLine(user: Self.alice, event: "$2", so: 2)]
        #expect(try box.run(["append", "notifications", box.file("n.jsonl", lines: lines)]).status == 0)
        let snapshot = try box.run(["cursors", "--json"]).out + (try box.run(["replay", "--json"]).out)

        let dry = try box.run(["recover", "--dry-run"])
        #expect(dry.status == 0, "\(dry)")
        #expect(dry.out.contains("contiguous"), "\(dry.out)")
        let r = try box.run(["recover"])
        #expect(r.status == 0, "\(r)")
        #expect(r.out.contains(Self.alice) && !r.out.contains(Self.bob), "names alice (2 pending), not bob: \(r.out)")
        #expect(try box.run(["cursors", "--json"]).out + (try box.run(["replay", "--json"]).out) == snapshot,
                "recover on a healthy store changes nothing")
    }
}
