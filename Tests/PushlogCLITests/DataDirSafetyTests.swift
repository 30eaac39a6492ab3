import Foundation
import PushlogCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The mode bits and owner of every entry of `dir` (not recursive), by name.
private func entries(of dir: String) throws -> [String: stat] {
    var out: [String: stat] = [:]
    for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
        var st = stat()
        guard lstat(dir + "/" + name, &st) == 0 else { throw HarnessError("stat \(name): \(errno)") }
        out[name] = st
    }
    return out
}

private func mode(_ path: String) -> mode_t {
    var st = stat()
    return stat(path, &st) == 0 ? st.st_mode & 0o777 : 0
}

@Suite("the data directory: modes, owners, stores that are not there, repairs that did not finish")
struct DataDirSafetyTests {
    static let alice = "@alice:example.org"
    static let bob = "@bob:example.org"

    /// Pushers for alice and bob, 30 notifications between them, some receipts.
    func populate(_ box: Sandbox) throws {
        let pushers = [Make.httpPusher(user: Self.alice, pushkey: "a"), Make.httpPusher(user: Self.bob, pushkey: "b")]
        #expect(try box.run(["pushers", "set", box.file("p.jsonl", lines: pushers.map(jsonLine))]).status == 0)
        let lines = (1...30).map { Make.notificationLine(user: $0 % 3 == 0 ? Self.bob : Self.alice, room: "!r\($0 % 4):x", event: "$n\($0)", so: $0) }
        #expect(try box.run(["append", "notifications", box.file("n.jsonl", lines: lines)]).status == 0)
        let receipts = [Make.receipt(user: Self.alice, room: "!r1:x", event: "$n9", so: 9), Make.receipt(user: Self.bob, room: "!r2:x", event: "$n6", so: 6)]
        #expect(try box.run(["append", "receipts", box.file("r.jsonl", lines: receipts.map(jsonLine))]).status == 0)
    }

    /// Where each pusher stands: what must survive (failure times may change while serve runs).
    func delivery(_ rows: [[String: Any]]) -> [String] {
        rows.map { r in ["user_id", "app_id", "pushkey", "cursor", "head", "pending"].map { canonical(r[$0]) }.joined(separator: " ") }
    }

    @Test("kill -9 during replay --rebuild: serve refuses (69, naming recover), recover finishes the job, serve runs and nothing is lost")
    func interruptedRebuild() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        try populate(box)
        let pushersBefore = try box.pusherRows()
        let logBefore = try box.replayRows()
        #expect(pushersBefore.count == 2 && logBefore.count == 34)
        #expect(pushersBefore.allSatisfy { (int($0["pending"]) ?? 0) > 0 })

        // Damage two projections so that the rebuild has something to replace.
        do {
            let store = try Store(dataDir: box.dataDir)
            defer { store.close() }
            for name in ["heads", "unread"] {
                let db = try store.env.database(name)
                try store.env.write { txn in try txn.clear(db) }
            }
        }

        let rebuild = try box.start(["replay", "--rebuild"], environment: ["TEST_PUSHLOG_PAUSE_REBUILD": "1"])
        let paused = poll(timeout: 60) { rebuild.stderrSoFar().contains("test pause: repair under way") || !rebuild.isRunning }
        #expect(paused && rebuild.isRunning, "the rebuild reached its first repair commit: \(rebuild.stderrSoFar())")
        rebuild.signal(SIGKILL)
        let killed = rebuild.wait(timeout: 30)
        #expect(killed.signaled && killed.status == SIGKILL, "\(killed)")

        let refused = try ServerProcess(dataDir: box.dataDir)
        #expect(refused.waitForEOF(timeout: 30), "serve exits by itself")
        refused.process.waitUntilExit()
        #expect(refused.process.terminationStatus == 69, "\(refused.stderrText)")
        #expect(refused.stderrText.contains("pushlog recover"), "\(refused.stderrText)")
        #expect(!refused.stderrText.contains("listening on"))
        #expect(try box.run(["stats"]).status == 0, "read-only commands still work")
        let compact = try box.run(["compact", "--retain", "0"])
        #expect(compact.status == 69 && compact.err.contains("pushlog recover"), "compact refuses too: \(compact)")

