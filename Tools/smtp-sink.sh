#!/usr/bin/env bash
# A fast local SMTP sink for the email benchmark: Postfix's smtp-sink on 127.0.0.1:2525, which
# accepts every message and discards it (installed from Debian's postfix package when missing).
#   Tools/smtp-sink.sh start | stop
set -euo pipefail
port=${SMTP_SINK_PORT:-2525}
pidfile=/tmp/pushlog-smtp-sink.pid
case "${1:-start}" in
start)
    if ! command -v smtp-sink >/dev/null && [ ! -x /usr/sbin/smtp-sink ]; then
        export DEBIAN_FRONTEND=noninteractive
        echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
        apt-get install -y -qq postfix >/dev/null
        service postfix stop >/dev/null 2>&1 || true
    fi
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    # -c: count; 256 connections at most in the backlog; accepts and drops every message.
    # -u: as root it must drop privileges; nobody will do.
    runas=(); [ "$(id -u)" = 0 ] && runas=(-u nobody)
    /usr/sbin/smtp-sink "${runas[@]}" -c 127.0.0.1:"$port" 256 >/dev/null 2>&1 &
    echo $! > "$pidfile"
    echo "smtp-sink on smtp://127.0.0.1:$port (pid $(cat "$pidfile"))"
    ;;
stop)
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
    ;;
esac
