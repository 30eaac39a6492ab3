#!/bin/sh
# Issue 11's type renames, safe to run again (on a tree that already has them it changes nothing):
#   HTTPClient   -> CurlClient        (it also sends mail; file Sources/Curl/CurlClient.swift)
#   Notification -> PushNotification  (Core's entry no longer shadows Foundation.Notification)
#   Clock        -> SystemClock       (Core's wall/monotonic clock no longer shadows the Clock protocol)
# Run from the repository root: sh Tools/refactor/issue11-renames.sh
set -eu
cd "$(dirname "$0")/../.."

if [ -f Sources/Curl/HTTPClient.swift ] && [ ! -f Sources/Curl/CurlClient.swift ]; then
    git mv Sources/Curl/HTTPClient.swift Sources/Curl/CurlClient.swift
fi

files=$(git ls-files -co --exclude-standard -- Sources Tests Tools | grep '\.swift$' | while read -r f; do [ -f "$f" ] && echo "$f"; done)
[ -n "$files" ] || exit 0

# shellcheck disable=SC2086
perl -pi -e '
    s/\bHTTPClient\b/CurlClient/g;
    s/\bPushlogCore\.Notification\b/PushNotification/g;
    s/``Notification``/``PushNotification``/g;
    # Code only: a line that is a comment keeps the English word "Notification".
    if (!/^\s*\/\//) {
        s/(?<![.\w])Notification\b(?!\s*(?:rows|s\b))/PushNotification/g;
    }
    s/\benum Clock\b/enum SystemClock/g;
    s/\bPushlogCore\.Clock\.(nowMS|monotonicSeconds)\b/SystemClock.$1/g;
    s/(?<![.\w])Clock\.(nowMS|monotonicSeconds)\b/SystemClock.$1/g;
' $files
