#!/usr/bin/env python3
"""A real Synapse for Pushlog's tests, driven as a Matrix client would drive it.

Run it with the venv Tools/synapse-env.sh makes (.build/venv/bin/python). It reads one JSON
command per line on stdin and answers one JSON line on stdout: {"ok": true, ...} or
{"ok": false, "error": "..."}. Its log goes to stderr. When stdin closes (the test process
ended, however it ended) it stops everything it started and removes its directories.

What it runs, all on 127.0.0.1:
- a push gateway recording every body posted to /_matrix/push/v1/notify (the same one as
  Tests/PushlogRuntimeTests/TestGateway.swift: arrival time in ms, and "reject" answers);
- a PostgreSQL cluster of its own in a temp directory, started once (on the first
  start_synapse with database "postgresql"), as the `postgres` user when we are root;
- Synapse 1.163 on SQLite or PostgreSQL, a new database for each start_synapse, pushing by
  itself (`pusher_instances: [master]`) or not at all (`pusher_instances: []`, for Pushlog).

Commands (fields besides "cmd"):
  gateway                                 -> url
  gateway_mode      reject=[pushkey], status=0 (0: answer 200)
  gateway_bodies    count, timeout=10, since=0  -> bodies [{t, body}] (waits for `count` in all)
  start_synapse     database=sqlite|postgresql, pushers=true -> url, database_url, dir
  stop_synapse
  register          user, displayname -> user_id, access_token (shared-secret admin API)
  create_room       user, name=None, invite=[], is_direct=false, preset=private_chat -> room_id
  join              user, room
  invite            user, room, target
  leave             user, room
  set_room_name     user, room, name
  set_pusher        user, pushkey, app_id, url, format=None, data={} (more keys for `data`)
  delete_pusher     user, pushkey, app_id
  send              user, room, kind=plain|mention|encrypted|thread, body, mention=[user_id],
                    thread_root -> event_id
  receipt           user, room, event_id, type=m.read, thread_id=None
  sql               query -> rows (against the running Synapse's database)
  wait_background_updates  timeout=120
  postgres_stop / postgres_start          (the cluster: for "database goes away" tests)
  shutdown
"""
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SHARED_SECRET = "pushlog-test-shared-secret"
children = []        # every process we started, stopped at the end
temp_dirs = []


