import Curl
import Foundation
import PushlogCore
import TestSupport

/// A real push gateway on 127.0.0.1 for the tests: `Tests/Support/push_gateway.py`, a small
/// Python HTTP server that records every body posted to /_matrix/push/v1/notify and answers as
/// told (ok, status, not JSON, text/html JSON, reject pushkeys, delay, drop the connection).
/// Waiting is done by long-polling the server (`waitForBodies`), never by sleeping.
final class TestGateway: @unchecked Sendable {
    private let child: ChildProcess
    let port: Int
    var url: String { "http://127.0.0.1:\(port)/_matrix/push/v1/notify" }

    init() throws {
        child = try PythonServer.start("push_gateway.py")
        // The server prints its port once it listens.
        guard let line = child.readLine(), let p = Int(line) else {
            child.kill()
            close(child.stdout)
            throw GatewayError.noPort
        }
        port = p
    }

    enum GatewayError: Error { case noPort, badAnswer }

    deinit {
        client.shutdown()
        child.kill()
        close(child.stdout)
    }

    private let client = try! CurlClient()

    private func request(_ method: String, _ path: String, body: String? = nil) async throws -> [UInt8] {
        let r = try await client.send(method: method, url: "http://127.0.0.1:\(port)\(path)",
                                      body: body.map { Array($0.utf8) } ?? [], headers: [:], timeout: .seconds(30))
        return r.body
    }

    /// How the gateway answers from now on.
    func setMode(_ mode: String = "ok", status: Int = 500, delayMS: Int = 0, reject: [String] = [],
                 contentType: String = "application/json") async throws {
        let body = JSON.object(["mode": .string(mode), "status": .int(Int64(status)), "delay_ms": .int(Int64(delayMS)),
                                "reject": .array(reject.map(JSON.string)), "content_type": .string(contentType)])
        _ = try await request("POST", "/_test/mode", body: body.text)
    }

    /// Waits (on the server) until at least `count` bodies have arrived, or `timeout` seconds.
    func waitForBodies(_ count: Int, timeout: Double = 10) async throws -> [(t: Int64, body: JSON)] {
        let data = try await request("GET", "/_test/bodies?count=\(count)&timeout=\(timeout)")
        guard case .array(let rows) = try JSON.parse(data) else { throw GatewayError.badAnswer }
        return rows.map { ($0["t"]?.intValue ?? 0, $0["body"] ?? .null) }
    }

    /// How often each "pushkey event_id" pair arrived, once every pair of `expected` has (or at
    /// the timeout). Each wait returns as soon as one more body than before has arrived.
    func deliveries(covering expected: Set<String>, timeout: Double) async throws -> [String: Int] {
        var seen: [String: Int] = [:]
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let bodies = try await waitForBodies(seen.values.reduce(0, +) + 1, timeout: deadline.timeIntervalSinceNow)
            seen = [:]
            for b in bodies {
                let pk = b.body["notification"]?["devices"]?.arrayValue?.first?["pushkey"]?.stringValue ?? ""
                let ev = b.body["notification"]?["event_id"]?.stringValue ?? ""
                seen["\(pk) \(ev)", default: 0] += 1
            }
            if expected.isSubset(of: Set(seen.keys)) { break }
        }
        return seen
    }

    func bodies() async throws -> [JSON] { try await waitForBodies(0, timeout: 0).map(\.body) }
}
