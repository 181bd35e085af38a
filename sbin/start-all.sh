#!/usr/bin/env bash
#
# Starts the master here, then a worker on every host of conf/workers.
set -eu

sbin="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=sbin/ember-config.sh
. "$sbin/ember-config.sh"

"$sbin/start-master.sh"
"$sbin/start-workers.sh"
