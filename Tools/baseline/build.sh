#!/bin/sh
# Builds every baseline program into bin/. Safe to re-run.
set -eu
cd "$(dirname "$0")"
mkdir -p bin
for src in *.c; do
    gcc -O2 -Wall -Wextra -o "bin/${src%.c}" "$src" -llmdb
done
