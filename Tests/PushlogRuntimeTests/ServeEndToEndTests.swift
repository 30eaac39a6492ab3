import Foundation
import PushlogCore
import Testing

/// The real `pushlog` binary, built beside this test bundle.
func pushlogBinary() throws -> String {
    if let p = ProcessInfo.processInfo.environment["PUSHLOG_BIN"] { return p }
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    for _ in 0..<6 {
        let candidate = dir.appendingPathComponent("pushlog").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    throw CocoaError(.fileNoSuchFile)
}

/// Runs `pushlog` to completion with `stdin`; returns its exit status.
@discardableResult
func pushlog(_ args: [String], stdin: String = "") throws -> (status: Int32, out: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: try pushlogBinary())
    p.arguments = args
    let input = Pipe(), output = Pipe()
    p.standardInput = input
    p.standardOutput = output
    p.standardError = FileHandle.nullDevice
    try p.run()
    input.fileHandleForWriting.write(Data(stdin.utf8))
    try input.fileHandleForWriting.close()
    let out = output.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: out, as: UTF8.self))
}

/// `pushlog serve` in the background; `start()` returns once its boot line is out.
final class Server {
    let process = Process()
    let errors = Pipe()

    init(dataDir: String) throws {
        process.executableURL = URL(fileURLWithPath: try pushlogBinary())
        process.arguments = ["serve", "--data-dir", dataDir]
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // The boot line of the contract says the check is done and loops are starting.
        var text = ""
        while !text.contains("started pushers:") {
            let chunk = errors.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw CocoaError(.fileReadUnknown) }
            text += String(decoding: chunk, as: UTF8.self)
        }
        // Keep draining stderr so the server never blocks on a full pipe.
        let handle = errors.fileHandleForReading
        Thread.detachNewThread { while !handle.availableData.isEmpty {} }
    }

    func kill9() { kill(process.processIdentifier, SIGKILL) }

    /// SIGTERM, then the exit status (polling the pid: Foundation's wait can hang in tests).
    func terminate() -> Int32 {
        kill(process.processIdentifier, SIGTERM)
        var status: Int32 = 0
        while waitpid(process.processIdentifier, &status, 0) < 0 && errno == EINTR {}
        return (status >> 8) & 0xFF
    }
}

@Suite("pushlog serve end to end", .serialized)
struct ServeEndToEndTests {
    @Test("serve delivers what pushlog append adds, and a SIGKILL mid-way loses nothing that was appended")
    func killNineLosesNothing() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-e2e-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gateway = try TestGateway()
        try await gateway.setMode("ok", delayMS: 20)
        let users = (0..<10).map { "@user\($0):example.org" }
        let pushers = users.map { u in
            #"{"user_id":"\#(u)","kind":"http","app_id":"org.example","pushkey":"pk-\#(u)","app_display_name":"A","device_display_name":"D","lang":"en","data":{"url":"\#(gateway.url)"}}"#
        }.joined(separator: "\n")
        #expect(try pushlog(["pushers", "set", "--data-dir", dir], stdin: pushers).status == 0)

        var server = try Server(dataDir: dir)
        var lines: [String] = []
        for i in 0..<100 {
            lines.append(#"{"user_id":"\#(users[i % 10])","room_id":"!r:example.org","event_id":"$e\#(i)","stream_ordering":\#(i + 1),"actions":["notify"],"event":{"type":"m.room.message","sender":"@bob:example.org","content":{"body":"\#(i)"}}}"#)
        }
        #expect(try pushlog(["append", "notifications", "--data-dir", dir], stdin: lines.joined(separator: "\n")).status == 0)
        _ = try await gateway.waitForBodies(20)
        server.kill9()
        _ = server.terminate()  // reap

        server = try Server(dataDir: dir)
        let expected = Set((0..<100).map { "pk-\(users[$0 % 10]) $e\($0)" })
        var seen: [String: Int] = [:]
        let deadline = Date().addingTimeInterval(30)
        // Each wait returns as soon as one more body than before has arrived (or at the deadline).
        while Date() < deadline {
            let bodies = try await gateway.waitForBodies(seen.values.reduce(0, +) + 1, timeout: deadline.timeIntervalSinceNow)
            seen = [:]
            for b in bodies {
                let pk = b.body["notification"]?["devices"]?.arrayValue?.first?["pushkey"]?.stringValue ?? ""
                let ev = b.body["notification"]?["event_id"]?.stringValue ?? ""
                seen["\(pk) \(ev)", default: 0] += 1
            }
            if expected.isSubset(of: Set(seen.keys)) { break }
        }
        #expect(expected.isSubset(of: Set(seen.keys)), "missing: \(expected.subtracting(seen.keys).sorted().prefix(5))")
        // A crash may repeat what was in flight or not yet committed: at most a few per pusher.
        let duplicates = seen.values.reduce(0) { $0 + $1 - 1 }
        #expect(duplicates <= 20, "\(duplicates) duplicates")
        #expect(server.terminate() == 0)
        // Every cursor is durable once its push was acknowledged: nothing lags after a clean stop.
        let lagging = try pushlog(["cursors", "--lagging", "--json", "--data-dir", dir])
        #expect(lagging.status == 0 && lagging.out.isEmpty)
    }
}
