#!/usr/bin/env bash
# Catch-up benchmark of the Synapse follower (issue 12): N push actions (default 1,000,000) with
# their events inserted directly into a fresh PostgreSQL database with Synapse's schema,
# vacuumed (so that neither reader pays for the first read of fresh rows: the hint bits) and
# written to disk (a checkpoint, then sync); then
#   1. `COPY (SELECT <the follower's join>) TO STDOUT` of the same rows: the baseline;
#   2. `pushlog follow synapse --once` into an empty data dir: rows/s until the log has them all.
# MODE "restart" times a catch-up after a restart instead of a first start: the data dir first
# follows the database while it holds only the pushers, then the actions are inserted and
# `follow synapse --once` resumes from the stored positions.
# Usage: Tools/synapse-catchup-bench.sh [PUSHLOG_BINARY] [ACTIONS] [first|restart] [RUNS]
# (default binary: Tools/release.sh's). Needs Tools/follower-test-deps.sh's PostgreSQL and venv.
# RUNS (default 3) rounds of COPY then pushlog, each pushlog run into a new copy of its data dir;
# the ratio is of the medians: one COPY moves by ±20% from run to run on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-}"
actions="${2:-1000000}"
mode="${3:-first}"
runs="${4:-3}"
case "$mode" in first|restart) ;; *) echo "MODE must be first or restart, not $mode" >&2; exit 2 ;; esac
users=5
events=$((actions / users))
[ -n "$bin" ] || bin=$(Tools/release.sh | tail -n 1)
Tools/follower-test-deps.sh
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
dir=$(mktemp -d)
as_pg=()
if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; chmod 755 "$dir"; as_pg=(runuser -u postgres --); fi
port=$((20000 + RANDOM % 20000))
"${as_pg[@]}" "$pgbin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C >/dev/null
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/log" -w start -o "-k $dir -p $port -c listen_addresses=127.0.0.1 -c shared_buffers=512MB" >/dev/null
trap '"${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null; rm -rf "$dir"' EXIT
psql() { "$pgbin/psql" -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1 -q "$@"; }
psql -d postgres -c "CREATE DATABASE synapse ENCODING 'UTF8' LC_COLLATE='C' LC_CTYPE='C' TEMPLATE template0"
.build/venv/bin/python Tools/synapse-schema.py postgres "host=127.0.0.1 port=$port user=postgres dbname=synapse"
now=$(($(date +%s) * 1000))
echo "inserting $actions push actions ($events events x $users users)..." >&2
psql -d synapse <<SQL
INSERT INTO pushers (id, user_name, profile_tag, kind, app_id, app_display_name, device_display_name, pushkey, ts, lang, data, enabled)
  SELECT u, '@user' || u || ':bench', '', 'http', 'app', 'App', 'Phone', 'key' || u, $now, 'en',
         '{"url": "http://127.0.0.1:9/_matrix/push/v1/notify"}', TRUE FROM generate_series(1, $users) u;
INSERT INTO room_stats_state (room_id, name, canonical_alias) VALUES ('!bench:bench', 'Bench', '#bench:bench');
INSERT INTO room_stats_current (room_id, current_state_events, joined_members, invited_members, left_members,
  banned_members, local_users_in_room, completed_delta_stream_id) VALUES ('!bench:bench', 10, $((users + 1)), 0, 0, 0, $((users + 1)), 1);
SQL
if [ "$mode" = restart ]; then
    echo "first start with the pushers only..." >&2
    "$bin" follow synapse --database "postgresql://postgres@127.0.0.1:$port/synapse" --once --data-dir "$dir/base" 2>"$dir/first.log"
fi
psql -d synapse <<SQL
INSERT INTO events (stream_ordering, topological_ordering, event_id, type, room_id, processed, outlier, origin_server_ts, received_ts, sender)
  SELECT s, s, '\$e' || s, 'm.room.message', '!bench:bench', TRUE, FALSE, $now, $now, '@sender:bench' FROM generate_series(1, $events) s;
INSERT INTO event_json (event_id, room_id, internal_metadata, json, format_version)
  SELECT '\$e' || s, '!bench:bench', '{}', '{"type": "m.room.message", "sender": "@sender:bench", "room_id": "!bench:bench", "origin_server_ts": $now, "content": {"msgtype": "m.text", "body": "Message ' || s || '"}}', 3
  FROM generate_series(1, $events) s;
