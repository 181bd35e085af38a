#!/usr/bin/env bash
#
# Starts a worker on every host of conf/workers (see workers.sh), each pointed at
# ember://$EMBER_MASTER_HOST:$EMBER_MASTER_PORT (defaults 127.0.0.1 and 7077). Every host
# must have Ember at the same EMBER_HOME.
set -eu

sbin="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=sbin/ember-config.sh
. "$sbin/ember-config.sh"
# shellcheck disable=SC2016 # the variables are named, not expanded
usage='Usage: ./sbin/start-workers.sh

Starts a worker on every host of conf/workers, pointed at
ember://$EMBER_MASTER_HOST:$EMBER_MASTER_PORT (defaults 127.0.0.1 and 7077).'
ember_no_arguments "$usage" "$@"

master="ember://${EMBER_MASTER_HOST:-127.0.0.1}:${EMBER_MASTER_PORT:-7077}"
exec "$sbin/workers.sh" cd "$(printf '%q' "$EMBER_HOME")" ";" \
    "$(printf '%q' "$EMBER_HOME/sbin/start-worker.sh")" "$(printf '%q' "$master")"
