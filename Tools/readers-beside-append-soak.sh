#!/usr/bin/env bash
# Soak: `append` of 40,000 notifications in batches of 100 while two loops run `stats` against
# the same data dir as fast as they can; every round must end with the head at 40,000. A build
# that closed a descriptor of lock.mdb beside LMDB's own (its record lock dropped, so each reader
# took itself for the first and reset the lock table) lost a batch in 4 of 18 rounds.
# Usage: Tools/readers-beside-append-soak.sh [PUSHLOG_BINARY] [ROUNDS]   (default: release, 20)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-}"
rounds="${2:-20}"
[ -n "$bin" ] || bin=$(Tools/release.sh | tail -n 1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work/big.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(1, 40001):
        f.write(json.dumps({"user_id": f"@u{i % 37}:example.org", "room_id": f"!r{i % 11}:example.org",
                            "event_id": f"$e{i}", "stream_ordering": 1000 + i, "actions": ["notify"],
                            "received_ts": 1732900000000,
                            "event": {"type": "m.room.message", "sender": "@bob:example.org",
                                      "content": {"msgtype": "m.text", "body": f"message number {i}"}}}) + "\n")
PY
stats_loop() { while kill -0 "$1" 2>/dev/null; do "$bin" stats --json --data-dir "$2" >/dev/null 2>&1 || true; done; }
lost=0
for r in $(seq 1 "$rounds"); do
    d="$work/d$r"
    "$bin" append notifications "$work/big.jsonl" --batch-size 100 --data-dir "$d" >/dev/null 2>&1 &
    appender=$!
    while [ ! -e "$d/data.mdb" ] && kill -0 "$appender" 2>/dev/null; do sleep 0.005; done
    stats_loop "$appender" "$d" & loop1=$!
    stats_loop "$appender" "$d" & loop2=$!
    wait "$appender"
    wait "$loop1" "$loop2"
    head=$("$bin" stats --json --data-dir "$d" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["head"])')
    if [ "$head" != 40000 ]; then lost=$((lost + 1)); echo "round $r: head $head, not 40000" >&2; fi
    rm -rf "$d"
    [ -t 2 ] && printf '\rround %d of %d, %d lost' "$r" "$rounds" "$lost" >&2
done
[ -t 2 ] && echo >&2
echo "rounds: $rounds; rounds that lost entries: $lost"
[ "$lost" = 0 ]
