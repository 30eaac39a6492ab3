#!/usr/bin/env bash
# Runs the service on the embedded LMDB default (./pushlog-data), installing the system
# libraries first when they are missing. Extra arguments go to `pushlog serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! pkg-config --exists lmdb libcurl 2>/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq pkg-config liblmdb-dev libcurl4-openssl-dev
fi
swift build -c release --product pushlog
exec .build/release/pushlog serve "$@"
