#!/usr/bin/env bash
#
# Stops the workers on every host of conf/workers (see workers.sh).
set -eu

sbin="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=sbin/ember-config.sh
. "$sbin/ember-config.sh"
usage='Usage: ./sbin/stop-workers.sh

Stops the workers on every host of conf/workers.'
ember_no_arguments "$usage" "$@"

exec "$sbin/workers.sh" cd "$(printf '%q' "$EMBER_HOME")" ";" \
    "$(printf '%q' "$EMBER_HOME/sbin/stop-worker.sh")"
