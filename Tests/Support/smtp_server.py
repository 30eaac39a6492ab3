#!/usr/bin/env python3
"""A real SMTP server for Pushlog's tests (aiosmtpd on 127.0.0.1).

Started by the Swift harness `TestSMTPServer` (Tests/PushlogMailTests/TestSMTPServer.swift)
through TestSupport's `PythonServer`.
Protocol on stdout, one line each, so tests await lines instead of sleeping:
  - the first line is the port number alone;
  - then one JSON object per line, each with an "event":
      {"event": "message", "n": 1, "mail_from": ..., "rcpt_tos": [...], "tls": bool,
       "auth": user-or-null, "raw": base64 of the bytes received (dot-stuffing undone),
       "content_type": ..., "headers": [[name, decoded value], ...],
       "parts": [{"content_type", "charset", "cte", "body"}], "defects": [...]}
        for every message accepted (parsed by Python's `email` package, policy.default);
      {"event": "session", "tls": bool, "auth": user-or-null, "verbs": ["EHLO", "MAIL", ...]}
        when a client connection closes (the commands it sent, in order);
      {"event": "mode", "mode": ...} acknowledging a mode change;
      {"event": "delaying", "ms": MS} when a slow answer (slow, slow-rcpt) starts.
Modes (flag --mode at start, or a line "mode <MODE>" on stdin at any time):
  accept | reject-rcpt:CODE | reject-data:CODE | slow:MS (delay before answering the end of
  DATA) | slow-rcpt:MS (delay before answering RCPT TO).
Other flags: --auth USER:PASS (AUTH PLAIN/LOGIN required, also without TLS),
  --tls none|starttls|implicit with --cert FILE --key FILE.
The server exits when its stdin closes, so a test run that dies leaves no server behind.
"""

import argparse
import asyncio
import base64
import email
import email.policy
import json
import logging
import ssl
import sys
import threading
import warnings

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError:
    sys.stderr.write(
        "smtp_server.py: the Python package aiosmtpd is not installed; "
        "Tools/python-venv.sh installs it into .build/venv, where the tests look first\n")
    sys.exit(3)


# aiosmtpd warns about AUTH without TLS (wanted here) on every start.
warnings.simplefilter("ignore")
logging.getLogger("mail.log").setLevel(logging.ERROR)


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def parse_mode(text):
    name, _, arg = text.partition(":")
    if name == "accept" and not arg:
        return (name, 0)
    if name in ("reject-rcpt", "reject-data", "slow", "slow-rcpt", "slow-reject") and arg.isdigit():
        return (name, int(arg))
    raise ValueError("unknown mode %r" % text)


class State:
    mode = ("accept", 0)
    count = 0


def uses_tls(server):
    transport = server.transport
    return transport is not None and transport.get_extra_info("ssl_object") is not None


def describe(data):
    """What Python's email package makes of the message."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    parts = []
    defects = [type(d).__name__ for d in msg.defects]
    for part in (msg.iter_parts() if msg.is_multipart() else [msg]):
        defects += [type(d).__name__ for d in part.defects]
        try:
            body = part.get_content()
        except Exception as error:  # the test reports it
            body = "<undecodable: %s>" % error
        parts.append({
            "content_type": part.get_content_type(),
            "charset": part.get_content_charset(),
            "cte": part.get("Content-Transfer-Encoding"),
            "body": body if isinstance(body, str) else repr(body),
        })
    headers = []
    for name, value in msg.items():
        try:
            headers.append([name, str(value)])
        except Exception as error:
            headers.append([name, "<undecodable: %s>" % error])
    return {
        "content_type": msg.get_content_type(),
        "headers": headers,
        "parts": parts,
        "defects": defects,
    }


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        name, code = State.mode
        if name == "reject-rcpt":
            return "%d %s.1.1 recipient refused by the test server" % (code, code // 100)
        if name == "slow-rcpt":
            emit({"event": "delaying", "ms": code})
            await asyncio.sleep(code / 1000)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        name, arg = State.mode
        if name == "slow":
            emit({"event": "delaying", "ms": arg})
            await asyncio.sleep(arg / 1000)
        elif name == "reject-data":
            return "%d %s.7.1 message refused by the test server" % (arg, arg // 100)
        elif name == "slow-reject":
            emit({"event": "delaying", "ms": arg})
            await asyncio.sleep(arg / 1000)
            return "451 4.3.0 message refused by the test server, slowly"
        State.count += 1
        data = envelope.original_content or envelope.content
        event = {
            "event": "message",
            "n": State.count,
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "tls": uses_tls(server),
            "auth": auth_user(session),
            "raw": base64.b64encode(data).decode("ascii"),
        }
        event.update(describe(data))
        emit(event)
        return "250 OK: queued as %d" % State.count


def auth_user(session):
    data = getattr(session, "auth_data", None)
    if session.authenticated and isinstance(data, LoginPassword):
        return data.login.decode("utf-8", "replace")
    return None


class RecordingSMTP(SMTP):
    """aiosmtpd's SMTP that remembers the verbs of its session and reports them at close."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.verbs = []
        self.saw_tls = False
        for verb, method in list(self._smtp_methods.items()):
            self._smtp_methods[verb] = self._recording(verb, method)

    def _recording(self, verb, method):
        async def recorded(arg):
            self.verbs.append(verb)
            self.saw_tls = self.saw_tls or uses_tls(self)
            return await method(arg)
        return recorded

    def connection_lost(self, error):
        if self.session is not None and not getattr(self, "_reported", False):
            self._reported = True
            emit({"event": "session", "tls": self.saw_tls or uses_tls(self),
                  "auth": auth_user(self.session), "verbs": self.verbs})
        super().connection_lost(error)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="accept")
    parser.add_argument("--auth")
    parser.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--port", type=int, default=0)
    options = parser.parse_args()
    State.mode = parse_mode(options.mode)

    context = None
    if options.tls != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(options.cert, options.key)

    authenticator = None
    if options.auth:
        user, _, password = options.auth.partition(":")

        def authenticator(server, session, envelope, mechanism, data):
            ok = (isinstance(data, LoginPassword)
                  and data.login == user.encode() and data.password == password.encode())
            # handled=False: aiosmtpd then answers 535 itself.
            return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    def factory():
        return RecordingSMTP(
            Handler(),
            hostname="localhost",
            decode_data=False,
            tls_context=context if options.tls == "starttls" else None,
            require_starttls=False,
            authenticator=authenticator,
            auth_required=authenticator is not None,
            auth_require_tls=False,
        )

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(
        factory, "127.0.0.1", options.port, reuse_address=True,
        ssl=context if options.tls == "implicit" else None))
    print(server.sockets[0].getsockname()[1], flush=True)

    def set_mode(text):
        try:
            State.mode = parse_mode(text)
            emit({"event": "mode", "mode": text})
        except ValueError as error:
            emit({"event": "error", "error": str(error)})

    def read_stdin():
        for line in sys.stdin:
            command, _, arg = line.strip().partition(" ")
            if command == "mode":
                loop.call_soon_threadsafe(set_mode, arg)
        loop.call_soon_threadsafe(loop.stop)

    threading.Thread(target=read_stdin, daemon=True).start()
    loop.run_forever()


if __name__ == "__main__":
    main()
