#!/usr/bin/env bash
# Installs pushlog as the sandboxed systemd service of Tools/pushlog.service. Run as root, after
# Tools/release.sh:   Tools/install.sh [BINARY]   (default .build-release/release/pushlog)
# Safe to run again: it keeps an existing config and token, and re-applies owners and modes.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-.build-release/release/pushlog}"
[ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
[ -x "$bin" ] || { echo "install.sh: no binary at $bin: run Tools/release.sh first" >&2; exit 1; }

install -m 0755 "$bin" /usr/local/bin/pushlog
# A system user that cannot log in; systemd creates its state directory /var/lib/pushlog (0700).
id pushlog >/dev/null 2>&1 \
    || useradd --system --user-group --home-dir /var/lib/pushlog --no-create-home --shell /usr/sbin/nologin pushlog
# The config may hold SMTP credentials: readable by root and the service only, writable by root.
install -d -m 0750 -o root -g pushlog /etc/pushlog
[ -e /etc/pushlog/pushlog.yaml ] || install -m 0640 data/pushlog.example.yaml /etc/pushlog/pushlog.yaml
chown root:pushlog /etc/pushlog/pushlog.yaml
chmod 0640 /etc/pushlog/pushlog.yaml
# The API token: root's alone; systemd hands the service a copy (LoadCredential=).
if [ ! -s /etc/pushlog/api_token ]; then
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > /etc/pushlog/api_token)
    echo "install.sh: a new API token is in /etc/pushlog/api_token (give it to the homeserver)"
fi
chown root:root /etc/pushlog/api_token
chmod 0600 /etc/pushlog/api_token
install -m 0644 Tools/pushlog.service /etc/systemd/system/pushlog.service
if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
echo "install.sh: edit /etc/pushlog/pushlog.yaml, then: systemctl enable --now pushlog"
