#!/bin/sh
# Builds every baseline program into bin/. Safe to re-run.
# Every program is linked with both -llmdb and -lcurl; --as-needed keeps a
# dependency only where the program actually uses the library.
set -eu
cd "$(dirname "$0")"
mkdir -p bin
for src in *.c; do
    gcc -O2 -Wall -Wextra -o "bin/${src%.c}" "$src" -Wl,--as-needed -llmdb -lcurl
done
