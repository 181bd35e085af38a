#!/usr/bin/env bash
#
# Starts the master here, then a worker on every host of conf/workers.
set -eu

sbin="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=sbin/ember-config.sh
. "$sbin/ember-config.sh"
usage='Usage: ./sbin/start-all.sh

Starts the master here, then a worker on every host of conf/workers (see
start-master.sh and start-workers.sh).'
ember_no_arguments "$usage" "$@"

"$sbin/start-master.sh"
"$sbin/start-workers.sh"
