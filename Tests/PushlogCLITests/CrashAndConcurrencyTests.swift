import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The tests that run large appends: one at a time, so they do not starve each other of the two cores.
@Suite("pushlog under crash and concurrency", .serialized)
struct CrashAndConcurrencyTests {
    /// Checks every replayed row against the generated input line of the same number.
    func expectRowsMatchBigInput(_ rows: [[String: Any]], offset: Int = 0, sourceLocation: SourceLocation = #_sourceLocation) {
        var mismatches = 0
        for row in rows {
            guard let pos = int(row["pos"]) else { mismatches += 1; continue }
            let i = Int(pos) - offset
            let ok = str(row["type"]) == "notification"
                && str(row["event_id"]) == "$e\(i)"
                && int(row["stream_ordering"]) == Int64(1000 + i)
                && str(row["user_id"]) == Make.bigUser(i)
                && str(row["room_id"]) == Make.bigRoom(i)
                && str(row["thread_id"]) == "main"
                && int(row["received_ts"]) == 1_732_900_000_000
                && canonical(row["actions"]) == #"["notify"]"#
                && str(((row["event"] as? [String: Any])?["content"] as? [String: Any])?["body"]) == "message number \(i)"
            if !ok {
                mismatches += 1
                if mismatches <= 3 { Issue.record("row \(i) differs from input line \(i): \(row)", sourceLocation: sourceLocation) }
            }
        }
        #expect(mismatches == 0, "\(mismatches) rows differ from their input lines", sourceLocation: sourceLocation)
    }

    @Test("append killed with SIGKILL mid-way leaves whole batches: recover is clean, replay is contiguous and equals the input, the next append continues at N+1")
    func crashMidAppend() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let total = 150_000, batch = 1000
        let input = box.root.appendingPathComponent("big.jsonl").path
        try Make.bigNotificationsFile(at: input, count: total)
        // A pusher of one of the users, at pos 1: the input's line i lands at pos i + 1.
        let pusherUser = Make.bigUser(1)
        let set = try box.run(["pushers", "set", box.file("p.jsonl", lines: [jsonLine(Make.httpPusher(user: pusherUser, pushkey: "pk-u1"))])])
        #expect(set.status == 0, "\(set)")

        let appender = try box.start(["append", "notifications", input, "--batch-size", String(batch)])
        // Poll the real binary until the first batch is committed (validation comes first).
        var seenHead: Int64 = 0
        let started = try poll(timeout: 90, interval: 0.01) {
            let r = try box.run(["stats", "--json"], timeout: 30)
            if r.status == 0, let h = int(r.jsonRows().first?["head"]) { seenHead = h }
            return seenHead > 1 || !appender.isRunning
        }
        appender.signal(SIGKILL)
        let killed = appender.wait(timeout: 30)
        #expect(started && seenHead > 1, "the append committed something within the time allowed (head \(seenHead))")
        #expect(killed.signaled && killed.status == SIGKILL, "the append was killed mid-way, not finished: \(killed)")

        let recover = try box.run(["recover"])
        #expect(recover.status == 0, "recover after the crash: \(recover)")
        #expect(recover.out.contains("contiguous"), "recover reports the log contiguous: \(recover.out)")
        let recoverJSON = try box.run(["recover", "--json"])
        #expect(recoverJSON.status == 0, "\(recoverJSON)")
        let report = recoverJSON.jsonRows().first ?? [:]
        #expect(report["log_healthy"] as? Bool == true, "\(report)")
        #expect(report["projections_clean"] as? Bool == true, "projections clean after the first recover: \(report)")

        let head = try box.head() ?? -1
        let n = head - 1  // lines of the input that survived
        #expect(n > 0 && n < Int64(total), "the crash left a proper prefix: \(n) of \(total) lines")
        #expect(n % Int64(batch) == 0, "no partial batch: \(n) lines is a multiple of \(batch)")
        #expect(int(report["log_head"]) == head && int(report["log_entries"]) == head, "\(report)")
        let stats = try box.stats()
        #expect(int(stats["entries"]) == head)

