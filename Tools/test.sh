#!/usr/bin/env bash
# Runs the whole test suite (installs the system libraries, and the Python test servers' packages
# into .build/venv, first when they are missing).
set -euo pipefail
cd "$(dirname "$0")/.."
Tools/system-libraries.sh
# The mail tests run a real SMTP server written with Python's aiosmtpd (from PyPI); they fail,
# saying so, without it. The tests take .build/venv's python3 when it is there.
Tools/python-venv.sh >/dev/null
# The real-Synapse tests (Tests/SynapseTests) and the follower's (Tests/PushlogSynapseTests):
# PostgreSQL from Debian, matrix-synapse 1.163.2 and psycopg2 in .build/venv.
Tools/synapse-env.sh
swift build --build-tests
# One test at a time: several suites start real processes and servers, and on two cores
# parallel runs starve each other into timeouts.
swift test --skip-build --no-parallel