def log(*args):
    print("synapse_harness:", *args, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- gateway

class Gateway:
    """The test gateway: records bodies; answers {"rejected": [...]} or a status."""

    def __init__(self):
        self.lock = threading.Condition()
        self.bodies = []     # [{"t": ms, "body": {...}}]
        self.reject = []
        self.status = 0
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *a):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != "/_matrix/push/v1/notify":
                    return self.reply(404, {"errcode": "M_UNRECOGNIZED"})
                with gateway.lock:
                    gateway.bodies.append({"t": int(time.time() * 1000), "body": json.loads(raw),
                                           "user_agent": self.headers.get("User-Agent", "")})
                    gateway.lock.notify_all()
                    reject, status = list(gateway.reject), gateway.status
                if status:
                    return self.reply(status, {"error": "failing on purpose"})
                devices = json.loads(raw).get("notification", {}).get("devices", [])
                self.reply(200, {"rejected": [d["pushkey"] for d in devices if d.get("pushkey") in reject]})

            def reply(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            request_queue_size = 256
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/_matrix/push/v1/notify" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count, timeout, since):
        deadline = time.time() + timeout
        with self.lock:
            while len(self.bodies) - since < count and time.time() < deadline:
                self.lock.wait(max(0.01, deadline - time.time()))
            return self.bodies[since:]


def flatten(value, path="", out=None):
    """{path: JSON text of the leaf}, for field-by-field comparison (JSON's own types kept:
    Swift's JSONSerialization cannot tell true from 1)."""
    out = {} if out is None else out
    if isinstance(value, dict):
        if not value:
            out[path] = "{}"
        for k, v in value.items():
            flatten(v, k if not path else path + "." + k, out)
    elif isinstance(value, list):
        if not value:
            out[path] = "[]"
        for i, v in enumerate(value):
            flatten(v, "%s[%d]" % (path, i), out)
    else:
        out[path] = json.dumps(value)
    return out


# ---------------------------------------------------------------- PostgreSQL

class Postgres:
    """Its own cluster in a temp directory: trust auth, superuser `synapse`, C locale."""

    def __init__(self):
        bins = sorted(d for d in os.listdir("/usr/lib/postgresql"))
        self.bin = "/usr/lib/postgresql/%s/bin" % bins[-1]
        self.dir = tempfile.mkdtemp(prefix="pushlog-pg-")
        temp_dirs.append(self.dir)
        # PostgreSQL refuses to run as root. Not runuser: it turns our SIGINT (a fast
        # shutdown) into SIGTERM then SIGKILL; the postmaster must be our own child.
        self.as_user = {"cwd": self.dir}
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user.update(user="postgres", group="postgres", extra_groups=[])
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        subprocess.run([self.bin + "/initdb", "-D", self.data, "-U", "synapse", "--auth=trust",
                                       "-E", "UTF8", "--locale=C", "--no-sync"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **self.as_user)
        self.process = None
        self.start()
        self.count = 0

    def start(self):
        # Not pg_ctl: it puts the postmaster in a session of its own, out of our process group.
        self.process = subprocess.Popen(
            [self.bin + "/postgres", "-D", self.data, "-k", self.dir, "-p", str(self.port),
                            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                            "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                            "-c", "max_connections=200", "-c", "logging_collector=off"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **self.as_user)
        children.append(self.process)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                import psycopg2
                psycopg2.connect(host="127.0.0.1", port=self.port, user="synapse", dbname="postgres").close()
                return
            except Exception:
                if self.process.poll() is not None:
                    raise RuntimeError("postgres exited %s" % self.process.returncode)
                time.sleep(0.1)
        raise RuntimeError("postgres did not start")

    def stop(self):
        if self.process and self.process.poll() is None:
            # SIGINT: a fast shutdown (clients are disconnected, then a checkpoint).
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def create_database(self):
        import psycopg2
        self.count += 1
        name = "synapse%d" % self.count
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="synapse", dbname="postgres")
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE %s ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0" % name)
        conn.close()
        return name

    def drop_database(self, name):
        """Drops a finished Synapse's database: removing a cluster of many at the end takes minutes
        on a busy disk."""
        import psycopg2
        try:
            conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="synapse", dbname="postgres")
            conn.autocommit = True
            conn.cursor().execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
            conn.close()
        except Exception as e:
            log("could not drop", name, repr(e))


# ---------------------------------------------------------------- Synapse

RATE_LIMIT = {"per_second": 10000, "burst_count": 100000}


def homeserver_yaml(d, port, database, pushers):
    config = {
        "server_name": "localhost",
        "public_baseurl": "http://127.0.0.1:%d/" % port,
        "pid_file": os.path.join(d, "homeserver.pid"),
        "listeners": [{"port": port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
                       "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}]}],
        "database": database,
        "log_config": os.path.join(d, "log.yaml"),
        "media_store_path": os.path.join(d, "media"),
        "registration_shared_secret": SHARED_SECRET,
        "bcrypt_rounds": 4,     # registering 100 users must not take minutes
        "report_stats": False,
        "macaroon_secret_key": "pushlog-test-macaroon",
        "form_secret": "pushlog-test-form",
        "signing_key_path": os.path.join(d, "signing.key"),
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        # No federation: nothing goes out but pushes to the test gateway.
        "federation_domain_whitelist": [],
        # Synapse's pusher checks the gateway's address against its blocklist: allow loopback.
        "ip_range_whitelist": ["127.0.0.1"],
        "pusher_instances": ["master"] if pushers else [],
        "background_updates": {"sleep_enabled": False},
        "enable_metrics": False,
        "presence": {"enabled": False},
        "url_preview_enabled": False,
        "rc_message": RATE_LIMIT, "rc_registration": RATE_LIMIT, "rc_room_creation": RATE_LIMIT,
        "rc_login": {"address": RATE_LIMIT, "account": RATE_LIMIT, "failed_attempts": RATE_LIMIT},
        "rc_joins": {"local": RATE_LIMIT, "remote": RATE_LIMIT},
        "rc_joins_per_room": RATE_LIMIT,
        "rc_invites": {"per_room": RATE_LIMIT, "per_user": RATE_LIMIT, "per_issuer": RATE_LIMIT},
        "rc_admin_redaction": RATE_LIMIT,
        "rc_3pid_validation": RATE_LIMIT,
        "rc_presence": {"per_user": RATE_LIMIT},
    }
    log_config = {
        "version": 1,
        "formatters": {"precise": {"format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "formatter": "precise",
                              "filename": os.path.join(d, "homeserver.log")}},
        "loggers": {"synapse.storage.SQL": {"level": "WARNING"}},
        "root": {"level": "INFO", "handlers": ["file"]},
        "disable_existing_loggers": False,
    }
    with open(os.path.join(d, "homeserver.yaml"), "w") as f:
        json.dump(config, f, indent=1)   # JSON is YAML
    with open(os.path.join(d, "log.yaml"), "w") as f:
        json.dump(log_config, f, indent=1)
    from signedjson.key import generate_signing_key, write_signing_keys
    with open(os.path.join(d, "signing.key"), "w") as f:
        write_signing_keys(f, [generate_signing_key("a_test")])


class Synapse:
    def __init__(self, database_kind, pushers, postgres):
        self.dir = tempfile.mkdtemp(prefix="pushlog-synapse-")
        temp_dirs.append(self.dir)
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        if database_kind == "sqlite":
            path = os.path.join(self.dir, "homeserver.db")
            database = {"name": "sqlite3", "args": {"database": path}}
            self.database_url = "sqlite://" + path
            self.sqlite_path = path
            self.pg_name = None
        elif database_kind == "postgresql":
            name = postgres.create_database()
            database = {"name": "psycopg2", "args": {"user": "synapse", "host": "127.0.0.1", "port": postgres.port,
                                                      "database": name, "cp_min": 1, "cp_max": 10}}
            self.database_url = "postgresql://synapse@127.0.0.1:%d/%s" % (postgres.port, name)
            self.pg_name = name
            self.pg_port = postgres.port
        else:
            raise ValueError("database must be sqlite or postgresql")
        homeserver_yaml(self.dir, self.port, database, pushers)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "synapse.app.homeserver", "-c", os.path.join(self.dir, "homeserver.yaml")],
            cwd=self.dir, stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "stderr.log"), "ab"))
        children.append(self.process)
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("synapse exited %s: %s" % (self.process.returncode, self.tail()))
            try:
                urllib.request.urlopen(self.base + "/health", timeout=2).read()
                return
            except Exception:
                time.sleep(0.2)
        raise RuntimeError("synapse did not start: " + self.tail())

    def tail(self):
        out = ""
        for name in ("stderr.log", "homeserver.log"):
            try:
                out += open(os.path.join(self.dir, name)).read()[-3000:]
            except OSError:
                pass
        return out

    def stop(self, postgres=None):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if postgres is not None and self.pg_name is not None:
            postgres.drop_database(self.pg_name)
        if not os.environ.get("SYNAPSE_HARNESS_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def sql(self, query, args=()):
        if self.pg_name is None:
            conn = sqlite3.connect(self.sqlite_path, timeout=30)
            try:
                rows = conn.execute(query, args).fetchall()
                conn.commit()
                return [list(r) for r in rows]
            finally:
                conn.close()
        import psycopg2
        conn = psycopg2.connect(host="127.0.0.1", port=self.pg_port, user="synapse", dbname=self.pg_name)
        try:
            cur = conn.cursor()
            cur.execute(query.replace("?", "%s"), args)
            rows = cur.fetchall() if cur.description else []
            conn.commit()
            return [list(r) for r in rows]
        finally:
            conn.close()

    def request(self, method, path, body=None, token=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise RuntimeError("%s %s -> %d %s" % (method, path, e.code, e.read()[:500].decode("utf-8", "replace")))


# ---------------------------------------------------------------- the client side

class Harness:
    def __init__(self):
        self.gateway = None
        self.postgres = None
        self.synapse = None
        self.tokens = {}     # user id -> access token
        self.txn = 0

    def user(self, name):
        return name if name.startswith("@") else "@%s:localhost" % name

    def token(self, name):
        return self.tokens[self.user(name)]

    def next_txn(self):
        self.txn += 1
        return "t%d-%d" % (os.getpid(), self.txn)

    def room_path(self, room):
        return "/_matrix/client/v3/rooms/" + urllib.parse.quote(room, safe="")

    # each do_X answers a command X
    def do_gateway(self, c):
        if self.gateway is None:
            self.gateway = Gateway()
        return {"url": self.gateway.url}

    def do_gateway_mode(self, c):
        with self.gateway.lock:
            self.gateway.reject = list(c.get("reject", []))
            self.gateway.status = int(c.get("status", 0))
        return {}

    def do_gateway_bodies(self, c):
        bodies = self.gateway.wait(int(c.get("count", 0)), float(c.get("timeout", 10)), int(c.get("since", 0)))
        return {"bodies": [dict(b, flat=flatten(b["body"])) for b in bodies]}

    def do_start_synapse(self, c):
        if self.synapse is not None:
            self.synapse.stop(self.postgres)
        kind = c.get("database", "sqlite")
        if kind == "postgresql" and self.postgres is None:
            self.postgres = Postgres()
        self.tokens = {}
        self.synapse = Synapse(kind, bool(c.get("pushers", True)), self.postgres)
        return {"url": self.synapse.base, "database_url": self.synapse.database_url, "dir": self.synapse.dir}

    def do_stop_synapse(self, c):
        if self.synapse is not None:
            self.synapse.stop(self.postgres)
            self.synapse = None
        return {}

    def do_register(self, c):
        s = self.synapse
        name = c["user"]
        nonce = s.request("GET", "/_synapse/admin/v1/register")["nonce"]
        password = "pw-" + name
        mac = hmac.new(SHARED_SECRET.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([nonce.encode(), name.encode(), password.encode(), b"notadmin"]))
        body = {"nonce": nonce, "username": name, "password": password, "admin": False, "mac": mac.hexdigest()}
        if c.get("displayname"):
            body["displayname"] = c["displayname"]
        r = s.request("POST", "/_synapse/admin/v1/register", body)
        self.tokens[r["user_id"]] = r["access_token"]
        return {"user_id": r["user_id"], "access_token": r["access_token"]}

    def do_create_room(self, c):
        body = {"preset": c.get("preset", "private_chat"), "invite": [self.user(u) for u in c.get("invite", [])],
                "is_direct": bool(c.get("is_direct", False))}
        if c.get("name"):
            body["name"] = c["name"]
        r = self.synapse.request("POST", "/_matrix/client/v3/createRoom", body, self.token(c["user"]))
        return {"room_id": r["room_id"]}

    def do_join(self, c):
        self.synapse.request("POST", "/_matrix/client/v3/join/" + urllib.parse.quote(c["room"], safe=""), {}, self.token(c["user"]))
        return {}

    def do_invite(self, c):
        self.synapse.request("POST", self.room_path(c["room"]) + "/invite", {"user_id": self.user(c["target"])}, self.token(c["user"]))
        return {}

    def do_leave(self, c):
        self.synapse.request("POST", self.room_path(c["room"]) + "/leave", {}, self.token(c["user"]))
        return {}

    def do_set_room_name(self, c):
        path = self.room_path(c["room"]) + "/state/m.room.name/"
        self.synapse.request("PUT", path, {"name": c["name"]}, self.token(c["user"]))
        return {}

    def do_set_pusher(self, c):
        data = dict(c.get("data", {}))
        data["url"] = c["url"]
        if c.get("format"):
            data["format"] = c["format"]
        body = {"kind": "http", "app_id": c["app_id"], "pushkey": c["pushkey"], "app_display_name": "Pushlog test",
                "device_display_name": "test device", "lang": "en", "data": data, "append": False}
        self.synapse.request("POST", "/_matrix/client/v3/pushers/set", body, self.token(c["user"]))
        return {}

    def do_delete_pusher(self, c):
        body = {"kind": None, "app_id": c["app_id"], "pushkey": c["pushkey"]}
        self.synapse.request("POST", "/_matrix/client/v3/pushers/set", body, self.token(c["user"]))
        return {}

    def do_send(self, c):
        kind = c.get("kind", "plain")
        text = c.get("body", "hello")
        event_type = "m.room.message"
        if kind == "plain":
            content = {"msgtype": "m.text", "body": text}
        elif kind == "mention":
            content = {"msgtype": "m.text", "body": text, "m.mentions": {"user_ids": [self.user(u) for u in c.get("mention", [])]}}
        elif kind == "encrypted":
            event_type = "m.room.encrypted"
            content = {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEnAC0Kqq", "device_id": "TESTDEV",
                       "sender_key": "c2VuZGVyX2tleQ", "session_id": "c2Vzc2lvbl9pZA"}
        elif kind == "thread":
            content = {"msgtype": "m.text", "body": text,
                       "m.relates_to": {"rel_type": "m.thread", "event_id": c["thread_root"],
                                        "is_falling_back": True, "m.in_reply_to": {"event_id": c["thread_root"]}}}
        else:
            raise ValueError("unknown kind " + kind)
        path = "%s/send/%s/%s" % (self.room_path(c["room"]), event_type, self.next_txn())
        r = self.synapse.request("PUT", path, content, self.token(c["user"]))
        return {"event_id": r["event_id"]}

    def do_receipt(self, c):
        body = {}
        if c.get("thread_id"):
            body["thread_id"] = c["thread_id"]
        path = "%s/receipt/%s/%s" % (self.room_path(c["room"]), c.get("type", "m.read"), urllib.parse.quote(c["event_id"], safe=""))
        self.synapse.request("POST", path, body, self.token(c["user"]))
        return {}

    def do_sql(self, c):
        return {"rows": self.synapse.sql(c["query"], tuple(c.get("args", [])))}

    def do_wait_background_updates(self, c):
        deadline = time.time() + float(c.get("timeout", 120))
        while time.time() < deadline:
            if not self.synapse.sql("SELECT update_name FROM background_updates"):
                return {}
            time.sleep(0.2)
        raise RuntimeError("background updates still running")

    def do_postgres_stop(self, c):
        self.postgres.stop()
        return {}

    def do_postgres_start(self, c):
        self.postgres.start()
        return {}


def cleanup():
    for p in reversed(children):
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGINT if p.args and "postgres" in str(p.args) else signal.SIGTERM)
                p.wait(20)
            except Exception:
                p.kill()
    for d in temp_dirs:
        if not os.environ.get("SYNAPSE_HARNESS_KEEP"):
            shutil.rmtree(d, ignore_errors=True)


def main():
    # A process group of our own, holding everything we start: the test kills it whole.
    try:
        os.setsid()
    except OSError:
        pass    # already a group leader: the group is ours
    harness = Harness()
    out = sys.stdout
    sys.stdout = sys.stderr     # nothing else may write to the protocol stream
    try:
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            try:
                c = json.loads(line)
                if c["cmd"] == "shutdown":
                    break
                answer = getattr(harness, "do_" + c["cmd"])(c)
                answer["ok"] = True
            except Exception as e:
                log("command failed:", line[:200], repr(e))
                answer = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
            out.write(json.dumps(answer) + "\n")
            out.flush()
    finally:
        cleanup()
        out.write(json.dumps({"ok": True, "bye": True}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
