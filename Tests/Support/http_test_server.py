#!/usr/bin/env python3
"""The HTTP test server for the Curl tests (Python's http.server on 127.0.0.1).

Started by `TestServer` (Tests/CurlTests/TestServer.swift) through TestSupport's `PythonServer`.

It prints its port as the first stdout line, then one line per notable event, which tests
wait for instead of sleeping:
- `delay <tag>` when a `/delay` request has arrived;
- `closed <tag>` when the client closed the connection while `/delay` was still waiting;
- `drop` when `/drop` is about to close without answering.

Routes (any method):
- `/echo`: 200, `Content-Type: application/json`, the request body back; request headers
  starting with `X-` and the request's Content-Type come back prefixed with `X-Echo-`, the
  method as `X-Echo-Method`.
- `/headers`: 200, a JSON object of the request's headers starting with `X-` (names in lower
  case), in the body: for a client that does not read the answer's headers.
- `/sygnal`: 200, `Content-Type: text/html`, body `{"rejected":[]}` (what Sygnal does).
- `/delay?ms=N&tag=T`: answers like `/echo` after N ms, unless the client goes away first.
- `/status/N`: status N with a small JSON body.
- `/redirect?to=URL`: 302 with `Location: URL`.
- `/drop`: reads the request, then closes the connection without a byte of answer.
- `/big?bytes=N`: N bytes with a Content-Length; `/big-chunked?bytes=N`: N bytes chunked.
- `/stats`: `{"connections": distinct client ports seen, "requests": count}`.

Why the handler settings: without `disable_nagle_algorithm` a keep-alive exchange stalls
~40 ms (Nagle + delayed ACK); the default listen backlog of 5 drops connections under a
burst. The server exits when its stdin closes, so a crashed test run leaves no orphan.
"""

import json, os, select, socket, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

lock = threading.Lock()
client_ports = set()
request_count = 0

def emit(line):
    with lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_GET(self): self.route()
    def do_POST(self): self.route()
    def do_PUT(self): self.route()
    def do_DELETE(self): self.route()
    def do_HEAD(self): self.route()

    def reply(self, status, body, content_type, extra=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def echo(self, body):
        extra = [("X-Echo-Method", self.command)]
        for name, value in self.headers.items():
            if name.lower().startswith("x-") or name.lower() == "content-type":
                extra.append(("X-Echo-" + name, value))
        self.reply(200, body, "application/json", extra)

    def route(self):
        global request_count
        with lock:
            client_ports.add(self.client_address[1])
            request_count += 1
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path
        if path == "/echo":
            self.echo(body)
        elif path == "/headers":
            seen = {k.lower(): v for k, v in self.headers.items() if k.lower().startswith("x-")}
            self.reply(200, json.dumps(seen).encode(), "application/json")
        elif path == "/sygnal":
            self.reply(200, b'{"rejected":[]}', "text/html")
        elif path == "/delay":
            tag = query.get("tag", "")
            emit("delay " + tag)
            # Wait for the delay, or until the client closes its end (readable + EOF).
            readable, _, _ = select.select([self.connection], [], [], int(query["ms"]) / 1000)
            if readable and self.connection.recv(1, socket.MSG_PEEK) == b"":
                emit("closed " + tag)
                self.close_connection = True
                return
            self.echo(body)
        elif path.startswith("/status/"):
            status = int(path[len("/status/"):])
            self.reply(status, json.dumps({"status": status}).encode(), "application/json")
        elif path == "/redirect":
            self.reply(302, b"{}", "application/json", [("Location", query["to"])])
        elif path == "/drop":
            emit("drop")
            self.close_connection = True
        elif path == "/big":
            self.reply(200, b"x" * int(query["bytes"]), "application/octet-stream")
        elif path == "/big-chunked":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            remaining = int(query["bytes"])
            while remaining > 0:
                n = min(remaining, 1000)
                self.wfile.write(b"%x\r\n%s\r\n" % (n, b"x" * n))
                remaining -= n
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/stats":
            with lock:
                stats = {"connections": len(client_ports), "requests": request_count}
            self.reply(200, json.dumps(stats).encode(), "application/json")
        else:
            self.reply(404, b"{}", "application/json")

class Server(ThreadingHTTPServer):
    request_queue_size = 256
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that gave up (timeout, cancellation) is what several tests do on purpose.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)

def exit_when_stdin_closes():
    sys.stdin.read()
    os._exit(0)

server = Server(("127.0.0.1", 0), Handler)
threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
emit(str(server.server_address[1]))
server.serve_forever()
