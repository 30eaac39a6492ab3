#!/usr/bin/env bash
# The delivery engine's CPU per push, two or more builds against each other and against the raw
# libcurl client, in one run: the `deliver` benchmark's store (1,000 pushers × 100 notifications)
# is made once, and each round every binary delivers a fresh copy of it to nginx, in turn (the
# order alternates from round to round), timed by /usr/bin/time (user and system CPU apart).
#
#   Tools/nginx/gateway.sh start
#   Tools/deliver-ab.sh ROUNDS BENCH_BINARY...   # each a pushlog-bench; e.g. .build/release/pushlog-bench
#
# BENCH_DELIVERY_THREADS and the other BENCH_* variables of `pushlog-bench deliver` apply.
# Prints a Markdown table: mean and median per push (µs) of user, system and both, per binary.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 ROUNDS BENCH_BINARY..." >&2; exit 2; }
rounds=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
raw="$here/baseline/bin/curl_multi_post"
[ -x "$raw" ] || "$here/baseline/build.sh"
command -v /usr/bin/time >/dev/null || { echo "$0: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
url=http://127.0.0.1:18690/_matrix/push/v1/notify
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pushers=1000 per=100
total=$((pushers * per))
echo "populating $pushers pushers × $per notifications" >&2
"$1" populate-deliver "$work/store" --pushers $pushers --per $per
# The raw client's body: the one the deliver benchmark writes (a sample notification).
"$1" deliver --pushers 1 --per 1 --runs 1 --dir "$work/scratch" >/dev/null 2>&1 || true
body="$work/scratch/body.json"
[ -s "$body" ] || { echo "$0: no body.json from $1 deliver" >&2; exit 1; }

results="$work/results"
: > "$results"
bins=("$@" raw)
for r in $(seq "$rounds"); do
    order=("${bins[@]}")
    if [ $((r % 2)) -eq 0 ]; then order=(); for ((i=${#bins[@]}-1; i>=0; i--)); do order+=("${bins[i]}"); done; fi
    for b in "${order[@]}"; do
        printf '\rround %d/%d: %s            ' "$r" "$rounds" "$(basename "$b")" >&2
        if [ "$b" = raw ]; then
            /usr/bin/time -f "%U %S" -o "$work/time" "$raw" "$url" $total 32 "$body" > /dev/null
        else
            rm -rf "$work/run"
            cp -r "$work/store" "$work/run"
            out=$(/usr/bin/time -f "%U %S" -o "$work/time" "$b" deliver-child "$work/run" --concurrency $pushers)
            case $out in *"pushes=$total "*) ;; *) echo "$0: $b delivered: $out" >&2; exit 1;; esac
        fi
        read -r user sys < "$work/time"
        echo "$b $user $sys" >> "$results"
    done
done
echo >&2
python3 - "$results" $total <<'EOF'
import statistics, sys
rows = {}
total = int(sys.argv[2])
for line in open(sys.argv[1]):
    b, u, s = line.split()
    rows.setdefault(b, []).append((float(u) * 1e6 / total, float(s) * 1e6 / total))
raw = statistics.median(u + s for u, s in rows["raw"])
print("| binary | rounds | user µs/push (mean, median) | system | both (median) | both ÷ raw client |")
print("|---|---:|---|---|---:|---:|")
for b, v in rows.items():
    us, ss, both = [u for u, _ in v], [s for _, s in v], [u + s for u, s in v]
    name = "raw libcurl client (32 in flight)" if b == "raw" else b
    print(f"| {name} | {len(v)} | {statistics.mean(us):.1f}, {statistics.median(us):.1f} | "
          f"{statistics.mean(ss):.1f}, {statistics.median(ss):.1f} | {statistics.median(both):.1f} | "
          f"{statistics.median(both) / raw:.2f}× |")
EOF
