import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The command line behaves alike everywhere: results on stdout (text, or JSON with --json),
/// only diagnostics on stderr, errors that say what was wanted, and no progress when stderr is
/// not a terminal.
@Suite("Command line consistency", .serialized)
struct ConsistencyTests {
    /// Every command, by its path.
    static let commands: [[String]] = [
        ["serve"], ["append", "notifications"], ["append", "receipts"], ["pushers", "list"], ["pushers", "set"],
        ["pushers", "remove"], ["cursors", "show"], ["cursors", "rewind"], ["replay"], ["recover"], ["compact"], ["stats"],
    ]

    @Test("no --help shows a sentinel default such as 18446744073709551615", arguments: commands)
    func noSentinelDefaults(_ command: [String]) throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let r = try box.runRaw(command + ["--help"])
        #expect(r.status == 0, "\(r)")
        for sentinel in [String(UInt64.max), String(Int64.max), String(Int.min), String(UInt32.max)] {
            #expect(!r.out.contains(sentinel), "\(command.joined(separator: " ")) --help shows \(sentinel):\n\(r.out)")
        }
    }

    @Test("a mistyped command gets a suggestion, as a mistyped flag does", arguments: [
        ("stat", "Did you mean 'stats'?"),
        ("pusher list", "Did you mean 'pushers'?"),
        ("pushers lst", "Did you mean 'list'?"),
        ("append notification -", "Did you mean 'notifications'?"),
        ("cursors rewnid --to 3", "Did you mean 'rewind'?"),
        ("frobnicate", "The commands are: serve, append,"),
    ])
    func suggestion(_ command: String, _ said: String) throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let args = command.split(separator: " ").map(String.init)
        let r = try box.runRaw(args)
        let unknown = args.first { !["pushers", "append", "cursors"].contains($0) }!
        #expect(r.status == 64, "\(r)")
        #expect(r.err.contains("Unknown command '\(unknown)'."), "\(r)")
        #expect(r.err.contains(said), "\(r)")
        #expect(r.out.isEmpty)
    }

    @Test("a bad number says what it wants", arguments: [
        (["replay", "--from", "abc"], "wants a log position, a whole number from 1"),
        (["replay", "--to", "0"], "wants a log position, a whole number from 1"),
        (["cursors", "rewind", "--to", "x"], "wants a log position, a whole number from 1"),
        (["append", "notifications", "--batch-size", "0"], "wants a whole number from 1"),
        (["pushers", "set", "--batch-size", "lots"], "wants a whole number from 1"),
    ])
    func badNumber(_ args: [String], _ wanted: String) throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let r = try box.run(args)
        #expect(r.status == 64, "\(r)")
        #expect(r.err.contains(wanted), "\(r)")
    }

    @Test("cannot read FILE says why")
    func cannotReadSaysWhy() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let missing = box.root.appendingPathComponent("missing.jsonl").path
        let append = try box.run(["append", "notifications", missing])
        #expect(append.status == 65, "\(append)")
        #expect(append.err.contains("cannot read \(missing): No such file or directory"), "\(append)")
        let set = try box.run(["pushers", "set", "--config", missing, "-"], stdin: Data())
        #expect(set.status == 64, "\(set)")
        #expect(set.err.contains("cannot read \(missing): No such file or directory"), "\(set)")
    }

    @Test("append, pushers set and remove, and cursors rewind print their result on stdout and nothing on stderr")
    func resultsOnStdout() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let notes = try box.file("n.jsonl", lines: (1...3).map { Make.notificationLine(event: "$e\($0)", so: $0) })
        let append = try box.run(["append", "notifications", notes])
        #expect(append.status == 0 && append.err.isEmpty, "\(append)")
        #expect(append.out == "appended 3 notifications at pos 1...3\n", "\(append)")
        let appendJSON = try box.run(["append", "receipts", "--json", "-"],
                                     stdin: Data((jsonLine(Make.receipt(event: "$e1", so: 1)) + "\n").utf8))
        #expect(appendJSON.status == 0 && appendJSON.err.isEmpty, "\(appendJSON)")
        #expect(canonical(appendJSON.jsonRows().first) == #"{"appended":1,"first_pos":4,"last_pos":4}"#)
        let nothing = try box.run(["append", "notifications", "--json", "-"], stdin: Data())
        #expect(canonical(nothing.jsonRows().first) == #"{"appended":0,"first_pos":null,"last_pos":null}"#, "\(nothing)")

        let pushers = try box.file("p.jsonl", lines: [jsonLine(Make.httpPusher(user: "@alice:example.org", pushkey: "pk1"))])
        let set = try box.run(["pushers", "set", pushers])
        #expect(set.status == 0 && set.err.isEmpty, "\(set)")
        #expect(set.out == "set 1 pusher at pos 5...5\n", "\(set)")

        let rewind = try box.run(["cursors", "rewind", "--to", "2"])
        #expect(rewind.status == 0 && rewind.err.isEmpty, "\(rewind)")
        #expect(rewind.outLines.last == "rewound 1 pusher to redeliver from pos 2", "\(rewind)")
        let rewindJSON = try box.run(["cursors", "rewind", "--to", "1", "--dry-run", "--json"])
        #expect(rewindJSON.status == 0 && rewindJSON.err.isEmpty, "\(rewindJSON)")
        #expect(rewindJSON.jsonRows().map(canonical)
            == [#"{"app_id":"com.example.app","cursor":0,"dry_run":true,"pushkey":"pk1","user_id":"@alice:example.org"}"#])

        let remove = try box.run(["pushers", "remove", "--user", "@alice:example.org", "--app-id", "com.example.app",
                                  "--pushkey", "pk1", "--json"])
        #expect(remove.status == 0 && remove.err.isEmpty, "\(remove)")
        #expect(canonical(remove.jsonRows().first)
            == #"{"pos":6,"removed":{"app_id":"com.example.app","pushkey":"pk1","user_id":"@alice:example.org"}}"#)

        let compact = try box.run(["compact", "--retain", "0s", "--json"])
        #expect(compact.status == 0 && compact.err.isEmpty, "\(compact)")
        #expect(int(compact.jsonRows().first?["bytes_after"]) ?? 0 > 0, "\(compact)")
    }

    @Test("append of a large file, replay --rebuild, recover and compact show no progress when stderr is not a terminal")
    func noProgressWhenPiped() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let big = box.root.appendingPathComponent("big.jsonl").path
        try Make.bigNotificationsFile(at: big, count: 60_000)
        for args in [["append", "notifications", big, "--batch-size", "1000"], ["replay", "--rebuild"], ["recover"],
                     ["compact", "--retain", "0s"]] {
            let r = try box.run(args, timeout: 120)
            #expect(r.status == 0, "\(args): \(r)")
            #expect(r.err.isEmpty, "\(args) wrote to stderr: \(r.err.prefix(300))")
            #expect(!r.out.contains("\r") && !r.out.contains("ETA"), "\(args): \(r.out.prefix(300))")
        }
    }

    @Test("serve on a port already in use says so plainly, exit 64, before any pusher starts")
    func portInUse() throws {
        let box = try Sandbox()
        defer { box.cleanup() }
        let (fd, port) = try listeningSocket()
        defer { close(fd) }
        let r = try box.run(["serve", "--listen", "127.0.0.1:\(port)"], timeout: 30)
        #expect(r.status == 64, "\(r)")
        #expect(r.errLines.count == 1, "\(r)")
        #expect(r.err.contains("cannot listen on 127.0.0.1:\(port): the port is already in use"), "\(r)")
        #expect(!r.err.contains("started pushers"), "\(r)")
    }

    /// A socket listening on 127.0.0.1 at a port the system picked.
    func listeningSocket() throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 1) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard ok else { throw HarnessError("cannot listen: errno \(errno)") }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }
}
