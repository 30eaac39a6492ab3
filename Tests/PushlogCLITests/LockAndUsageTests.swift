import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("pushlog beside a running server (the data-dir lock)")
struct LockTests {
    static let alice = "@alice:example.org"

    /// A data dir with a pusher that a rewind to 1 would move, and a few notifications.
    /// Notifications, then a pusher (which starts at the head): a server started on this has
    /// nothing to deliver, so it changes nothing by itself.
    func seed(_ box: Sandbox) throws {
        let n = try box.run(["append", "notifications", box.file("n.jsonl", lines: (1...4).map { Make.notificationLine(event: "$s\($0)", so: $0) })])
        #expect(n.status == 0, "\(n)")
        let p = try box.run(["pushers", "set", box.file("p.jsonl", lines: [jsonLine(Make.httpPusher(user: Self.alice, pushkey: "a"))])])
        #expect(p.status == 0, "\(p)")
    }

    /// Everything a rewriting command could change, as text.
    func snapshot(_ box: Sandbox) throws -> String {
        let replay = try box.run(["replay", "--json"])
        let cursors = try box.run(["cursors", "--json"])
        let pushers = try box.run(["pushers", "list", "--json"])
        #expect(replay.status == 0 && cursors.status == 0 && pushers.status == 0)
        return replay.out + "\n--\n" + cursors.out + "\n--\n" + pushers.out
    }

    @Test("while serve holds the data dir, rewriting commands exit 69 and change nothing; append and the read-only commands work; SIGTERM stops serve with exit 0")
    func rewritingCommandsRefusedBesideServer() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        try seed(box)
        let before = try snapshot(box)

        let server = try ServerProcess(dataDir: box.dataDir)
        defer { server.killHard() }
        #expect(server.waitUntilReady(), "serve printed its line: \(server.stderrText)")
        #expect(server.process.isRunning)

        let refused: [[String]] = [
            ["cursors", "rewind", "--to", "1"],
            ["cursors", "rewind", "--since", "1h"],
            ["replay", "--rebuild"],
            ["recover"],
            ["compact"],
            ["compact", "--retain", "0"],
        ]
        for args in refused {
            let r = try box.run(args, timeout: 30)
            #expect(r.status == 69, "\(args.joined(separator: " ")) beside a server: \(r)")
            #expect(r.errLines.count == 1, "\(args.joined(separator: " ")): one stderr line, got \(r.errLines)")
        }
        #expect(try snapshot(box) == before, "refused commands changed nothing")

        // A second server is refused too.
        let second = try box.run(["serve", "--listen", "127.0.0.1:0"], timeout: 10)
        #expect(second.status == 69, "a second serve on the same data dir: \(second)")

        // append and the read-only commands still work.
        let headBefore = try box.head() ?? -1
        let app = try box.run(["append", "notifications", "-"], stdin: Data((Make.notificationLine(event: "$live", so: 99) + "\n").utf8))
        #expect(app.status == 0, "append beside a server: \(app)")
        #expect(try box.head() == headBefore + 1)
        let rec = try box.run(["append", "receipts", "-"], stdin: Data((jsonLine(Make.receipt(event: "$live", so: 99)) + "\n").utf8))
        #expect(rec.status == 0, "append receipts beside a server: \(rec)")
        for args in [["replay"], ["replay", "--json"], ["stats"], ["stats", "--json"], ["pushers", "list"],
                     ["pushers", "list", "--json"], ["cursors"], ["cursors", "--lagging", "--json"], ["recover", "--dry-run"]] {
            let r = try box.run(args, timeout: 30)
            #expect(r.status == 0, "\(args.joined(separator: " ")) beside a server: \(r)")
        }
        let rows = try box.replayRows()
        #expect(expectContiguous(rows) == headBefore + 2)
        #expect(server.process.isRunning, "the server is still running")

        let stop = server.stop(SIGTERM)
        #expect(stop != nil, "serve stopped within the timeout after SIGTERM")
        #expect(stop?.status == 0 && stop?.normalExit == true, "serve exits 0 on SIGTERM: \(String(describing: stop)); \(server.stderrText)")

