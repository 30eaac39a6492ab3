#!/usr/bin/env bash
# Makes .build/venv, the Python that the tests and Tools/fuzz-api.sh use, with
# Tools/python-requirements.txt installed into it (never into the system Python). Does nothing
# when the virtualenv is there with these requirements. Prints the virtualenv's python3.
#   python=$(Tools/python-venv.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.build/venv
requirements=Tools/python-requirements.txt
# A copy of the requirements the virtualenv was made with: a change to the file remakes it.
installed=$venv/requirements.txt

if [ -x "$venv/bin/python3" ] && cmp -s "$requirements" "$installed"; then
    echo "$PWD/$venv/bin/python3"
    exit 0
fi
# Debian keeps `python3 -m venv` (its ensurepip) in python3-venv.
if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq python3 python3-venv >&2
fi
rm -rf "$venv"
python3 -m venv "$venv" >&2
"$venv/bin/python3" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
cp "$requirements" "$installed"
echo "$PWD/$venv/bin/python3"
