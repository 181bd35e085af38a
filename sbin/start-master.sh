#!/usr/bin/env bash
#
# Starts the master on this machine (Spark's start-master.sh).
#
#   start-master.sh [ember-master options...]
#
# Listens on EMBER_MASTER_HOST (default 127.0.0.1: set it in conf/ember-env.sh for workers
# on other machines), EMBER_MASTER_PORT (default 7077), EMBER_MASTER_WEBUI_PORT (default
# 8080). Options given here are passed on after those and win over them.
set -eu

sbin="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=sbin/ember-config.sh
. "$sbin/ember-config.sh"

# --help anywhere, or -h last: for ember-master, -h is --host, so only a -h with no value
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
if [ "$help" = 1 ]; then
    echo "Usage: ./sbin/start-master.sh [options]"
    "$EMBER_BIN_DIR/ember-master" --help 2>&1 | tail -n +2
    exit 0
fi

EMBER_MASTER_HOST="${EMBER_MASTER_HOST:-127.0.0.1}"
EMBER_MASTER_PORT="${EMBER_MASTER_PORT:-7077}"
EMBER_MASTER_WEBUI_PORT="${EMBER_MASTER_WEBUI_PORT:-8080}"

exec "$sbin/ember-daemon.sh" start ember-master 1 \
    --host "$EMBER_MASTER_HOST" --port "$EMBER_MASTER_PORT" \
    --webui-port "$EMBER_MASTER_WEBUI_PORT" "$@"
