#!/usr/bin/env bash
# Builds the release `pushlog` with the Swift runtime and Foundation linked in
# (--static-swift-stdlib), so it runs on a machine without the Swift toolchain: there it needs
# only liblmdb0 and libcurl4 (and glibc, libstdc++). Prints the binary's path on the last line.
# Usage: Tools/release.sh [SCRATCH_DIR]   (default .build-release, apart from the debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! pkg-config --exists lmdb libcurl 2>/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq pkg-config liblmdb-dev libcurl4-openssl-dev
fi
scratch="${1:-.build-release}"
flags=(-c release --static-swift-stdlib --product pushlog --scratch-path "$scratch")
swift build "${flags[@]}" >&2
echo "$(swift build "${flags[@]}" --show-bin-path)/pushlog"
