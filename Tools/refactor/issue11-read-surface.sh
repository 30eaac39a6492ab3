#!/bin/sh
# Issue 11, one read surface: rewrites calls of the Store query twins that are gone,
#   store.head()                      -> store.read { view in try view.head() }
#   store.forEachEntry(from: 3) { … } -> store.read { view in try view.forEachEntry(from: 3) { … } }
# for a receiver spelled `store`, `store2`, `x.store` or `x.y.store`. Safe to run again (a
# rewritten call is `store.read`, which it leaves alone). A mechanical first pass: the compiler
# finds what it missed (another receiver name, a call split oddly), and a rewritten call in a
# loop may be better folded into one `read` by hand.
# Run from the repository root: sh Tools/refactor/issue11-read-surface.sh [FILE…]
set -eu
cd "$(dirname "$0")/../.."
if [ $# -gt 0 ]; then files="$*"; else
    files=$(git ls-files -co --exclude-standard -- Sources Tests Tools | grep '\.swift$' | grep -v '^Sources/PushlogCore/' || true)
fi
[ -n "$files" ] || exit 0
# Only the forEach queries take a trailing closure: braces after another call are an if body.
# shellcheck disable=SC2086
perl -0777 -pi -e '
    my $m = qr/(?:head|firstPos|forEachEntry|entry|position|notifications|receivedTimes|emailThrottles|forEachNotification|notificationPositions|badge|pusher|pusherState|forEachPusherState|stats|pushers|loadPusher|deadLetters|pushInput|forEachPending|pusherCensus)/;
    my $str = qr/"(?:[^"\\]|\\.)*"/;
    our $parens = qr/\((?:[^()"]++|$str|(??{$parens}))*\)/;
    our $braces = qr/\{(?:[^{}"]++|$str|(??{$braces}))*\}/;
    s#\b((?:[A-Za-z_]\w*\.)*store\d?)\.($m)(?=[(\s\x7b])($parens)?([ \t]*$braces)?#
        my ($r, $f, $a, $b) = ($1, $2, $3 // "", $4 // "");
        ($a eq "" && $b eq "") ? "$r.$f"
            : ($f =~ /^forEach/ || $b eq "") ? "$r.read { view in try view.$f$a$b }"
            : "$r.read { view in try view.$f$a }$b"
    #ge;
' $files
# In a statement condition a trailing closure needs parentheses: `guard let p = try store.read({ view in … }), …`.
# shellcheck disable=SC2086
perl -pi -e '
    our $b = qr/\{(?:[^{}]++|(??{$b}))*\}/;
    s/\.read (\{ view in (?:[^{}]++|(??{$b}))*\})/.read($1)/g if /^\s*(?:guard|if|while|\}\s*else\s+if)\b/;
' $files
