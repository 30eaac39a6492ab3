#!/usr/bin/env python3
"""A push gateway for Pushlog's tests (Python's http.server on 127.0.0.1).

Started by `TestGateway` (Tests/PushlogRuntimeTests/TestGateway.swift) through TestSupport's
`PythonServer`. It records every body posted to /_matrix/push/v1/notify and answers as told:
  - the first stdout line is the port number alone;
  - POST /_test/mode {"mode": ok|status|nonjson|drop, "status", "delay_ms", "reject": [pushkeys],
    "content_type"} sets how it answers from then on;
  - GET /_test/bodies?count=N&timeout=S waits (long poll) until N bodies have arrived, then
    answers [{"t": arrival ms, "body": ...}, ...].
The server exits when its stdin closes, so a test run that dies leaves no server behind.
"""
import json, os, sys, threading, time, socket
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

def exit_when_stdin_closes():
    # Exit with the test process, even if it was killed before it could stop us.
    sys.stdin.read()
    os._exit(0)
threading.Thread(target=exit_when_stdin_closes, daemon=True).start()

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
