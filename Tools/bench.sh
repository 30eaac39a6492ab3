#!/usr/bin/env bash
# Builds release binaries and the C baselines, then prints the store's benchmark tables.
# Usage: Tools/bench.sh [append|append-cli|boot]...   (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v pkg-config >/dev/null && pkg-config --exists lmdb || { apt-get update -qq && apt-get install -y -qq liblmdb-dev; }
swift build -c release --product pushlog-bench >&2
swift build -c release --product pushlog >&2
Tools/baseline/build.sh
echo "machine: $(nproc) cores, $(grep MemTotal /proc/meminfo | awk '{print int($2/1048576)}') GiB, $(uname -r), $(date -u +%Y-%m-%d)"
echo
for what in "${@:-append append-cli boot}"; do
    for w in $what; do .build/release/pushlog-bench "$w"; done
done
