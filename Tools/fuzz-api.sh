#!/usr/bin/env bash
# Fuzzes the HTTP API of a real `pushlog serve` against docs/openapi.yaml with schemathesis:
# every operation, at least FUZZ_EXAMPLES generated cases each (default 500), the stateful
# phase following the document's links. Fails on any 5xx, a crash, a response outside the
# document, a body the document calls invalid being accepted, a 4xx after which the log head
# moved, or a guarded /v1 route answering anything but 401 without the token. A second pass
# sends no token at all (FUZZ_EXAMPLES_WITHOUT_TOKEN cases per operation, default 100).
# About 5 minutes on two busy cores.
#
#   Tools/fuzz-api.sh                      # builds pushlog when .build has none
#   PUSHLOG_BIN=path/to/pushlog FUZZ_EXAMPLES=1000 FUZZ_SEED=1 Tools/fuzz-api.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

examples=${FUZZ_EXAMPLES:-500}
if [ "$examples" -lt 500 ]; then echo "fuzz-api: FUZZ_EXAMPLES must be at least 500" >&2; exit 64; fi

# schemathesis (the version Tools/python-requirements.txt pins) in .build/venv; through python
# itself, not a `schemathesis` script.
python=$(Tools/python-venv.sh)
schemathesis() {
    "$python" -c 'import sys; from schemathesis.cli import schemathesis; sys.argv[0] = "schemathesis"; schemathesis()' "$@"
}

bin=${PUSHLOG_BIN:-}
if [ -z "$bin" ]; then
    bin="$(swift build --show-bin-path)/pushlog"
    [ -x "$bin" ] || swift build --product pushlog
fi

work=$(mktemp -d /tmp/pushlog-fuzz.XXXXXX)
server=
server_exit=
stop_server() {
    if [ -n "$server" ]; then
        kill -TERM "$server" 2>/dev/null || true
        server_exit=0
        wait "$server" 2>/dev/null || server_exit=$?
    fi
    server=
}
status=1
finish() {
    stop_server
    # A failed run keeps the server's log and the reports, and schemathesis's crash store for
    # `st replay` (run from inside that directory).
    if [ "$status" -eq 0 ]; then rm -rf "$work"; else echo "fuzz-api: kept $work (serve.log, reports)" >&2; fi
}
trap finish EXIT

token=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
# No gateway exists for this run: generated pushers point wherever the fuzzer says, and their
# pushes fail or are refused by the address blocklist; neither touches the log.
cat >"$work/config.yaml" <<EOF
api:
  token: "$token"
store:
  durability: nometasync
EOF

# Made before serve starts: the redirection below happens in the background, maybe after the
# first look for the listening line.
: >"$work/serve.log"
"$bin" serve --config "$work/config.yaml" --data-dir "$work/data" --listen 127.0.0.1:0 2>"$work/serve.log" &
server=$!
port=
for _ in $(seq 1 300); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\),.*/\1/p' "$work/serve.log" | head -n 1)
    [ -n "$port" ] && break
    kill -0 "$server" 2>/dev/null || { echo "fuzz-api: pushlog serve did not start:" >&2; cat "$work/serve.log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$port" ] || { echo "fuzz-api: pushlog serve did not say where it listens" >&2; exit 1; }
url="http://127.0.0.1:$port"

export SCHEMATHESIS_HOOKS="$root/Tools/fuzz_api_checks.py"
export PUSHLOG_FUZZ_URL=$url PUSHLOG_FUZZ_TOKEN=$token

# One worker: the head comparison of `refusal_appends_nothing` needs requests one at a time.
# The warning that operations answered only 401/403 is left out: the pass without the token
# and the unsigned unsubscribe links make it true by design.
# The stateful phase runs FUZZ_STATEFUL_SCENARIOS scenarios (default 200, several calls each
# along the links) instead of --max-examples of them: the per-operation floor is the fuzzing
# phase's, and 500 scenarios would double the run's time.
cat >"$work/schemathesis.toml" <<EOF
[phases.stateful.generation]
max-examples = ${FUZZ_STATEFUL_SCENARIOS:-200}
EOF
fuzz() {
    local name=$1; shift
    (cd "$work" && PUSHLOG_FUZZ_SUMMARY="$work/$name.json" schemathesis --config-file "$work/schemathesis.toml" run "$root/docs/openapi.yaml" \
        --url "$url" --workers 1 ${FUZZ_SEED:+--seed "$FUZZ_SEED"} \
        --generation-database none --request-timeout 30 --no-color \
        --warnings missing_test_data,validation_mismatch,unsupported_regex,unresolvable_reference \
        --report junit --report-dir "$work/reports-$name" "$@")
}

status=0
echo "fuzz-api: pass 1, with the token, against $url"
fuzz with-token -H "Authorization: Bearer $token" --max-examples "$examples" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection,refusal_appends_nothing,token_enforced,CaseCounter \
    || status=1

# Every case of this pass is sent without a token (the fuzzer may make up a wrong one); the
# shapes that reach a handler were covered above, so fewer cases per operation suffice here.
echo "fuzz-api: pass 2, without the token"
fuzz without-token --max-examples "${FUZZ_EXAMPLES_WITHOUT_TOKEN:-100}" --phases examples,coverage,fuzzing \
    --include-path-regex '^/v1/' --checks not_a_server_error,refusal_appends_nothing,token_enforced,CaseCounter \
    || status=1

if ! kill -0 "$server" 2>/dev/null; then
    echo "fuzz-api: pushlog serve is gone (crashed):" >&2
    tail -n 20 "$work/serve.log" >&2
    status=1
fi

# Every operation that takes input got its floor of cases in the pass with the token; the two
# without any input (health, metrics) have only one case to send.
"$python" - "$work/with-token.json" "$work/without-token.json" "$examples" <<'EOF' || status=1
import json, sys
floor = int(sys.argv[3])
short = []
for name, path in (("with the token", sys.argv[1]), ("without the token", sys.argv[2])):
    try:
        summary = json.load(open(path))
    except OSError:
        print(f"fuzz-api: no summary of the pass {name}")
        sys.exit(1)
    print(f"fuzz-api: cases sent {name}:")
    for label, counts in summary.items():
        classes = ", ".join(f"{k} {v}" for k, v in counts.items() if k != "cases")
        print(f"  {label:32} {counts['cases']:6}  ({classes})")
        if name == "with the token" and label not in ("GET /health", "GET /metrics") and counts["cases"] < floor:
            short.append(label)
if short:
    print(f"fuzz-api: fewer than {floor} cases for: {', '.join(short)}")
    sys.exit(1)
EOF

stop_server
if [ "$server_exit" != 0 ]; then
    echo "fuzz-api: pushlog serve exited with $server_exit on SIGTERM" >&2
    status=1
fi
if grep -q "request failed" "$work/serve.log"; then
    echo "fuzz-api: the server logged internal errors:" >&2
    grep "request failed" "$work/serve.log" | head -n 20 >&2
    status=1
fi
if [ "$status" -eq 0 ]; then echo "fuzz-api: passed"; else echo "fuzz-api: FAILED" >&2; fi
exit "$status"
