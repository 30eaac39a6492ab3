#!/usr/bin/env bash
# Message -> gateway lag through a real Synapse 1.163 on PostgreSQL, Pushlog following its
# database beside Synapse's own pusher (issue 12, "Measure"; results in BENCHMARKS.md).
# Usage: Tools/synapse-lag-bench.sh [--members 100] [--rate 20] [--seconds 30] [--pushlog-only]
# PUSHLOG_BIN picks the binary (default: the release build of Tools/release.sh, else build it).
set -euo pipefail
cd "$(dirname "$0")/.."
Tools/synapse-env.sh
bin=${PUSHLOG_BIN:-}
if [ -z "$bin" ]; then
    bin=$(Tools/release.sh | tail -n 1)
fi
exec .build/venv/bin/python Tests/Support/synapse/lag_bench.py --pushlog "$bin" "$@"