        let rows = try box.replayRows(["--from", "2"])
        #expect(Int64(rows.count) == n)
        #expect(expectContiguous(rows, from: 2) == head)
        expectRowsMatchBigInput(rows, offset: 1)

        // recover says who will redeliver, and how much: the pusher's user's surviving notifications.
        let pending = (1...max(1, Int(n))).filter { $0 % 37 == 1 }.count
        #expect(recover.out.contains(pusherUser) && recover.out.contains("\(pending) pending"),
                "recover names the pusher with \(pending) pending: \(recover.out)")
        let recoverRows = recoverJSON.jsonRows()
        #expect(recoverRows.dropFirst().map { int($0["pending"]) } == [Int64(pending)], "recover --json pusher rows: \(recoverRows.dropFirst())")

        let rebuild = try box.run(["replay", "--rebuild", "--json"])
        #expect(rebuild.status == 0, "\(rebuild)")
        let rebuildReport = rebuild.jsonRows().first ?? [:]
        #expect(rebuildReport["clean"] as? Bool == true, "replay --rebuild after recover is clean: \(rebuild.out)")
        #expect(int(rebuildReport["entries"]) == head)

        // The next append continues right after the surviving prefix.
        let more = (1...3).map { Make.notificationLine(user: "@after:example.org", event: "$after\($0)", so: 5_000_000 + $0) }
        let r = try box.run(["append", "notifications", box.file("more.jsonl", lines: more), "--json"])
        #expect(r.status == 0, "\(r)")
        let res = r.jsonRows().first ?? [:]
        #expect(int(res["first_pos"]) == head + 1 && int(res["last_pos"]) == head + 3, "append after the crash: \(r.out)")
        let tail = try box.replayRows(["--from", String(head - 1)])
        #expect(tail.compactMap { int($0["pos"]) } == [head - 1, head, head + 1, head + 2, head + 3])
        #expect(tail.dropFirst(2).compactMap { str($0["event_id"]) } == ["$after1", "$after2", "$after3"])
        #expect(try box.run(["replay", "--rebuild"]).status == 0)
    }

    @Test("readers running beside a large append always see a contiguous prefix of whole batches; the head ends at the line count")
    func readersBesideAppender() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let total = 40_000, batch = 100
        let input = box.root.appendingPathComponent("big.jsonl").path
        try Make.bigNotificationsFile(at: input, count: total)

        let appender = try box.start(["append", "notifications", input, "--batch-size", String(batch)])
        // Readers never create a store (they exit 66 without one): start them once the appender has.
        #expect(poll(timeout: 60) { FileManager.default.fileExists(atPath: box.dataDir + "/data.mdb") || !appender.isRunning })
        var lastHead: Int64 = 0
        var readerRuns = 0, midwayReplays = 0, midwayStats = 0
        let deadline = Date().addingTimeInterval(100)
        var replayNext = false
        while appender.isRunning && Date() < deadline {
            if replayNext {
                let r = try box.run(["replay", "--json"], timeout: 60)
                readerRuns += 1
                #expect(r.status == 0, "a reader run failed: \(r)")
                let rows = r.jsonRows()
                let k = expectContiguous(rows) ?? -1
                #expect(k >= lastHead, "the prefix never shrinks: \(k) after \(lastHead)")
                #expect(k % Int64(batch) == 0, "a reader sees whole batches only: \(k)")
                if k > 0 && k < Int64(total) { midwayReplays += 1 }
                if rows.count > 0 { expectRowsMatchBigInput(Array(rows.suffix(50))) }
                lastHead = max(lastHead, k)
            } else {
                let r = try box.run(["stats", "--json"], timeout: 60)
                readerRuns += 1
                #expect(r.status == 0, "a stats run failed: \(r)")
                let s = r.jsonRows().first ?? [:]
                let h = int(s["head"]) ?? -1
                #expect(h >= lastHead, "the head never goes back: \(h) after \(lastHead)")
                #expect(int(s["entries"]) == h, "entries == head while appending: \(s)")
                #expect(h % Int64(batch) == 0, "stats sees whole batches only: \(h)")
                if h > 0 && h < Int64(total) { midwayStats += 1 }
                lastHead = max(lastHead, h)
            }
            // Full replays only once the append is committing; stats in between.
            replayNext = lastHead > 0 && !replayNext
        }
        let result = appender.wait(timeout: 60)
        #expect(result.status == 0 && !result.signaled, "the append finished: \(result)")
        #expect(readerRuns > 0)
        #expect(midwayStats + midwayReplays > 0, "at least one reader ran while the append was half done (stats \(midwayStats), replays \(midwayReplays))")

        #expect(try box.head() == Int64(total))
        let rows = try box.replayRows()
        #expect(expectContiguous(rows) == Int64(total))
        #expect(rows.count == total)
        expectRowsMatchBigInput(rows)
    }

    @Test("replay --rebuild and recover run beside a large append either refuse (69) or succeed, and never damage the projections")
    func rebuildBesideAppender() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        // Every line its own user, so a lost head or unread count is never rewritten by a later line.
        let total = 40_000, batch = 100
        var text = ""
        text.reserveCapacity(total * 250)
        for i in 1...total {
            text += #"{"user_id":"@v\#(i):example.org","room_id":"!r:example.org","event_id":"$e\#(i)","stream_ordering":\#(i),"actions":["notify"],"received_ts":1732900000000,"event":{"type":"m.room.message","sender":"@bob:example.org","content":{"msgtype":"m.text","body":"n\#(i)"}}}"#
            text += "\n"
        }
        let input = try box.file("uniq.jsonl", Data(text.utf8))
        // Pushers of 20 of those users, set first (pos 1...20): each must end with 1 pending.
        let watched = (1...20).map { $0 * 2000 - 7 }
        let set = try box.run(["pushers", "set", box.file("p.jsonl", lines: watched.map { jsonLine(Make.httpPusher(user: "@v\($0):example.org", pushkey: "k\($0)")) })])
        #expect(set.status == 0, "\(set)")

        let appender = try box.start(["append", "notifications", input, "--batch-size", String(batch)])
        let committing = try poll(timeout: 90, interval: 0.01) {
            (try box.run(["stats", "--json"], timeout: 30).jsonRows().first.flatMap { int($0["head"]) } ?? 0) > 20 || !appender.isRunning
        }
        #expect(committing && appender.isRunning, "the append is committing when the rebuilds start")
        var runs: [(String, Int32)] = []
        var i = 0
        while appender.isRunning && runs.count < 6 {
            let args = i % 2 == 0 ? ["replay", "--rebuild", "--json"] : ["recover", "--json"]
            i += 1
            let r = try box.run(args, timeout: 60)
            runs.append((args[0], r.status))
            #expect(r.status == 0 || r.status == 69,
                    "\(args.joined(separator: " ")) beside an append must succeed or refuse, not fail: \(r)")
        }
        let done = appender.wait(timeout: 90)
        #expect(done.status == 0 && !done.signaled, "the append finished: \(done)")
        #expect(!runs.isEmpty, "at least one rebuild/recover ran during the append")

        // Afterwards the stored projections must still match the log, with no repair left half done.
        let check = try box.run(["recover", "--dry-run", "--json"])
        #expect(check.status == 0, "\(check)")
        let report = check.jsonRows().first ?? [:]
        #expect(report["projections_clean"] as? Bool == true, "projections damaged by a rebuild beside an append: \(check.out)")
        #expect(report["interrupted_repair"] as? Bool == false, "a repair was left half done: \(check.out)")
        let stats = try box.stats()
        #expect(int(stats["head"]) == Int64(total + 20))
        #expect(int(stats["pending_pushers"]) == 20, "every watched user's notification is pending: \(stats)")
        if let users = int(stats["users"]) {
            #expect(users == Int64(total), "every user still has a head")
        }
        let lagging = try box.pusherRows(["cursors", "--lagging"])
        #expect(lagging.count == 20, "cursors --lagging lists the 20 watched pushers, got \(lagging.count)")
        for row in lagging {
            let user = str(row["user_id"]) ?? "?"
            let line = Int(user.dropFirst(2).prefix { $0.isNumber }) ?? -1
            #expect(int(row["pending"]) == 1 && int(row["head"]) == Int64(line + 20), "\(user): \(row)")
        }
    }
}
