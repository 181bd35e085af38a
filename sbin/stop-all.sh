#!/usr/bin/env bash
#
# Stops the workers on every host of conf/workers, then the master here; each stop waits
# for its daemon to exit. Exits 1 when some stop failed.
set -eu

sbin="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=sbin/ember-config.sh
. "$sbin/ember-config.sh"
usage='Usage: ./sbin/stop-all.sh

Stops the workers on every host of conf/workers, then the master here.'
ember_no_arguments "$usage" "$@"

status=0
"$sbin/stop-workers.sh" || status=1
"$sbin/stop-master.sh" || status=1
exit "$status"
