#!/usr/bin/env bash
#
# Stops the master started by start-master.sh on this machine, waiting for it to exit.
set -eu

sbin="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=sbin/ember-config.sh
. "$sbin/ember-config.sh"
usage='Usage: ./sbin/stop-master.sh

Stops the master started by start-master.sh on this machine.'
ember_no_arguments "$usage" "$@"

exec "$sbin/ember-daemon.sh" stop ember-master 1
