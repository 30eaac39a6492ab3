#!/usr/bin/env bash
# Installs what the real-Synapse tests need, each step only when it is missing:
# Debian's PostgreSQL (the tests start their own cluster in a temp directory) and a Python venv,
# .build/venv, holding matrix-synapse 1.163.2 and psycopg2-binary from PyPI.
# Prints nothing when everything is already there. Called once by .ci/run and Tools/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

synapse_version=1.163.2
venv=.build/venv

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
need=()
[ -n "$(pg_bin)" ] && [ -x "$(pg_bin)/initdb" ] || need+=(postgresql)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}"
fi

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
installed=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("matrix-synapse"))' 2>/dev/null || true)
if [ "$installed" != "$synapse_version" ] || ! "$venv/bin/python" -c 'import psycopg2' 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet "matrix-synapse==$synapse_version" psycopg2-binary
fi