INSERT INTO event_push_actions (room_id, event_id, user_id, profile_tag, actions, topological_ordering, stream_ordering, notif, highlight, unread, thread_id)
  SELECT '!bench:bench', '\$e' || s, '@user' || u || ':bench', NULL, '', s, s, 1, 0, 1, 'main'
  FROM generate_series(1, $events) s, generate_series(1, $users) u;
VACUUM ANALYZE;
CHECKPOINT;
SQL
# The fresh cluster's ~1 GB of dirty pages written back now, not during the first rounds (where
# the kernel's writeback took pushlog's system time from ~0.5 s to 1.2–1.6 s).
sync
join="SELECT epa.stream_ordering, epa.user_id, epa.room_id, epa.event_id, epa.actions, epa.highlight, epa.thread_id,
  e.received_ts, ej.json, rss.name, rss.canonical_alias, rsc.joined_members,
  (SELECT rm.display_name FROM current_state_events cse JOIN room_memberships rm ON rm.event_id = cse.event_id
    WHERE cse.room_id = epa.room_id AND cse.type = 'm.room.member' AND cse.state_key = e.sender)
  FROM event_push_actions epa JOIN events e ON e.event_id = epa.event_id JOIN event_json ej ON ej.event_id = epa.event_id
  LEFT JOIN room_stats_state rss ON rss.room_id = epa.room_id LEFT JOIN room_stats_current rsc ON rsc.room_id = epa.room_id
  WHERE epa.notif = 1 AND epa.user_id IN (SELECT user_name FROM pushers) ORDER BY epa.stream_ordering, epa.user_id"
# CPU seconds of the cluster's ended backends: the postmaster's reaped children (cutime + cstime;
# an autovacuum worker that ends meanwhile counts too).
postmaster=$(head -n 1 "$dir/data/postmaster.pid")
pgcpu() { python3 -c 'import os,sys; f=open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")",1)[1].split(); print((int(f[13])+int(f[14]))/os.sysconf("SC_CLK_TCK"))' "$postmaster"; }
TIMEFORMAT='%U %S'
: >"$dir/runs"
for run in $(seq 1 "$runs"); do
    rm -rf "$dir/pushlog"
    if [ "$mode" = restart ]; then cp -r "$dir/base" "$dir/pushlog"; fi
    c0=$(pgcpu)
    t0=$(date +%s.%N)
    psql -d synapse -c "COPY ($join) TO STDOUT" > /dev/null
    t1=$(date +%s.%N)
    sleep 0.5  # the postmaster reaps the ended backend, and only then counts its CPU
    c1=$(pgcpu)
    t1b=$(date +%s.%N)
    { time "$bin" follow synapse --database "postgresql://postgres@127.0.0.1:$port/synapse" --once --backfill 3650d --data-dir "$dir/pushlog" 2>"$dir/follow.log"; } 2>"$dir/cpu" || { cat "$dir/follow.log" >&2; exit 1; }
    t2=$(date +%s.%N)
    sleep 0.5
    c2=$(pgcpu)
    head=$("$bin" stats --data-dir "$dir/pushlog" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["head"])')
    echo "$t0 $t1 $t1b $t2 $c0 $c1 $c2 $(cat "$dir/cpu") $head" >>"$dir/runs"
done
python3 - "$actions" "$mode" "$dir/runs" <<'PY'
import statistics, sys
n, mode = int(sys.argv[1]), sys.argv[2]
runs = [list(map(float, line.split())) for line in open(sys.argv[3])]
print(f"push actions: {n}; {len(runs)} runs of COPY then pushlog ({mode} start)")
print(f"{'run':>3} {'COPY s':>7} {'PG CPU':>7} {'pushlog s':>9} {'user':>6} {'sys':>6} {'PG CPU':>7} {'ratio':>6} {'log head':>9}")
copies, follows = [], []
for i, (t0, t1, t1b, t2, c0, c1, c2, user, system, head) in enumerate(runs, 1):
    copy, follow = t1 - t0, t2 - t1b
    copies.append(copy); follows.append(follow)
    print(f"{i:>3} {copy:7.2f} {c1 - c0:7.2f} {follow:9.2f} {user:6.2f} {system:6.2f} {c2 - c1:7.2f} {follow / copy:5.2f}x {int(head):>9}")
copy, follow = statistics.median(copies), statistics.median(follows)
print(f"median: COPY (SELECT join) TO STDOUT {copy:.2f} s, {n / copy:,.0f} rows/s; "
      f"pushlog follow synapse --once ({mode} start) {follow:.2f} s, {n / follow:,.0f} rows/s; "
      f"ratio {follow / copy:.2f}x the COPY")
PY
