#!/usr/bin/env python3
"""Message -> gateway lag through a real Synapse on PostgreSQL (issue 12, "Measure").

A steady RATE messages/s for SECONDS into a room of MEMBERS users, each with an http pusher.
Synapse pushes by itself (pusher_instances: [master]) and, in the same run, `pushlog serve`
follows Synapse's database and pushes the same pushers: both post to one gateway, which tells
them apart by User-Agent (Synapse sends "Synapse/…", Pushlog's libcurl none). Lag is
origin_server_ts (from Synapse's events table) to the gateway's arrival time.

Run by Tools/synapse-lag-bench.sh with the venv's python.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import synapse_harness as h  # noqa: E402

GATEWAY = r'''
import sys, time
from twisted.internet import reactor
from twisted.web import server, resource
out = open(sys.argv[1], "w", buffering=1 << 16)
class Notify(resource.Resource):
    isLeaf = True
    def render_POST(self, request):
        import json
        t = int(time.time() * 1000)
        n = json.loads(request.content.read()).get("notification", {})
        ua = (request.getHeader("user-agent") or "")
        who = "synapse" if ua.startswith("Synapse") else "pushlog"
        for d in n.get("devices", []):
            out.write("%d %s %s %s\n" % (t, who, n.get("event_id") or "-", d.get("pushkey")))
        request.setHeader(b"content-type", b"application/json")
        return b'{"rejected":[]}'
    def render_GET(self, request):
        out.flush()
        return b"{}"
site = server.Site(Notify())
port = reactor.listenTCP(0, site, interface="127.0.0.1", backlog=1024)
print(port.getHost().port, flush=True)
reactor.run()
'''


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pushlog", required=True)
    ap.add_argument("--members", type=int, default=100)
    ap.add_argument("--rate", type=float, default=20)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--drain", type=float, default=120, help="seconds to wait for pushes after the last message")
    ap.add_argument("--pushlog-only", action="store_true",
                    help="Synapse does not push (pusher_instances: []): only Pushlog's lag is measured")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="pushlog-lag-")
    h.temp_dirs.append(work)
    try:
        run(args, work)
    finally:
        h.cleanup()


def run(args, work):
    log = os.path.join(work, "arrivals.txt")
    gw = subprocess.Popen([sys.executable, "-c", GATEWAY, log], stdout=subprocess.PIPE, text=True)
    h.children.append(gw)
    url = "http://127.0.0.1:%s/_matrix/push/v1/notify" % gw.stdout.readline().strip()

    harness = h.Harness()
    t0 = time.time()
    harness.do_start_synapse({"database": "postgresql", "pushers": not args.pushlog_only})
    print("synapse on postgresql up in %.0f s" % (time.time() - t0), file=sys.stderr)
    users = ["u%03d" % i for i in range(args.members)]
    for u in users:
        harness.do_register({"user": u, "displayname": u.upper()})
        harness.do_set_pusher({"user": u, "app_id": "org.example.bench", "pushkey": "pk-" + u, "url": url})
    room = harness.synapse.request("POST", "/_matrix/client/v3/createRoom", {"preset": "public_chat", "name": "Bench"},
                                   harness.token(users[0]))["room_id"]
    for u in users[1:]:
        harness.do_join({"user": u, "room": room})
    harness.do_wait_background_updates({"timeout": 300})
    print("%d members with pushers in %.0f s" % (args.members, time.time() - t0), file=sys.stderr)

    data = os.path.join(work, "pushlog-data")
    env = dict(os.environ, PUSHLOG_SOURCE_SYNAPSE_DATABASE=harness.synapse.database_url,
               PUSHLOG_PUSH_IP_RANGE_WHITELIST="127.0.0.0/8")
    serve = subprocess.Popen([args.pushlog, "serve", "--data-dir", data, "--listen", "127.0.0.1:0"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    h.children.append(serve)
    port = None
    for line in serve.stderr:
        if "listening on 127.0.0.1:" in line:
            port = int(line.split("listening on 127.0.0.1:")[1].split(",")[0].split()[0])
            break
    if port is None:
        raise SystemExit("pushlog serve did not start")
    threading.Thread(target=lambda: [None for _ in serve.stderr], daemon=True).start()
    deadline = time.time() + 120
    while time.time() < deadline:
        body = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/v1/pushers?limit=1000" % port).read())
        if len(body.get("pushers", [])) >= args.members:
            break
        time.sleep(0.5)
    else:
        raise SystemExit("pushlog did not take the %d pushers" % args.members)

    # The sender: a steady rate, 4 threads so one slow answer does not stall the pace.
    total = int(args.rate * args.seconds)
    sent = []
    round_trips = []  # ms from the PUT to Synapse's answer, which comes once the event is persisted
    lock = threading.Lock()
    start = time.time() + 0.5

    def sender(k):
        for i in range(k, total, 4):
            delay = start + i / args.rate - time.time()
            if delay > 0:
                time.sleep(delay)
            t = time.time()
            r = harness.synapse.request("PUT", "%s/send/m.room.message/b%d" % (harness.room_path(room), i),
                                        {"msgtype": "m.text", "body": "bench %d" % i}, harness.token(users[0]))
            with lock:
                sent.append(r["event_id"])
                round_trips.append(int((time.time() - t) * 1000))

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.time() - start
    expected = len(sent) * (args.members - 1)

    def arrivals():
        urllib.request.urlopen(url.replace("/_matrix/push/v1/notify", "/flush")).read()
        rows = [line.split() for line in open(log)]
        return [r for r in rows if len(r) == 4]

    deadline = time.time() + args.drain
    while time.time() < deadline:
        rows = arrivals()
        if sum(1 for r in rows if r[1] == "pushlog") >= expected and (
                args.pushlog_only or sum(1 for r in rows if r[1] == "synapse") >= expected):
            break
        time.sleep(2)
    rows = arrivals()
    ts = dict(harness.synapse.sql("SELECT event_id, origin_server_ts FROM events WHERE room_id = ? AND type = 'm.room.message'", (room,)))
    print("sent %d messages in %.1f s (%.1f/s) to %d members: %d pushes expected per pusher side"
          % (len(sent), took, len(sent) / took, args.members, expected))
    print("Synapse's send round trip (the event persisted, its push actions with it): p50 %s ms  p99 %s ms"
          % (percentile(round_trips, 50), percentile(round_trips, 99)))
    # Pushlog's own view of the gateway: its answer time, from the latency histogram.
    metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port).read().decode()
    buckets = []
    for line in metrics.splitlines():
        if line.startswith("pushlog_gateway_latency_seconds_bucket{"):
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    if buckets and buckets[-1][1] > 0:
        buckets.sort()
        total = buckets[-1][1]
        q = lambda p: next(le for le, n in buckets if n >= p * total)
        print("gateway answer time seen by Pushlog (histogram buckets): p50 <= %s s  p99 <= %s s" % (q(0.5), q(0.99)))
    # When the follower appended each message (the log's append time): Synapse's part and the
    # follower's, before delivery begins.
    replay = subprocess.run([args.pushlog, "replay", "--data-dir", data, "--type", "notification", "--json"],
                            capture_output=True, text=True, check=True).stdout
    appended = {}
    for line in replay.splitlines():
        e = json.loads(line)
        if e.get("event_id") in ts:
            appended[e["event_id"]] = min(appended.get(e["event_id"], e["ts"]), e["ts"])
    lags = [appended[e] - ts[e] for e in appended]
    print("appended to Pushlog's log after origin_server_ts: p50 %s ms  p99 %s ms" % (percentile(lags, 50), percentile(lags, 99)))
    for name, proc in (("pushlog serve", serve), ("gateway", gw)):
        with open("/proc/%d/stat" % proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        print("%s CPU: %.1f s" % (name, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")))
    for who in ("pushlog",) if args.pushlog_only else ("pushlog", "synapse"):
        lags = [int(r[0]) - ts[r[2]] for r in rows if r[1] == who and r[2] in ts]
        keys = set((r[2], r[3]) for r in rows if r[1] == who and r[2] in ts)
        print("%-8s delivered %6d/%d  p50 %s ms  p99 %s ms  max %s ms"
              % (who, len(keys), expected, percentile(lags, 50), percentile(lags, 99), max(lags) if lags else None))
        # Per message: when its first and its last push arrived (the spread is the fan-out's time).
        per = {}
        for r in rows:
            if r[1] == who and r[2] in ts:
                lo, hi = per.get(r[2], (None, None))
                t = int(r[0]) - ts[r[2]]
                per[r[2]] = (t if lo is None else min(lo, t), t if hi is None else max(hi, t))
        print("%-8s per message: first push p50 %s ms, last push p50 %s ms; first 50 messages p50 %s ms, last 50 p50 %s ms"
              % (who, percentile([v[0] for v in per.values()], 50), percentile([v[1] for v in per.values()], 50),
                 percentile([per[e][1] for e in sent[:50] if e in per], 50), percentile([per[e][1] for e in sent[-50:] if e in per], 50)))
    serve.terminate()


if __name__ == "__main__":
    main()
