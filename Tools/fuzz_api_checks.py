"""Schemathesis hooks for Tools/fuzz-api.sh: the checks of the contract that the OpenAPI document
cannot state. Loaded through SCHEMATHESIS_HOOKS; reads PUSHLOG_FUZZ_URL (the server's base URL),
PUSHLOG_FUZZ_TOKEN (its api.token) and PUSHLOG_FUZZ_SUMMARY (where to write what was sent).

The head comparison is only sound with one worker: another request in flight could append
between the two readings.
"""

import json
import os
import threading
import urllib.request
from collections import Counter

import schemathesis

BASE_URL = os.environ["PUSHLOG_FUZZ_URL"].rstrip("/")
TOKEN = os.environ["PUSHLOG_FUZZ_TOKEN"]
SUMMARY = os.environ.get("PUSHLOG_FUZZ_SUMMARY")

_head_before: dict[str, int] = {}
_lock = threading.Lock()


def log_head() -> int:
    # Read beside schemathesis, not through it, so these requests are not themselves checked.
    with urllib.request.urlopen(BASE_URL + "/health", timeout=30) as answer:
        return json.load(answer)["head"]


def is_guarded(path: str) -> bool:
    """Every /v1 route needs the token except the signed unsubscribe link."""
    return path.startswith("/v1/") and path != "/v1/unsubscribe"


@schemathesis.hook
def before_call(context, case, kwargs):
    head = log_head()
    with _lock:
        _head_before[case.id] = head


@schemathesis.check
def refusal_appends_nothing(ctx, response, case):
    """A 4xx leaves the log as it was: no entry appended from an invalid body."""
    with _lock:
        before = _head_before.get(case.id)
    if before is None or not 400 <= response.status_code < 500:
        return None
    after = log_head()
    if after != before:
        raise AssertionError(
            f"{case.method} {case.path} answered {response.status_code} but the log head moved from {before} to {after}"
        )
    return None


@schemathesis.check
def token_enforced(ctx, response, case):
    """A guarded route asked without the right token answers 401 M_MISSING_TOKEN or M_UNKNOWN_TOKEN."""
    if not is_guarded(case.path):
        return None
    if response.request.headers.get("Authorization") == f"Bearer {TOKEN}":
        return None
    errcode = None
    try:
        errcode = json.loads(response.content).get("errcode")
    except (ValueError, AttributeError):
        pass
    if response.status_code != 401 or errcode not in ("M_MISSING_TOKEN", "M_UNKNOWN_TOKEN"):
        raise AssertionError(
            f"{case.method} {case.path} without the token answered {response.status_code} {errcode}, not 401"
        )
    return None


@schemathesis.check
class CaseCounter:
    """Counts the cases sent per operation and status class, for the script's summary and its
    floor on cases per operation. Shrinking and replays may count a case twice, which only
    matters for the floor in the direction of too many."""

    def __init__(self):
        self.sent = Counter()
        self.statuses = Counter()
        self.lock = threading.Lock()

    def after_response(self, ctx, response, case):
        # The coverage phase also tries undocumented methods on each path: not cases of the operation.
        if case.method.upper() != case.operation.method.upper():
            return
        label = case.operation.label
        with self.lock:
            self.sent[label] += 1
            self.statuses[(label, f"{response.status_code // 100}xx")] += 1

    def after_run(self, ctx):
        if not SUMMARY:
            return
        by_operation = {
            label: {"cases": count, **{cls: n for (l, cls), n in sorted(self.statuses.items()) if l == label}}
            for label, count in sorted(self.sent.items())
        }
        with open(SUMMARY, "w") as out:
            json.dump(by_operation, out, indent=1, sort_keys=True)
