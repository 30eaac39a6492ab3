import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Where the `pushlog` executable is: `PUSHLOG_BIN`, else next to the running test bundle (walking
/// up from it until a sibling file named `pushlog` exists).
enum PushlogBinary {
    static let url: URL? = {
        // A child that exits before reading its stdin must not kill the test process.
        signal(SIGPIPE, SIG_IGN)
        return try? URL(fileURLWithPath: pushlogBinary())
    }()

    static func require() throws -> URL {
        guard let url else {
            throw HarnessError("cannot find the pushlog executable (set PUSHLOG_BIN); started from \(CommandLine.arguments[0])")
        }
        return url
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The outcome of one run of the tool.
struct RunResult: CustomStringConvertible {
    var status: Int32
    var signaled: Bool
    var stdout: Data
    var stderr: Data
    var timedOut: Bool

    var out: String { String(decoding: stdout, as: UTF8.self) }
    var err: String { String(decoding: stderr, as: UTF8.self) }
    var outLines: [String] { out.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) }
    var errLines: [String] { err.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) }

    /// stdout as JSON Lines; a line that is not a JSON object fails the calling test.
    func jsonRows(sourceLocation: SourceLocation = #_sourceLocation) -> [[String: Any]] {
        var rows: [[String: Any]] = []
        for line in outLines {
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                Issue.record("stdout line is not a JSON object: \(line.prefix(200))", sourceLocation: sourceLocation)
                continue
            }
            rows.append(obj)
        }
        return rows
    }

    var description: String {
        "status \(status)\(signaled ? " (signal)" : "")\(timedOut ? " TIMED OUT" : ""); stderr: \(err.prefix(600)); stdout: \(out.prefix(300))"
    }
}

/// The environment for a child: ours without PUSHLOG_DATA_DIR (every run names --data-dir).
func childEnvironment() -> [String: String] {
    var env = ProcessInfo.processInfo.environment
    env.removeValue(forKey: "PUSHLOG_DATA_DIR")
    env.removeValue(forKey: "PUSHLOG_BIN")
    return env
}

/// A running `pushlog` process, its stdout and stderr going to files (no pipe can fill up).
final class PushlogProcess: @unchecked Sendable {
    let process = Process()
    let outURL: URL
    let errURL: URL
    private let exited = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var done = false

    /// `executable` and `prefix` run the tool under a wrapper: `executable prefix… pushlog args…`
    /// (the prefix names the binary).
    init(_ args: [String], stdin: Data? = nil, stdinFile: URL? = nil, scratch: URL, environment: [String: String] = [:],
         executable: URL? = nil, prefix: [String] = []) throws {
        let bin = try executable ?? PushlogBinary.require()
        let id = UUID().uuidString
        outURL = scratch.appendingPathComponent("out-\(id)")
        errURL = scratch.appendingPathComponent("err-\(id)")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        process.executableURL = bin
        process.arguments = prefix + args
        process.environment = childEnvironment().merging(environment) { $1 }
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        var stdinPipe: Pipe?
        if let stdinFile {
            process.standardInput = try FileHandle(forReadingFrom: stdinFile)
        } else if stdin != nil {
            let p = Pipe()
            stdinPipe = p
            process.standardInput = p
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        process.terminationHandler = { [exited] _ in exited.signal() }
        try process.run()
        if let stdinPipe, let stdin {
            // Written from another thread so a large input cannot block us against a full pipe.
            let writer = stdinPipe.fileHandleForWriting
            DispatchQueue.global().async {
                // The child may exit without reading everything: EPIPE, not a crash.
                try? writer.write(contentsOf: stdin)
                try? writer.close()
            }
        }
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    func signal(_ sig: Int32) { if process.isRunning { kill(process.processIdentifier, sig) } }

    /// Waits for the exit; on timeout kills the process (SIGKILL) and says so.
    func wait(timeout: Double) -> RunResult {
        var timedOut = false
        if exited.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = true
            kill(process.processIdentifier, SIGKILL)
            _ = exited.wait(timeout: .now() + 10)
        }
        process.waitUntilExit()
        return RunResult(status: process.terminationStatus,
                         signaled: process.terminationReason == .uncaughtSignal,
                         stdout: (try? Data(contentsOf: outURL)) ?? Data(),
                         stderr: (try? Data(contentsOf: errURL)) ?? Data(),
                         timedOut: timedOut)
    }

    /// What the process wrote to stderr so far.
    func stderrSoFar() -> String { String(decoding: (try? Data(contentsOf: errURL)) ?? Data(), as: UTF8.self) }
}

/// A fresh data directory (and scratch space for outputs) per test, removed by `cleanup()`.
final class Sandbox: @unchecked Sendable {
    let root: URL
    var dataDir: String { root.appendingPathComponent("data").path }

