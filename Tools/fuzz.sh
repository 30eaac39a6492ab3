#!/usr/bin/env bash
# Coverage-guided fuzzing of the decoders (PushlogFuzzing.DecoderFuzz) with libFuzzer.
#
#   Tools/fuzz.sh [SECONDS]      build with ASan + libFuzzer coverage, then fuzz (default 60 s)
#
# Inputs come from the committed seed corpus (Tools/Fuzz/corpus, read only) and a scratch
# corpus outside git ($FUZZ_WORK/corpus, default .build-fuzz/work/corpus), where new inputs are
# written and kept between runs. A crash leaves its input in $FUZZ_WORK/crash-*; replay it with
# `.build-fuzz/release/pushlog-fuzz FILE` (or the ordinary build's `pushlog-fuzz FILE`).
# Extra libFuzzer flags can be given in $FUZZ_FLAGS. One process (no -jobs): the machine is shared.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
work=${FUZZ_WORK:-.build-fuzz/work}
seeds=Tools/Fuzz/corpus
mkdir -p "$work/corpus"

# Not `-sanitize=fuzzer`: that also links libFuzzer's `main` (whole archive) into the build
# tool of the EmbedTemplates plugin, which then fails to link (and SwiftPM renames an
# executable's own entry point, so libFuzzer's `main` could not serve pushlog-fuzz either).
# Instead: the same instrumentation as -sanitize=fuzzer, libFuzzer as a plain archive, and
# pushlog-fuzz built with PUSHLOG_LIBFUZZER calling its driver (LLVMFuzzerRunDriver).
libfuzzer=$(ls "$(dirname "$(readlink -f "$(command -v swift)")")"/../lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a | head -1)
# The plugin's tool is instrumented too, and runs during the build: its exit leaks (as Swift
# programs do) must not fail the build.
if ! ASAN_OPTIONS=detect_leaks=0 swift build -c release --product pushlog-fuzz --scratch-path .build-fuzz \
    -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp,indirect-calls \
    -Xswiftc -DPUSHLOG_LIBFUZZER -Xlinker "$libfuzzer" -Xlinker -lstdc++ > "$work/build.log" 2>&1; then
    grep -v 'Cannot export local symbol' "$work/build.log" | tail -30
    exit 1
fi
tail -1 "$work/build.log"
binary=.build-fuzz/release/pushlog-fuzz
# Swift's own crash reporter would catch the trap first (and wait on it): libFuzzer must.
export SWIFT_BACKTRACE=enable=no

log="$work/fuzz-$(date -u +%Y%m%dT%H%M%SZ).log"
echo "fuzzing for ${seconds}s; log $log"
marker="$work/.started"
touch "$marker"
status=0
# libFuzzer reports progress on stderr (the terminal); a copy goes to the log for the summary.
# -max_len: room for a batch of notifications, well under the 16 MiB body limit.
"$binary" "$work/corpus" "$seeds" -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/" \
    -dict=Tools/Fuzz/decoders.dict ${FUZZ_FLAGS:-} 2>&1 | tee "$log" || status=$?

echo "---- summary"
last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
echo "last status: ${last:-none}"
grep -E 'stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
echo "scratch corpus: $(find "$work/corpus" -type f | wc -l) files, $(du -sb "$work/corpus" | cut -f1) bytes"
crashes=$(find "$work" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) -newer "$marker" 2>/dev/null || true)
if [ -n "$crashes" ]; then
    echo "CRASH inputs:"
    echo "$crashes"
    exit 1
fi
echo "no crash"
exit "$status"
