#!/usr/bin/env bash
# Builds the release `pushlog` with the Swift runtime and Foundation linked in
# (--static-swift-stdlib), so it runs on a machine without the Swift toolchain: there it needs
# only liblmdb0 and libcurl4 (and glibc, libstdc++). Prints the binary's path on the last line.
# Usage: Tools/release.sh [SCRATCH_DIR]   (default .build-release, apart from the debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
Tools/system-libraries.sh
scratch="${1:-.build-release}"
flags=(-c release --static-swift-stdlib --product pushlog --scratch-path "$scratch")
swift build "${flags[@]}" >&2
echo "$(swift build "${flags[@]}" --show-bin-path)/pushlog"
