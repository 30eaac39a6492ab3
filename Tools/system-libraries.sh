#!/usr/bin/env bash
# Installs what building Pushlog needs from Debian (pkg-config, liblmdb-dev,
# libcurl4-openssl-dev) when pkg-config does not find LMDB and libcurl; the one copy of this
# step for run.sh, test.sh and release.sh.
set -euo pipefail
if ! pkg-config --exists lmdb libcurl 2>/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq pkg-config liblmdb-dev libcurl4-openssl-dev
fi
