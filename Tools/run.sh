#!/usr/bin/env bash
# Runs the service on the embedded LMDB default (./pushlog-data), installing the system
# libraries first when they are missing. Extra arguments go to `pushlog serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
Tools/system-libraries.sh
swift build -c release --product pushlog
exec .build/release/pushlog serve "$@"