    init() throws {
        root = FileManager.default.temporaryDirectory
            .appendingPathComponent("pushlog-cli-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    func cleanup() { try? FileManager.default.removeItem(at: root) }

    /// Writes `data` to a file in the sandbox and returns its path.
    func file(_ name: String, _ data: Data) throws -> String {
        let url = root.appendingPathComponent(name)
        try data.write(to: url)
        return url.path
    }

    func file(_ name: String, lines: [String]) throws -> String {
        try file(name, Data((lines.joined(separator: "\n") + "\n").utf8))
    }

    /// Starts `pushlog ARGS --data-dir D`.
    func start(_ args: [String], stdin: Data? = nil, stdinFile: URL? = nil, dataDir: String? = nil,
               environment: [String: String] = [:]) throws -> PushlogProcess {
        try PushlogProcess(args + ["--data-dir", dataDir ?? self.dataDir], stdin: stdin, stdinFile: stdinFile, scratch: root,
                           environment: environment)
    }

    /// Runs `pushlog ARGS --data-dir D` to the end (at most `timeout` seconds).
    @discardableResult
    func run(_ args: [String], stdin: Data? = nil, timeout: Double = 60) throws -> RunResult {
        let p = try start(args, stdin: stdin)
        let r = p.wait(timeout: timeout)
        try? FileManager.default.removeItem(at: p.outURL)
        try? FileManager.default.removeItem(at: p.errURL)
        return r
    }

    /// Runs a command without adding `--data-dir` (for usage-error tests).
    func runRaw(_ args: [String], environment: [String: String] = [:], timeout: Double = 60) throws -> RunResult {
        let p = try PushlogProcess(args, scratch: root, environment: environment)
        return p.wait(timeout: timeout)
    }

    /// `stats --json`, parsed; records an issue and returns [:] when it fails.
    func stats(sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let r = try run(["stats", "--json"])
        #expect(r.status == 0, "stats --json failed: \(r)", sourceLocation: sourceLocation)
        let rows = r.jsonRows(sourceLocation: sourceLocation)
        #expect(rows.count == 1, "stats --json should print one object, got \(rows.count)", sourceLocation: sourceLocation)
        return rows.first ?? [:]
    }

    func head(sourceLocation: SourceLocation = #_sourceLocation) throws -> Int64? {
        int(try stats(sourceLocation: sourceLocation)["head"])
    }

    func replayRows(_ extra: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) throws -> [[String: Any]] {
        let r = try run(["replay", "--json"] + extra)
        #expect(r.status == 0, "replay --json \(extra) failed: \(r)", sourceLocation: sourceLocation)
        return r.jsonRows(sourceLocation: sourceLocation)
    }

    func pusherRows(_ args: [String] = ["pushers", "list"], sourceLocation: SourceLocation = #_sourceLocation) throws -> [[String: Any]] {
        let r = try run(args + ["--json"])
        #expect(r.status == 0, "\(args) --json failed: \(r)", sourceLocation: sourceLocation)
        return r.jsonRows(sourceLocation: sourceLocation)
    }
}

// MARK: JSON helpers

/// An integer JSON value (JSONSerialization gives NSNumber/Int).
func int(_ v: Any?) -> Int64? {
    switch v {
    case let i as Int: return Int64(i)
    case let i as Int64: return i
    case let n as NSNumber: return n.int64Value
    default: return nil
    }
}

func str(_ v: Any?) -> String? { v as? String }

func isNull(_ v: Any?) -> Bool { v is NSNull }

/// One compact JSON text for a dictionary (sorted keys), for equality checks of nested values.
func canonical(_ v: Any?) -> String {
    guard let v else { return "<absent>" }
    if v is NSNull { return "null" }
    if let d = try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .fragmentsAllowed]) {
        return String(decoding: d, as: UTF8.self)
    }
    return "\(v)"
}

func jsonLine(_ object: [String: Any]) -> String {
    let d = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    return String(decoding: d, as: UTF8.self)
}

// MARK: input makers

enum Make {
    static func notification(user: String = "@alice:example.org", room: String = "!room:example.org",
                             event: String, so: Int, body: String = "Hi!", thread: String? = nil,
                             receivedTS: Int64? = 1_732_900_000_000) -> [String: Any] {
        var o: [String: Any] = [
            "user_id": user, "room_id": room, "event_id": event, "stream_ordering": so,
            "actions": ["notify", ["set_tweak": "sound", "value": "default"] as [String: Any], ["set_tweak": "highlight"]],
            "event": ["type": "m.room.message", "sender": "@bob:example.org",
                      "content": ["msgtype": "m.text", "body": body]] as [String: Any],
        ]
        if let thread { o["thread_id"] = thread }
        if let receivedTS { o["received_ts"] = receivedTS }
        return o
    }

    static func notificationLine(user: String = "@alice:example.org", room: String = "!room:example.org",
                                 event: String, so: Int) -> String {
        jsonLine(notification(user: user, room: room, event: event, so: so))
    }

    static func receipt(user: String = "@alice:example.org", room: String = "!room:example.org", event: String,
                        so: Int, type: String = "m.read") -> [String: Any] {
        ["user_id": user, "room_id": room, "event_id": event, "stream_ordering": so, "receipt_type": type]
    }