        let recover = try box.run(["recover"])
        #expect(recover.status == 0, "\(recover)")
        #expect(recover.out.contains("interrupted"), "\(recover.out)")
        let pushersAfter = try box.pusherRows()
        #expect(delivery(pushersAfter) == delivery(pushersBefore), "cursors, heads and pending are as before: \(pushersAfter) vs \(pushersBefore)")

        // No max age: the old test notifications stay pending rather than being given up.
        let config = try box.file("config.yaml", Data("push:\n  max_age: \"0\"\n".utf8))
        let server = try ServerProcess(dataDir: box.dataDir, extra: ["--config", config])
        #expect(server.waitUntilReady(), "serve starts after recover: \(server.stderrText)")
        #expect(server.stop()?.status == 0)

        // Serve may have skipped what was read (alice's first notification); every cursor stays
        // below its unread notifications, so they are all still to deliver.
        let served = try box.pusherRows()
        #expect(served.map { int($0["head"]) } == pushersBefore.map { int($0["head"]) })
        let pending = served.map { int($0["pending"]) ?? 0 }
        #expect(pending.count == 2 && (19...20).contains(pending[0]) && pending[1] == 10, "\(served)")
        #expect(canonical(try box.replayRows()) == canonical(logBefore), "every entry is still in the log")
        let check = try box.run(["replay", "--rebuild", "--json"])
        #expect(check.jsonRows().first?["clean"] as? Bool == true, "\(check.out)")
    }

    @Test("compact keeps each user's head: cursors never shows a head behind the cursor, also after a rebuild")
    func compactKeepsHeads() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let lines = (1...10).map { Make.notificationLine(user: $0 % 2 == 0 ? Self.alice : Self.bob, event: "$n\($0)", so: $0) }
        #expect(try box.run(["append", "notifications", box.file("n.jsonl", lines: lines)]).status == 0)  // 1...10
        let pushers = [Make.httpPusher(user: Self.alice, pushkey: "a"), Make.httpPusher(user: Self.bob, pushkey: "b")]
        #expect(try box.run(["pushers", "set", box.file("p.jsonl", lines: pushers.map(jsonLine))]).status == 0)  // 11, 12
        func heads() throws -> [String: Int64] {
            var out: [String: Int64] = [:]
            for row in try box.pusherRows(["cursors"]) {
                out[str(row["user_id"]) ?? ""] = int(row["head"])
                #expect((int(row["head"]) ?? -1) <= (int(row["cursor"]) ?? -1), "head behind the cursor: \(row)")
            }
            return out
        }
        #expect(try heads() == [Self.alice: 10, Self.bob: 9])
        let c = try box.run(["compact", "--retain", "0"])
        #expect(c.status == 0, "\(c)")
        #expect(int(try box.stats()["entries"]) ?? 99 < 12, "compact dropped entries")
        #expect(try heads() == [Self.alice: 10, Self.bob: 9], "compact keeps the heads")
        let rebuild = try box.run(["replay", "--rebuild", "--json"])
        #expect(rebuild.jsonRows().first?["clean"] as? Bool == true, "\(rebuild.out)")
        #expect(try heads() == [Self.alice: 10, Self.bob: 9])
    }

    @Test("read-only commands on a directory without a store say 'no store at D', exit 66 and create nothing",
          arguments: [["stats"], ["cursors"], ["pushers", "list"], ["replay"], ["recover", "--dry-run"]])
    func noStore(_ args: [String]) throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let missing = box.root.appendingPathComponent("missing").path
        let r = try box.start(args, dataDir: missing).wait(timeout: 60)
        #expect(r.status == 66, "\(r)")
        #expect(r.err.contains("no store at \(missing)"), "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: missing), "the directory was not created")

        let empty = box.root.appendingPathComponent("empty").path
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: false)
        let e = try box.start(args, dataDir: empty).wait(timeout: 60)
        #expect(e.status == 66, "\(e)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: empty).isEmpty, "nothing was created in it")
    }

    @Test("recover --dry-run runs beside a server, and sees a consistent store while appends land")
    func dryRunBesideServer() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        try populate(box)
        let server = try ServerProcess(dataDir: box.dataDir)
        defer { server.killHard() }
        #expect(server.waitUntilReadyOrRecord())
        let more = (100...2_099).map { Make.notificationLine(user: $0 % 2 == 0 ? Self.alice : Self.bob, event: "$m\($0)", so: $0) }
        let appender = try box.start(["append", "notifications", "--batch-size", "50", box.file("more.jsonl", lines: more)])
        let r = try box.run(["recover", "--dry-run", "--json"])
        #expect(r.status == 0, "\(r)")
        #expect(r.jsonRows().first?["projections_clean"] as? Bool == true, "\(r.out)")
        #expect(appender.wait(timeout: 60).status == 0)
        let refused = try box.run(["recover"])
        #expect(refused.status == 69, "a repairing recover still refuses beside a server: \(refused)")
        #expect(server.stop()?.status == 0)
    }

    @Test("a running server keeps LMDB's lock on lock.mdb, so a process opening the store after it does not reset the lock table",
          arguments: [false, true])
    func lmdbLockHeld(tightenFirst: Bool) throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        try populate(box)
        let head = try box.head()
        #expect(head != nil)
        // An older version's 0644 files: the open tightens them, by path (no descriptor of
        // lock.mdb may be opened and closed beside LMDB's own).
        if tightenFirst {
            chmod(box.dataDir + "/data.mdb", 0o644)
            chmod(box.dataDir + "/lock.mdb", 0o644)
        }
        let server = try ServerProcess(dataDir: box.dataDir)
        defer { server.killHard() }
        #expect(server.waitUntilReadyOrRecord())
        // LMDB holds a shared record lock on byte 0 of lock.mdb for as long as the environment
        // is open; the first process to open it takes that byte exclusively and resets the table.
        let fd = open(box.dataDir + "/lock.mdb", O_RDWR | O_CLOEXEC)
        #expect(fd >= 0)
        defer { close(fd) }
        var probe = flock()
        probe.l_type = Int16(F_WRLCK)
        probe.l_whence = Int16(SEEK_SET)
        probe.l_start = 0
        probe.l_len = 1
        #expect(fcntl(fd, F_GETLK, &probe) == 0)
        #expect(probe.l_type == Int16(F_RDLCK) && probe.l_pid == server.process.processIdentifier,
                "the server holds no lock on lock.mdb (l_type \(probe.l_type), pid \(probe.l_pid)): a reader would take itself for the first")
        #expect(mode(box.dataDir + "/lock.mdb") == 0o600 && mode(box.dataDir + "/data.mdb") == 0o600)
        // And so a reader beside it sees what was committed.
        #expect(try box.run(["stats", "--json"]).jsonRows().first.flatMap { int($0["entries"]) } == head)
        #expect(server.stop()?.status == 0)
    }

    @Test("read-only commands open the store without LMDB's writer lock: they answer while another process holds a write")
    func readersTakeNoWriterLock() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        try populate(box)
        let head = try box.head()
        // Another process's long write: this one's, holding a write transaction open.
        let store = try Store(dataDir: box.dataDir)
        let holding = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let writerDone = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            _ = try? store.env.write { _ in
                holding.signal()
                release.wait()
            }
            writerDone.signal()
        }
        holding.wait()
        // Opening its databases in write transactions, each command waited for that write to end.
        let stats = try box.run(["stats", "--json"], timeout: 15)
        let pushers = try box.run(["pushers", "list", "--json"], timeout: 15)
        release.signal()
        writerDone.wait()
        store.close()
        #expect(stats.status == 0, "stats did not answer beside a write: \(stats)")
        #expect(stats.jsonRows().first.flatMap { int($0["entries"]) } == head)
        #expect(pushers.status == 0 && pushers.jsonRows().count == 2, "pushers list did not answer beside a write: \(pushers)")
    }

    @Test("pushers remove that waits for a compact writes to the compacted data file, not to the one compact replaced")
    func removeWaitingForCompact() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        try populate(box)
        // What compact holds while it replaces data.mdb: appenders are kept out.
        var held: DataDirLock? = try DataDirLock.noAppenders(dataDir: box.dataDir)
        let remove = try box.start(["pushers", "remove", "--user", Self.alice, "--app-id", "com.example.app", "--pushkey", "a"])
        // It waits for the appenders' lock once it has opened that file.
        #expect(poll(timeout: 20) { openFiles(remove.pid).contains("append.lock") })
        _ = try Store.rewriteCompactly(dataDir: box.dataDir)
        held = nil
        withExtendedLifetime(held) {}
        let r = remove.wait(timeout: 30)
        #expect(r.status == 0, "\(r)")
        // Acknowledged, so in the store: a store opened before the swap wrote to the old file.
        let keys = try box.pusherRows().compactMap { str($0["pushkey"]) }
        #expect(keys == ["b"], "the removal that exited 0 is not in the store: pushers \(keys)")
    }

    /// The files a process has open, by the names of their paths' last components.
    func openFiles(_ pid: Int32) -> [String] {
        let fds = "/proc/\(pid)/fd"
        return ((try? FileManager.default.contentsOfDirectory(atPath: fds)) ?? []).compactMap { fd in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: fds + "/" + fd)).map { ($0 as NSString).lastPathComponent }
        }
    }

    @Test("a reader does not open the store while compact swaps data.mdb and removes lock.mdb, and opens it after")
    func readerWaitsForTheSwap() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        try populate(box)
        let head = try box.head()
        var swapping: DataDirLock? = try DataDirLock.replacingFiles(dataDir: box.dataDir)
        let stats = try box.start(["stats", "--json"])
        #expect(poll(timeout: 20) { openFiles(stats.pid).contains("open.lock") })
        // Waiting for the lock, it has opened neither LMDB file: it cannot pair the old lock.mdb
        // with the new data.mdb.
        let files = openFiles(stats.pid)
        #expect(!files.contains("lock.mdb") && !files.contains("data.mdb"), "\(files)")
        #expect(stats.isRunning)
        swapping = nil
        withExtendedLifetime(swapping) {}
        let r = stats.wait(timeout: 30)
        #expect(r.status == 0 && r.jsonRows().first.flatMap { int($0["entries"]) } == head, "\(r)")
    }

    @Test("the data directory is created 0700 and its files 0600, after serve and after compact, whatever the umask")
    func modes() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let old = umask(0o022)
        defer { umask(old) }
        let server = try ServerProcess(dataDir: box.dataDir)
        #expect(server.waitUntilReadyOrRecord())
        #expect(server.stop()?.status == 0)
        #expect(mode(box.dataDir) == 0o700, "\(String(mode(box.dataDir), radix: 8))")
        let afterServe = try entries(of: box.dataDir)
        #expect(afterServe["data.mdb"] != nil && afterServe["lock.mdb"] != nil && afterServe["pushlog.lock"] != nil)
        for (name, st) in afterServe { #expect(st.st_mode & 0o777 == 0o600, "\(name): \(String(st.st_mode & 0o777, radix: 8))") }

        try populate(box)
        #expect(try box.run(["compact", "--retain", "0"]).status == 0)
        #expect(try box.run(["replay", "--rebuild"]).status == 0)
        let afterCompact = try entries(of: box.dataDir)
        #expect(afterCompact["append.lock"] != nil && afterCompact["data.mdb"] != nil)
        #expect(mode(box.dataDir) == 0o700)
        for (name, st) in afterCompact { #expect(st.st_mode & 0o777 == 0o600, "\(name): \(String(st.st_mode & 0o777, radix: 8))") }
    }

    @Test("run as root on a directory owned by the service user, a command leaves every file to that user",
          .enabled(if: geteuid() == 0))
    func rootKeepsTheOwner() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let service: uid_t = 65_534
        #expect(mkdir(box.dataDir, 0o700) == 0)
        #expect(chown(box.dataDir, service, service) == 0)
        try populate(box)
        #expect(try box.run(["compact", "--retain", "0"]).status == 0)
        #expect(try box.run(["recover"]).status == 0)
        let files = try entries(of: box.dataDir)
        #expect(files["append.lock"] != nil && files["data.mdb"] != nil && files["pushlog.lock"] != nil)
        for (name, st) in files { #expect(st.st_uid == service && st.st_gid == service, "\(name): \(st.st_uid):\(st.st_gid)") }
    }
}

extension ServerProcess {
    /// Waits for serve to listen; records its stderr when it does not.
    func waitUntilReadyOrRecord(sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        let ready = waitUntilReady()
        if !ready { Issue.record("serve did not start: \(stderrText)", sourceLocation: sourceLocation) }
        return ready
    }
}
