import Foundation
import Testing

@Suite("pushlog pushers, cursors and stats")
struct PushersCursorsTests {
    static let alice = "@alice:example.org"
    static let bob = "@bob:example.org"
    static let carol = "@carol:example.org"

    func appendNotifications(_ box: Sandbox, _ specs: [(user: String, event: String)], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let lines = specs.enumerated().map { i, s in Make.notificationLine(user: s.user, event: s.event, so: 1000 + i) }
        let r = try box.run(["append", "notifications", box.file("n-\(UUID().uuidString).jsonl", lines: lines)])
        #expect(r.status == 0, "\(r)", sourceLocation: sourceLocation)
    }

    func setPushers(_ box: Sandbox, _ pushers: [[String: Any]], sourceLocation: SourceLocation = #_sourceLocation) throws -> RunResult {
        try box.run(["pushers", "set", box.file("p-\(UUID().uuidString).jsonl", lines: pushers.map(jsonLine))])
    }

    /// `replay --rebuild --json` re-derives the projections from the log: after any sequence of
    /// CLI operations it must find nothing different from what was stored.
    func expectRebuildClean(_ box: Sandbox, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try box.run(["replay", "--rebuild", "--json"])
        #expect(r.status == 0, "replay --rebuild: \(r)", sourceLocation: sourceLocation)
        let report = r.jsonRows(sourceLocation: sourceLocation).first ?? [:]
        #expect(report["clean"] as? Bool == true, "replay --rebuild found differences: \(r.out)", sourceLocation: sourceLocation)
    }

    func byUser(_ rows: [[String: Any]]) -> [String: [String: Any]] {
        var out: [String: [String: Any]] = [:]
        for r in rows { if let u = str(r["user_id"]) { out[u] = r } }
        return out
    }

    @Test("pushers set/list/remove: --json rows carry every field (nulls included); a new pusher starts at the head")
    func pushersLifecycle() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        try appendNotifications(box, [(Self.alice, "$a1"), (Self.alice, "$a2"), (Self.bob, "$b1")])
        #expect(try box.head() == 3)

        let set = try setPushers(box, [Make.httpPusher(user: Self.alice, pushkey: "pk-alice"),
                                       Make.emailPusher(user: Self.bob, address: "bob@example.org")])
        #expect(set.status == 0, "\(set)")
        let headAfterSet = try box.head() ?? -1
        #expect(headAfterSet == 5, "two pusher_set entries appended")

        let rows = try box.pusherRows()
        #expect(rows.count == 2)
        let required = ["user_id", "kind", "app_id", "pushkey", "app_display_name", "device_display_name", "lang",
                        "profile_tag", "data", "cursor", "head", "pending", "failing_since", "last_success", "next_attempt_ts"]
        for row in rows {
            for key in required { #expect(row.keys.contains(key), "pushers list row lacks \(key): \(row.keys.sorted())") }
            for key in ["profile_tag", "failing_since", "last_success", "next_attempt_ts"] {
                #expect(isNull(row[key]), "\(key) is null for a new pusher: \(String(describing: row[key]))")
            }
            // The cursor is the log head at the moment the pusher was set: between the head before
            // (3) and after (5) the set, and nothing of the past is pending.
            let cursor = int(row["cursor"]) ?? -1
            #expect(cursor >= 3 && cursor <= 5, "new pusher's cursor \(cursor) is the head at that moment")
            #expect(int(row["pending"]) == 0, "no history is pushed to a new pusher")
        }
        let u = byUser(rows)
        #expect(str(u[Self.alice]?["kind"]) == "http")
        #expect(int(u[Self.alice]?["head"]) == 2, "alice's head is the pos of her newest notification")
        #expect(str((u[Self.alice]?["data"] as? [String: Any])?["url"]) == "https://push.example.org/_matrix/push/v1/notify")
        #expect(str(u[Self.bob]?["kind"]) == "email")
        #expect(str(u[Self.bob]?["pushkey"]) == "bob@example.org")
        #expect(int(u[Self.bob]?["head"]) == 3)

        // New notifications are pending for their user's pushers.
        try appendNotifications(box, [(Self.alice, "$a3"), (Self.bob, "$b2"), (Self.alice, "$a4")])
        let after = byUser(try box.pusherRows())
        #expect(int(after[Self.alice]?["pending"]) == 2)
        #expect(int(after[Self.alice]?["head"]) == 8)
        #expect(int(after[Self.bob]?["pending"]) == 1)
        #expect(int(after[Self.bob]?["head"]) == 7)

        // --user
        let onlyBob = try box.pusherRows(["pushers", "list", "--user", Self.bob])
        #expect(onlyBob.map { str($0["user_id"]) } == [Self.bob])

        // Replacing a pusher keeps one row; profile_tag now set.
        var replaced = Make.httpPusher(user: Self.alice, pushkey: "pk-alice")
        replaced["profile_tag"] = "tag1"
        replaced["device_display_name"] = "Tablet"
        #expect(try setPushers(box, [replaced]).status == 0)
        let afterReplace = try box.pusherRows(["pushers", "list", "--user", Self.alice])
        #expect(afterReplace.count == 1)
        #expect(str(afterReplace.first?["profile_tag"]) == "tag1")
        #expect(str(afterReplace.first?["device_display_name"]) == "Tablet")

        // remove
        let rm = try box.run(["pushers", "remove", "--user", Self.bob, "--app-id", "m.email", "--pushkey", "bob@example.org"])
        #expect(rm.status == 0, "\(rm)")
        let left = try box.pusherRows()
        #expect(left.map { str($0["user_id"]) } == [Self.alice])
        let lastEntry = try box.replayRows(["--type", "pusher"]).last ?? [:]
        #expect(str(lastEntry["type"]) == "pusher_removed")
        #expect(str(lastEntry["pushkey"]) == "bob@example.org")

        // Removing a pusher that does not exist is an error and appends nothing.
        let headBefore = try box.head()
        let rm2 = try box.run(["pushers", "remove", "--user", Self.bob, "--app-id", "m.email", "--pushkey", "bob@example.org"])
        #expect(rm2.status != 0, "\(rm2)")
        #expect(rm2.errLines.count == 1, "\(rm2.err)")
        #expect(try box.head() == headBefore)
        try expectRebuildClean(box)
    }

