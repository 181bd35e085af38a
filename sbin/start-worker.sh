#!/usr/bin/env bash
#
# Starts workers on this machine (Spark's start-worker.sh).
#
#   start-worker.sh <master> [ember-worker options...]
#
# <master> is ember://host:port[,host:port...]. EMBER_WORKER_INSTANCES (default 1) workers
# are started, instance i with --webui-port EMBER_WORKER_WEBUI_PORT + i - 1 (default 8081)
# and, when EMBER_WORKER_PORT is set, --port EMBER_WORKER_PORT + i - 1. The work directory
# is EMBER_WORKER_DIR (default $EMBER_HOME/work), and $EMBER_CONF_DIR/ember-defaults.conf
# is the properties file when it exists. Options given here are passed on and win.
set -eu

sbin="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=sbin/ember-config.sh
. "$sbin/ember-config.sh"

usage="Usage: ./sbin/start-worker.sh <master> [options]"
# --help anywhere, or -h last: for ember-worker, -h is --host, so only a -h with no value
# after it can ask for help.
help=0
for arg in "$@"; do
    if [ "$arg" = "--help" ]; then
        help=1
    fi
done
if [ $# -gt 0 ] && [ "${*: -1}" = "-h" ]; then
    help=1
fi
if [ $# -lt 1 ] || [ "$help" = 1 ]; then
    echo "$usage"
    "$EMBER_BIN_DIR/ember-worker" --help 2>&1 | tail -n +2 || true
    if [ $# -lt 1 ]; then
        exit 1
    fi
    exit 0
fi
master=$1
shift

instances="${EMBER_WORKER_INSTANCES:-1}"
webui_port="${EMBER_WORKER_WEBUI_PORT:-8081}"
for setting in "EMBER_WORKER_INSTANCES=$instances" "EMBER_WORKER_WEBUI_PORT=$webui_port" \
    "EMBER_WORKER_PORT=${EMBER_WORKER_PORT:-0}"; do
    case "${setting#*=}" in
        "" | *[!0-9]*)
            echo "start-worker.sh: ${setting%%=*} must be a whole number, not '${setting#*=}'" >&2
            exit 1
            ;;
    esac
done
export EMBER_WORKER_DIR="${EMBER_WORKER_DIR:-$EMBER_HOME/work}"

properties=()
defaults="$EMBER_CONF_DIR/ember-defaults.conf"
if [ -f "$defaults" ]; then
    properties=(--properties-file "$defaults")
fi

status=0
for ((i = 1; i <= instances; i++)); do
    flags=(--webui-port "$((webui_port + i - 1))")
    if [ -n "${EMBER_WORKER_PORT:-}" ]; then
        flags+=(--port "$((EMBER_WORKER_PORT + i - 1))")
    fi
    "$sbin/ember-daemon.sh" start ember-worker "$i" "${flags[@]}" \
        ${properties[@]+"${properties[@]}"} "$master" "$@" || status=1
done
exit "$status"
