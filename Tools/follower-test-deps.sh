#!/usr/bin/env bash
# What the Synapse follower's tests need (Tests/PushlogSynapseTests): the same as the real-Synapse
# tests, so one script installs it (PostgreSQL, matrix-synapse 1.163.2 and psycopg2 in .build/venv).
exec "$(dirname "$0")/synapse-env.sh"