    @Test("pushers set refuses a bad gateway url path, a non-http scheme, an unknown kind and a bad email address: exit 65, field named, nothing set")
    func pushersSetValidation() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        #expect(try setPushers(box, [Make.httpPusher(user: Self.alice, pushkey: "existing")]).status == 0)
        let head = try box.head()

        let cases: [(String, [String: Any], String)] = [
            ("wrong url path", Make.httpPusher(user: Self.bob, pushkey: "k", url: "https://push.example.org/notify"), "data.url"),
            ("url path with a trailing slash", Make.httpPusher(user: Self.bob, pushkey: "k", url: "https://push.example.org/_matrix/push/v1/notify/"), "data.url"),
            ("ftp scheme", Make.httpPusher(user: Self.bob, pushkey: "k", url: "ftp://push.example.org/_matrix/push/v1/notify"), "data.url"),
            ("unknown kind", Make.httpPusher(user: Self.bob, pushkey: "k", kind: "sms"), "kind"),
            ("email pushkey not an address", Make.emailPusher(user: Self.bob, address: "not-an-address"), "pushkey"),
            ("app_id longer than 64 characters", Make.httpPusher(user: Self.bob, appID: String(repeating: "a", count: 65), pushkey: "k"), "app_id"),
            ("pushkey longer than 512 bytes", Make.httpPusher(user: Self.bob, pushkey: String(repeating: "k", count: 513)), "pushkey"),
            ("http pusher without data.url", { var p = Make.httpPusher(user: Self.bob, pushkey: "k"); p["data"] = [String: Any](); return p }(), "data.url"),
        ]
        for (name, bad, field) in cases {
            // A valid pusher on line 1, the bad one on line 2: nothing at all is set.
            let r = try setPushers(box, [Make.httpPusher(user: Self.carol, pushkey: "c"), bad])
            #expect(r.status == 65, "\(name): \(r)")
            #expect(r.errLines.count == 1, "\(name): one stderr line, got \(r.errLines)")
            #expect(r.err.contains("line 2"), "\(name): names line 2: \(r.err)")
            #expect(mentionsField(r.err, field), "\(name): names \(field): \(r.err)")
        }
        #expect(try box.head() == head, "nothing appended by refused sets")
        #expect(try box.pusherRows().map { str($0["pushkey"]) } == ["existing"])
    }

    @Test("pushers set refuses a gateway named by a blocked address (exit 65, line and data.url named, nothing set) unless --config's whitelist covers it")
    func pushersSetBlockedAddress() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        for url in ["http://169.254.169.254/_matrix/push/v1/notify", "http://[::1]:8080/_matrix/push/v1/notify",
                    "http://[::ffff:127.0.0.1]/_matrix/push/v1/notify", "https://10.1.2.3/_matrix/push/v1/notify",
                    "http://0x7f.1/_matrix/push/v1/notify"] {
            let r = try setPushers(box, [Make.httpPusher(user: Self.carol, pushkey: "c"), Make.httpPusher(user: Self.bob, pushkey: "k", url: url)])
            #expect(r.status == 65, "\(url): \(r)")
            #expect(r.errLines.count == 1, "\(url): \(r.errLines)")
            #expect(r.err.contains("line 2") && mentionsField(r.err, "data.url"), "\(url): \(r.err)")
        }
        #expect(try box.run(["stats"]).status == 66, "nothing set by refused sets: no store was even made")

        let config = try box.file("pushlog.yaml", lines: ["push:", "  ip_range_whitelist: [\"169.254.0.0/16\", \"::1\"]"])
        let pushers = try box.file("p.jsonl", lines: [jsonLine(Make.httpPusher(user: Self.bob, pushkey: "a", url: "http://169.254.169.254/_matrix/push/v1/notify")),
                                                     jsonLine(Make.httpPusher(user: Self.bob, pushkey: "b", url: "http://[::1]:8080/_matrix/push/v1/notify"))])
        let allowed = try box.run(["pushers", "set", "--config", config, pushers])
        #expect(allowed.status == 0, "\(allowed)")
        #expect(try box.pusherRows().count == 2)

        let bad = try box.file("bad.yaml", lines: ["push:", "  ip_range_blacklist: [\"10.0.0.0/8\", \"10.0.0.0/33\"]"])
        let refused = try box.run(["pushers", "set", "--config", bad, pushers])
        #expect(refused.status == 64, "\(refused)")
        #expect(refused.err.contains("push.ip_range_blacklist") && refused.err.contains("10.0.0.0/33"), "\(refused.err)")
    }

    @Test("a pusher set with append false removes other users' pushers with the same app_id and pushkey; append true keeps them")
    func appendFalseTakesOverPushkey() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        #expect(try setPushers(box, [Make.httpPusher(user: Self.alice, pushkey: "shared"),
                                     Make.httpPusher(user: Self.alice, pushkey: "own")]).status == 0)
        var bobs = Make.httpPusher(user: Self.bob, pushkey: "shared")
        bobs["append"] = true
        #expect(try setPushers(box, [bobs]).status == 0)
        let both = try box.pusherRows().map { "\(str($0["user_id"]) ?? "?") \(str($0["pushkey"]) ?? "?")" }.sorted()
        #expect(both == ["\(Self.alice) own", "\(Self.alice) shared", "\(Self.bob) shared"], "append true keeps alice's pusher")

        #expect(try setPushers(box, [Make.httpPusher(user: Self.carol, pushkey: "shared")]).status == 0)
        let after = try box.pusherRows().map { "\(str($0["user_id"]) ?? "?") \(str($0["pushkey"]) ?? "?")" }.sorted()
        #expect(after == ["\(Self.alice) own", "\(Self.carol) shared"], "append false (the default) took the pushkey over")
        #expect(int(try box.stats()["pushers"]) == 2)
        try expectRebuildClean(box)
    }

    @Test("cursors --lagging lists only pending pushers, most pending first")
    func cursorsLagging() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        #expect(try setPushers(box, [Make.httpPusher(user: Self.alice, pushkey: "a"),
                                     Make.httpPusher(user: Self.bob, pushkey: "b"),
                                     Make.httpPusher(user: Self.carol, pushkey: "c")]).status == 0)
        // bob 3 pending, alice 1, carol none.
        try appendNotifications(box, [(Self.bob, "$1"), (Self.alice, "$2"), (Self.bob, "$3"), (Self.bob, "$4")])

        let all = try box.pusherRows(["cursors"])
        #expect(all.count == 3, "cursors lists every pusher")
        for row in all {
            for key in ["user_id", "app_id", "pushkey", "cursor", "head", "pending", "failing_since", "last_success", "next_attempt_ts"] {
                #expect(row.keys.contains(key), "cursors row lacks \(key)")
            }
        }
        let lagging = try box.pusherRows(["cursors", "--lagging"])
        #expect(lagging.map { str($0["user_id"]) } == [Self.bob, Self.alice], "only pending pushers, most pending first")
        #expect(lagging.map { int($0["pending"]) } == [3, 1])

        let plain = try box.run(["cursors", "--lagging"])
        #expect(plain.status == 0, "\(plain)")
        #expect(plain.outLines.count == 3, "header plus two pending pushers: \(plain.out)")
        #expect(!plain.out.contains(Self.carol))

        let onlyAlice = try box.pusherRows(["cursors", "--user", Self.alice])
        #expect(onlyAlice.map { str($0["user_id"]) } == [Self.alice])
    }

    @Test("cursors rewind --to POS and --since move cursors back to POS-1, never forward; --dry-run changes nothing")
    func cursorsRewind() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        try appendNotifications(box, [(Self.alice, "$1"), (Self.bob, "$2"), (Self.alice, "$3")])      // 1...3
        #expect(try setPushers(box, [Make.httpPusher(user: Self.alice, pushkey: "a"),
                                     Make.httpPusher(user: Self.bob, pushkey: "b")]).status == 0)   // 4, 5
        try appendNotifications(box, [(Self.alice, "$6"), (Self.bob, "$7")])                        // 6, 7
        func cursors() throws -> [String: Int64] {
            var out: [String: Int64] = [:]
            for r in try box.pusherRows(["cursors"]) { out[str(r["user_id"]) ?? "?"] = int(r["cursor"]) ?? -1 }
            return out
        }
        let start = try cursors()
        #expect((start[Self.alice] ?? -1) >= 3 && (start[Self.alice] ?? -1) <= 5)
        #expect((start[Self.bob] ?? -1) >= 3 && (start[Self.bob] ?? -1) <= 5)

        // --dry-run: says what would move, moves nothing.
        let dry = try box.run(["cursors", "rewind", "--to", "2", "--dry-run"])
        #expect(dry.status == 0, "\(dry)")
        #expect(dry.out.contains(Self.alice) && dry.out.contains(Self.bob), "dry run names the pushers: \(dry.out)")
        #expect(try cursors() == start, "--dry-run changes nothing")

        // --to with a user filter: only alice, cursor = POS-1.
        let r1 = try box.run(["cursors", "rewind", "--to", "2", "--user", Self.alice])
        #expect(r1.status == 0, "\(r1)")
        var now = try cursors()
        #expect(now[Self.alice] == 1)
        #expect(now[Self.bob] == start[Self.bob], "bob not matched by --user")
        let alice = byUser(try box.pusherRows(["cursors"]))[Self.alice]
        #expect(int(alice?["pending"]) == 2, "alice redelivers $3 and $6")

        // Never forward.
        let r2 = try box.run(["cursors", "rewind", "--to", "6", "--user", Self.alice])
        #expect(r2.status == 0, "\(r2)")
        now = try cursors()
        #expect(now[Self.alice] == 1, "a cursor is never moved forward")

        // --app-id / --pushkey filters.
        let r3 = try box.run(["cursors", "rewind", "--to", "3", "--pushkey", "nomatch"])
        #expect(r3.status == 0, "\(r3)")
        #expect(try cursors() == now)
        let r4 = try box.run(["cursors", "rewind", "--to", "3", "--app-id", "com.example.app", "--pushkey", "b"])
        #expect(r4.status == 0, "\(r4)")
        now = try cursors()
        #expect(now[Self.bob] == 2)
        #expect(now[Self.alice] == 1)

        // --since a duration ago covering everything: from pos 1 (cursor 0).
        let dry2 = try box.run(["cursors", "rewind", "--since", "1h", "--dry-run"])
        #expect(dry2.status == 0, "\(dry2)")
        #expect(try cursors() == now, "--since --dry-run changes nothing")
        let r5 = try box.run(["cursors", "rewind", "--since", "1h"])
        #expect(r5.status == 0, "\(r5)")
        now = try cursors()
        #expect(now[Self.alice] == 0 && now[Self.bob] == 0, "--since 1h redelivers everything: \(now)")
        try expectRebuildClean(box)
        #expect(try cursors() == now, "replay --rebuild keeps the rewound cursors")
    }

    @Test("cursors rewind --since an RFC 3339 instant redelivers what was appended at or after it")
    func cursorsRewindSinceInstant() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        #expect(try setPushers(box, [Make.httpPusher(user: Self.alice, pushkey: "a")]).status == 0)  // 1
        try appendNotifications(box, [(Self.alice, "$2"), (Self.alice, "$3")])                      // 2, 3
        // Separate runs, so pos 4's append time is later than pos 3's.
        usleep(20_000)
        try appendNotifications(box, [(Self.alice, "$4"), (Self.alice, "$5")])                      // 4, 5
        let rows = try box.replayRows()
        #expect(rows.count == 5)
        guard rows.count == 5, let ts3 = int(rows[2]["ts"]), let ts4 = int(rows[3]["ts"]) else { return }
        #expect(ts4 > ts3, "later append, later ts")

        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let instant = f.string(from: Date(timeIntervalSince1970: Double(ts4) / 1000))
        // The pusher was set at pos 1, so its cursor is at most 1: a rewind to just before pos 4
        // would move it forward, so nothing moves.
        let c0 = int(try box.pusherRows(["cursors"]).first?["cursor"])
        #expect(c0 != nil && c0! <= 1)
        let r0 = try box.run(["cursors", "rewind", "--since", instant])
        #expect(r0.status == 0, "\(r0)")
        #expect(int(try box.pusherRows(["cursors"]).first?["cursor"]) == c0, "never forward")

        // Re-enabling starts at the head; then --since moves it back to just before pos 4.
        var disabled = Make.httpPusher(user: Self.alice, pushkey: "a")
        disabled["enabled"] = false
        #expect(try setPushers(box, [disabled]).status == 0)                                       // 6
        #expect(try setPushers(box, [Make.httpPusher(user: Self.alice, pushkey: "a")]).status == 0) // 7
        let reenabled = try box.pusherRows(["cursors"]).first ?? [:]
        #expect((int(reenabled["cursor"]) ?? 0) >= 6, "a re-enabled pusher starts at the head: \(reenabled)")
        #expect(int(reenabled["pending"]) == 0)

        let r1 = try box.run(["cursors", "rewind", "--since", instant])
        #expect(r1.status == 0, "\(r1)")
        let after = try box.pusherRows(["cursors"]).first ?? [:]
        #expect(int(after["cursor"]) == 3, "--since \(instant) (pos 4's ts) makes the cursor 3: \(after)")
        #expect(int(after["pending"]) == 2)

        // An instant in the future matches nothing to redeliver and moves nothing forward.
        let future = f.string(from: Date().addingTimeInterval(3600))
        let r2 = try box.run(["cursors", "rewind", "--since", future])
        #expect(r2.status == 0, "\(r2)")
        #expect(int(try box.pusherRows(["cursors"]).first?["cursor"]) == 3)
    }

    @Test("stats --json has head, entries, pushers, pending_pushers, map_used_bytes and map_size_bytes with the right values")
    func statsJSON() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        #expect(try box.run(["stats"]).status == 66, "no store yet")
        #expect(try box.run(["recover"]).status == 0, "recover makes an empty store")
        let empty = try box.stats()
        for key in ["head", "entries", "pushers", "pending_pushers", "map_used_bytes", "map_size_bytes"] {
            #expect(int(empty[key]) != nil, "stats lacks integer \(key): \(empty)")
        }
        #expect(int(empty["head"]) == 0 && int(empty["entries"]) == 0 && int(empty["pushers"]) == 0)

        #expect(try setPushers(box, [Make.httpPusher(user: Self.alice, pushkey: "a"),
                                     Make.emailPusher(user: Self.bob, address: "bob@example.org"),
                                     Make.httpPusher(user: Self.carol, pushkey: "c")]).status == 0)
        try appendNotifications(box, [(Self.alice, "$1"), (Self.bob, "$2"), (Self.alice, "$3")])
        let s = try box.stats()
        #expect(int(s["head"]) == 6)
        #expect(int(s["entries"]) == 6)
        #expect(int(s["pushers"]) == 3)
        #expect(int(s["pending_pushers"]) == 2, "alice and bob are pending, carol is not")
        let used = int(s["map_used_bytes"]) ?? 0, size = int(s["map_size_bytes"]) ?? 0
        #expect(used > 0 && size > 0 && used <= size, "map used \(used) of \(size)")

        let plain = try box.run(["stats"])
        #expect(plain.status == 0, "\(plain)")
        #expect(plain.out.contains("head"))
    }
}