        // Now the rewriting commands may run.
        let recover = try box.run(["recover"])
        #expect(recover.status == 0, "recover after the server stopped: \(recover)")
        let rewind = try box.run(["cursors", "rewind", "--to", "1"])
        #expect(rewind.status == 0, "rewind after the server stopped: \(rewind)")
        #expect(int(try box.pusherRows(["cursors"]).first?["cursor"]) == 0)
    }

    @Test("serve stops cleanly (exit 0) on SIGINT or SIGTERM sent as soon as it has said it holds the data dir")
    func serveStopsOnSignalRightAfterReadyLine() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        // Several rounds: a supervisor may signal at any moment after the ready line.
        for round in 0..<30 {
            let sig = round % 2 == 0 ? SIGINT : SIGTERM
            let server = try ServerProcess(dataDir: box.dataDir)
            defer { server.killHard() }
            guard server.waitUntilReady() else {
                Issue.record("round \(round): serve did not print its line: \(server.stderrText)")
                return
            }
            let stop = server.stop(sig, timeout: 5)
            let name = sig == SIGINT ? "SIGINT" : "SIGTERM"
            #expect(stop != nil, "round \(round): serve ignored \(name) sent right after its ready line (still running after 5 s)")
            if let stop {
                #expect(stop.status == 0 && stop.normalExit,
                        "round \(round): serve should exit 0 on \(name), got \(stop.normalExit ? "exit \(stop.status)" : "killed by signal \(stop.status)")")
            }
            if stop == nil || stop?.status != 0 || stop?.normalExit != true { break }
        }
    }

    @Test("a server killed with SIGKILL leaves no lock behind: recover and rewind run afterwards")
    func killedServerReleasesLock() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        try seed(box)
        let server = try ServerProcess(dataDir: box.dataDir)
        #expect(server.waitUntilReady(), "\(server.stderrText)")
        let refused = try box.run(["recover"])
        #expect(refused.status == 69, "recover beside a server: \(refused); server: \(server.stderrText)")
        server.killHard()
        #expect(server.waitForEOF(timeout: 10))
        let recover = try box.run(["recover"])
        #expect(recover.status == 0, "\(recover)")
        let rewind = try box.run(["cursors", "rewind", "--to", "1"])
        #expect(rewind.status == 0, "\(rewind)")
    }
}

@Suite("pushlog usage errors")
struct UsageTests {
    @Test("bad usage exits 64 with a message on stderr and touches nothing",
          arguments: [
              ["cursors", "rewind"],
              ["cursors", "rewind", "--to", "3", "--since", "1h"],
              ["cursors", "rewind", "--since", "yesterday-ish"],
              ["cursors", "rewind", "--to", "0"],
              ["cursors", "rewind", "--to", "-3"],
              ["frobnicate"],
              ["append", "bananas"],
              ["append", "notifications", "--batch-size", "0"],
              ["replay", "--type", "bogus"],
              ["replay", "--from", "x"],
              ["compact", "--retain", "forever"],
              ["pushers", "remove", "--user", "@a:example.org"],
              ["stats", "--no-such-flag"],
          ])
    func usageError(_ args: [String]) throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let seed = try box.run(["append", "notifications", "-"], stdin: Data((Make.notificationLine(event: "$1", so: 1) + "\n").utf8))
        #expect(seed.status == 0)
        let before = try box.run(["replay", "--json"]).out
        let r = try box.run(args)
        #expect(r.status == 64, "\(args.joined(separator: " ")): \(r)")
        #expect(!r.err.isEmpty, "\(args.joined(separator: " ")): says what was wrong on stderr")
        #expect(try box.run(["replay", "--json"]).out == before)
    }

    @Test("serve with a bad email setting or a broken override template exits 64 with one line naming it",
          arguments: [
              ("email:\n  smtp_url: smtp://127.0.0.1:1\n  notif_from: \"Pushlog <<noreply>\"\n", "email.notif_from"),
              ("email:\n  smtp_url: ftp://127.0.0.1:1\n", "email.smtp_url"),
              ("email:\n  smtp_url: smtp://127.0.0.1:1\n  template_dir: TEMPLATES\n", "notif_mail.txt"),
          ])
    func badEmailConfig(_ yaml: String, _ named: String) throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let templates = box.root.appendingPathComponent("templates")
        try FileManager.default.createDirectory(at: templates, withIntermediateDirectories: true)
        try Data("{{#rooms}} never closed\n".utf8).write(to: templates.appendingPathComponent("notif_mail.txt"))
        let config = box.root.appendingPathComponent("pushlog.yaml")
        try Data(yaml.replacingOccurrences(of: "TEMPLATES", with: templates.path).utf8).write(to: config)
        let r = try box.run(["serve", "--config", config.path, "--listen", "127.0.0.1:0"], timeout: 30)
        #expect(r.status == 64, "\(r)")
        #expect(r.errLines.count == 1 && r.err.contains(named), "\(r.errLines)")
    }

    @Test("a subcommand without --data-dir uses PUSHLOG_DATA_DIR, not the current directory")
    func dataDirFromEnvironment() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let p = Process()
        p.executableURL = try PushlogBinary.require()
        p.arguments = ["append", "notifications", "-"]
        var env = childEnvironment()
        env["PUSHLOG_DATA_DIR"] = box.dataDir
        p.environment = env
        p.currentDirectoryURL = box.root
        let stdin = Pipe()
        p.standardInput = stdin
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        try? stdin.fileHandleForWriting.write(contentsOf: Data((Make.notificationLine(event: "$env", so: 1) + "\n").utf8))
        try stdin.fileHandleForWriting.close()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(try box.head() == 1, "the entry went to PUSHLOG_DATA_DIR")
        #expect(!FileManager.default.fileExists(atPath: box.root.appendingPathComponent("pushlog-data").path))
    }
}