    static func httpPusher(user: String, appID: String = "com.example.app", pushkey: String,
                           url: String = "https://push.example.org/_matrix/push/v1/notify",
                           kind: Any = "http") -> [String: Any] {
        ["user_id": user, "kind": kind, "app_id": appID, "pushkey": pushkey, "app_display_name": "Example",
         "device_display_name": "Phone", "lang": "en", "data": ["url": url]]
    }

    static func emailPusher(user: String, address: String) -> [String: Any] {
        ["user_id": user, "kind": "email", "app_id": "m.email", "pushkey": address, "app_display_name": "Email",
         "device_display_name": address, "lang": "en", "data": [String: Any]()]
    }

    /// A large notifications file generated fast (string building, not JSONSerialization):
    /// line i (1-based) has event_id `$e<i>`, stream_ordering 1000+i, user `@u<i%37>:example.org`,
    /// room `!r<i%11>:example.org`.
    static func bigNotificationsFile(at path: String, count: Int) throws {
        var s = ""
        s.reserveCapacity(count * 260)
        for i in 1...count {
            s += #"{"user_id":"@u\#(i % 37):example.org","room_id":"!r\#(i % 11):example.org","event_id":"$e\#(i)","stream_ordering":\#(1000 + i),"actions":["notify"],"received_ts":1732900000000,"event":{"type":"m.room.message","sender":"@bob:example.org","content":{"msgtype":"m.text","body":"message number \#(i)"}}}"#
            s += "\n"
        }
        try Data(s.utf8).write(to: URL(fileURLWithPath: path))
    }

    static func bigUser(_ i: Int) -> String { "@u\(i % 37):example.org" }
    static func bigRoom(_ i: Int) -> String { "!r\(i % 11):example.org" }
}

/// Polls `condition` every `interval` seconds until it holds or `timeout` passes.
func poll(timeout: Double, interval: Double = 0.02, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        usleep(UInt32(interval * 1_000_000))
    }
    return try condition()
}

/// Checks that `rows` have pos 1, 2, …, n in order; returns n (or nil when not contiguous).
@discardableResult
func expectContiguous(_ rows: [[String: Any]], from first: Int64 = 1,
                      sourceLocation: SourceLocation = #_sourceLocation) -> Int64? {
    var expected = first
    for row in rows {
        guard let pos = int(row["pos"]), pos == expected else {
            Issue.record("expected pos \(expected), got \(String(describing: row["pos"]))", sourceLocation: sourceLocation)
            return nil
        }
        expected += 1
    }
    return expected - 1
}

/// `pushlog serve` in the background, its stderr read through a pipe so a test can wait for the
/// line it prints once it holds the data dir.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    private let stderrPipe = Pipe()
    private let cond = NSCondition()
    private var buffer = Data()
    private var eof = false

    init(dataDir: String, extra: [String] = []) throws {
        process.executableURL = try PushlogBinary.require()
        // Port 0: the system picks a free port, so no two servers (or anything else) collide.
        process.arguments = ["serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0"] + extra
        process.environment = childEnvironment()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = stderrPipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let handle = stderrPipe.fileHandleForReading
        let thread = Thread { [self] in
            while true {
                let chunk = handle.availableData
                cond.lock()
                if chunk.isEmpty { eof = true } else { buffer.append(chunk) }
                cond.broadcast()
                cond.unlock()
                if chunk.isEmpty { break }
            }
        }
        thread.start()
    }

    var stderrText: String {
        cond.lock(); defer { cond.unlock() }
        return String(decoding: buffer, as: UTF8.self)
    }

    /// What serve prints once it holds the data dir and listens.
    static let readyMarkers = ["pushlog serve: listening on"]

    /// Waits until serve says it is ready (holds the data dir).
    func waitUntilReady(timeout: Double = 30) -> Bool {
        waitForLine(containingAnyOf: Self.readyMarkers, timeout: timeout)
    }

    /// Waits until a complete stderr line containing `needle` has arrived; false on timeout or EOF.
    func waitForLine(containing needle: String, timeout: Double) -> Bool {
        waitForLine(containingAnyOf: [needle], timeout: timeout)
    }

    func waitForLine(containingAnyOf needles: [String], timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        cond.lock(); defer { cond.unlock() }
        while true {
            let text = String(decoding: buffer, as: UTF8.self)
            if text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().contains(where: { line in needles.contains { line.contains($0) } }) {
                return true
            }
            if eof { return false }
            if !cond.wait(until: deadline) { return false }
        }
    }

    /// Waits until stderr is closed (the process is gone), at most `timeout` seconds.
    func waitForEOF(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        cond.lock(); defer { cond.unlock() }
        while !eof { if !cond.wait(until: deadline) { return false } }
        return true
    }

    /// Sends `sig` and waits for the exit; returns (status, exited normally) or nil on timeout (then kills).
    func stop(_ sig: Int32 = SIGTERM, timeout: Double = 20) -> (status: Int32, normalExit: Bool)? {
        if process.isRunning { kill(process.processIdentifier, sig) }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        process.waitUntilExit()
        return (process.terminationStatus, process.terminationReason == .exit)
    }

    func killHard() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}
