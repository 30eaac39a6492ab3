#!/usr/bin/env bash
# What the Synapse follower's tests need (Tests/PushlogSynapseTests): Debian's PostgreSQL
# server (the tests start their own cluster in a temp directory) and matrix-synapse 1.163.2 with
# psycopg2 in .build/venv (Tools/synapse-schema.py makes Synapse's schema with Synapse's code).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
python3 -m venv --help >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}"
fi
if ! .build/venv/bin/python -c 'import synapse, psycopg2' 2>/dev/null; then
    python3 -m venv .build/venv
    .build/venv/bin/pip install --quiet matrix-synapse==1.163.2 psycopg2-binary
fi
