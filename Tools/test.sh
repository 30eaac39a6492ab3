#!/usr/bin/env bash
# Runs the whole test suite (installs the system libraries and aiosmtpd first when they are missing).
set -euo pipefail
cd "$(dirname "$0")/.."
Tools/system-libraries.sh
# The mail tests run a real SMTP server written with Python's aiosmtpd (from PyPI); they fail,
# saying so, without it. Debian's own python refuses a plain pip install: fall back.
python3 -c 'import aiosmtpd' 2>/dev/null || python3 -m pip install --quiet aiosmtpd \
    || python3 -m pip install --quiet --break-system-packages aiosmtpd

# The real-Synapse tests (Tests/SynapseTests) and the follower's (Tests/PushlogSynapseTests):
# PostgreSQL from Debian, matrix-synapse 1.163.2 and psycopg2 in .build/venv.
Tools/synapse-env.sh

swift build --build-tests
# One test at a time: several suites start real processes and servers, and on two cores
# parallel runs starve each other into timeouts.
swift test --skip-build --no-parallel
