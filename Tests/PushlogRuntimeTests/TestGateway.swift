import Curl
import Foundation
import PushlogCore

/// A real push gateway on 127.0.0.1 for the tests: a small Python HTTP server that records every
/// body posted to /_matrix/push/v1/notify and answers as told (ok, status, not JSON, text/html
/// JSON, reject pushkeys, delay, drop the connection). Waiting is done by long-polling the
/// server (`waitForBodies`), never by sleeping.
final class TestGateway: @unchecked Sendable {
    let process: Process
    let port: Int
    var url: String { "http://127.0.0.1:\(port)/_matrix/push/v1/notify" }

    static let script = #"""
import json, os, sys, threading, time, socket
os.unlink(__file__)
parent = os.getppid()
def watch_parent():
    # Exit with the test process, even if it was killed before it could stop us.
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)
threading.Thread(target=watch_parent, daemon=True).start()
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

lock = threading.Condition()
bodies = []   # (arrival time ms, body)
mode = {"mode": "ok", "status": 500, "delay_ms": 0, "reject": [], "content_type": "application/json"}

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def log_message(self, *a): pass
    def reply(self, status, body, ctype="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        if self.path.startswith("/_test/bodies"):
            q = dict(p.split("=") for p in self.path.split("?", 1)[1].split("&")) if "?" in self.path else {}
            want = int(q.get("count", "0")); timeout = float(q.get("timeout", "10"))
            deadline = time.time() + timeout
            with lock:
                while len(bodies) < want and time.time() < deadline:
                    lock.wait(deadline - time.time())
                out = [{"t": t, "body": b} for t, b in bodies]
            self.reply(200, json.dumps(out))
        else:
            self.reply(404, "{}")
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        if self.path == "/_test/mode":
            with lock:
                mode.clear(); mode.update({"mode": "ok", "status": 500, "delay_ms": 0, "reject": [], "content_type": "application/json"})
                mode.update(json.loads(raw))
            return self.reply(200, "{}")
        if self.path != "/_matrix/push/v1/notify":
            return self.reply(404, '{"errcode":"M_UNRECOGNIZED"}')
        with lock:
            m = dict(mode)
        if m["delay_ms"]:
            time.sleep(m["delay_ms"] / 1000)
        with lock:
            bodies.append((int(time.time() * 1000), json.loads(raw)))
            lock.notify_all()
        if m["mode"] == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if m["mode"] == "status":
            return self.reply(m["status"], '{"error":"failing on purpose"}')
        if m["mode"] == "nonjson":
            return self.reply(200, "OK, not JSON", "text/plain")
        self.reply(200, json.dumps({"rejected": m["reject"]}), m["content_type"])

class S(ThreadingHTTPServer):
    request_queue_size = 256
    daemon_threads = True
    def handle_error(self, request, client_address):
        pass  # clients dropping connections (a killed server) are expected here

s = S(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""#

    init() throws {
        let scriptURL = FileManager.default.temporaryDirectory.appendingPathComponent("pushlog-gateway-\(UUID().uuidString).py")
        try Self.script.write(to: scriptURL, atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", scriptURL.path]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        // The server prints its port once it listens.
        var line: [UInt8] = []
        while true {
            let b = out.fileHandleForReading.readData(ofLength: 1)
            guard let c = b.first else { throw GatewayError.noPort }
            if c == 0x0A { break }
            line.append(c)
        }
        guard let p = Int(String(decoding: line, as: UTF8.self)) else { throw GatewayError.noPort }
        port = p
    }

    enum GatewayError: Error { case noPort, badAnswer }

    deinit {
        client.shutdown()
        // Not waitUntilExit: Foundation's wait can hang inside Swift Testing; SIGKILL needs no wait.
        kill(process.processIdentifier, SIGKILL)
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
