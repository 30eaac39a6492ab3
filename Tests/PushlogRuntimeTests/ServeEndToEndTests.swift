import Curl
import Foundation
import PushlogCore
import Testing
import TestSupport

/// Runs `pushlog` to completion with `stdin`; returns its exit status. The environment is the
/// test's, with ``ServeProcess/defaultEnvironment`` (gateways on 127.0.0.1 allowed).
@discardableResult
func pushlog(_ args: [String], stdin: String = "") throws -> (status: Int32, out: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: try pushlogBinary())
    p.arguments = args
    p.environment = ProcessInfo.processInfo.environment.merging(ServeProcess.defaultEnvironment) { $1 }
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

        var server = try ServeProcess(dataDir: dir)
        var lines: [String] = []
        for i in 0..<100 {
            lines.append(#"{"user_id":"\#(users[i % 10])","room_id":"!r:example.org","event_id":"$e\#(i)","stream_ordering":\#(i + 1),"actions":["notify"],"event":{"type":"m.room.message","sender":"@bob:example.org","content":{"body":"\#(i)"}}}"#)
        }
        #expect(try pushlog(["append", "notifications", "--data-dir", dir], stdin: lines.joined(separator: "\n")).status == 0)
        _ = try await gateway.waitForBodies(20)
        server.stop(SIGKILL)

        server = try ServeProcess(dataDir: dir)
        let expected = Set((0..<100).map { "pk-\(users[$0 % 10]) $e\($0)" })
        let seen = try await gateway.deliveries(covering: expected, timeout: 30)
        #expect(expected.isSubset(of: Set(seen.keys)), "missing: \(expected.subtracting(seen.keys).sorted().prefix(5))")
        // A crash may repeat what was in flight or not yet committed: at most a few per pusher.
        let duplicates = seen.values.reduce(0) { $0 + $1 - 1 }
        #expect(duplicates <= 20, "\(duplicates) duplicates")
        #expect(server.stop(SIGTERM) == .exited(0))
        // Every cursor is durable once its push was acknowledged: nothing lags after a clean stop.
        let lagging = try pushlog(["cursors", "--lagging", "--json", "--data-dir", dir])
        #expect(lagging.status == 0 && lagging.out.isEmpty)
    }

    @Test("50 pushers, 1,000 notifications posted to the API while the gateway is slow, SIGKILL mid-way: every acknowledged push arrives")
    func apiKillNine() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-e2e-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gateway = try TestGateway()
        try await gateway.setMode("ok", delayMS: 5)
        let users = (0..<50).map { "@user\($0):example.org" }
        var server = try ServeProcess(dataDir: dir)
        let client = try CurlClient()
        defer { client.shutdown() }
        func call(_ method: String, _ path: String, _ body: JSON) async throws -> HTTPResponse {
            try await client.send(method: method, url: "http://127.0.0.1:\(server.port)\(path)", body: body.serialized(),
                                  headers: ["Content-Type": "application/json"], timeout: .seconds(30))
        }
        for u in users {
            let r = try await call("PUT", "/v1/pushers", .object([
                "user_id": .string(u), "kind": .string("http"), "app_id": .string("org.example"), "pushkey": .string("pk-\(u)"),
                "app_display_name": .string("A"), "device_display_name": .string("D"), "lang": .string("en"),
                "data": .object(["url": .string(gateway.url)]),
            ]))
            #expect(r.status == 200)
        }
        var acknowledged = Set<String>()
        var killed = false
        for batch in 0..<20 {
            let notes: [JSON] = (0..<50).map { k in
                let i = batch * 50 + k
                return .object(["user_id": .string(users[i % 50]), "room_id": .string("!r:example.org"), "event_id": .string("$e\(i)"),
                                "stream_ordering": .int(Int64(i + 1)), "actions": .array([.string("notify")]),
                                "event": .object(["type": .string("m.room.message"), "sender": .string("@bob:example.org")])])
            }
            let r = try await call("POST", "/v1/notifications", .object(["notifications": .array(notes)]))
            #expect(r.status == 200)
            if r.status == 200 {
                for i in (batch * 50)..<(batch * 50 + 50) { acknowledged.insert("pk-\(users[i % 50]) $e\(i)") }
            }
            if batch == 9 {
                // Kill mid-way, once some pushes are out; post the rest to the restarted server.
                _ = try await gateway.waitForBodies(100)
                server.stop(SIGKILL)
                server = try ServeProcess(dataDir: dir, port: server.port)
                killed = true
            }
        }
        #expect(killed)
        let seen = try await gateway.deliveries(covering: acknowledged, timeout: 60)
        #expect(acknowledged.count == 1_000)
        #expect(acknowledged.isSubset(of: Set(seen.keys)), "missing \(acknowledged.subtracting(seen.keys).count)")
        let duplicates = seen.values.reduce(0) { $0 + $1 - 1 }
        // What was in flight (one per pusher) or answered but not yet committed at the kill (the
        // cursor advances are lazy commits, later on a loaded machine: CI once saw 109) is sent
        // again; a cursor that was not kept at all would repeat all ~500 pushes sent before it.
        #expect(duplicates <= 250, "\(duplicates) duplicates")
        #expect(server.stop(SIGTERM) == .exited(0))
    }

    @Test("a graceful SIGTERM mid-delivery loses and repeats nothing")
    func gracefulStop() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-e2e-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gateway = try TestGateway()
        try await gateway.setMode("ok", delayMS: 20)
        let users = (0..<20).map { "@user\($0):example.org" }
        let pushers = users.map { u in
            #"{"user_id":"\#(u)","kind":"http","app_id":"org.example","pushkey":"pk-\#(u)","app_display_name":"A","device_display_name":"D","lang":"en","data":{"url":"\#(gateway.url)"}}"#
        }.joined(separator: "\n")
        #expect(try pushlog(["pushers", "set", "--data-dir", dir], stdin: pushers).status == 0)
        let lines = (0..<200).map { i in
            #"{"user_id":"\#(users[i % 20])","room_id":"!r:example.org","event_id":"$e\#(i)","stream_ordering":\#(i + 1),"actions":["notify"],"event":{"type":"m.room.message","sender":"@bob:example.org"}}"#
        }
        #expect(try pushlog(["append", "notifications", "--data-dir", dir], stdin: lines.joined(separator: "\n")).status == 0)
        var server = try ServeProcess(dataDir: dir)
        _ = try await gateway.waitForBodies(40)
        #expect(server.stop(SIGTERM) == .exited(0))
        server = try ServeProcess(dataDir: dir)
        let expected = Set((0..<200).map { "pk-\(users[$0 % 20]) $e\($0)" })
        let seen = try await gateway.deliveries(covering: expected, timeout: 30)
        #expect(expected.isSubset(of: Set(seen.keys)), "missing \(expected.subtracting(seen.keys).count)")
        #expect(seen.values.allSatisfy { $0 == 1 }, "repeated: \(seen.filter { $0.value > 1 }.keys.sorted().prefix(5))")
        #expect(server.stop(SIGTERM) == .exited(0))
    }
}
