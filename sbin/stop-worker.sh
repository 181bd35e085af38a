#!/usr/bin/env bash
#
# Stops the workers started by start-worker.sh on this machine: instances 1 to
# EMBER_WORKER_INSTANCES (default 1), and any other instance with a pid file; each stop
# waits for its worker to exit.
set -eu

sbin="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=sbin/ember-config.sh
. "$sbin/ember-config.sh"
usage='Usage: ./sbin/stop-worker.sh

Stops the workers started by start-worker.sh on this machine.'
ember_no_arguments "$usage" "$@"

instances="${EMBER_WORKER_INSTANCES:-1}"
case "$instances" in
    "" | *[!0-9]*)
        echo "stop-worker.sh: EMBER_WORKER_INSTANCES must be a whole number, not '$instances'" >&2
        exit 1
        ;;
esac

# The instances with pid files, beyond 1..instances.
prefix="${EMBER_PID_DIR:-/tmp}/ember-${EMBER_IDENT_STRING:-${USER:-$(id -un)}}-ember-worker-"
others=()
for pid_file in "$prefix"*.pid; do
    [ -e "$pid_file" ] || continue
    n=${pid_file#"$prefix"}
    n=${n%.pid}
    case "$n" in "" | *[!0-9]*) continue ;; esac
    if [ "$n" -gt "$instances" ]; then
        others+=("$n")
    fi
done

status=0
for ((i = 1; i <= instances; i++)); do
    "$sbin/ember-daemon.sh" stop ember-worker "$i" || status=1
done
for n in ${others[@]+"${others[@]}"}; do
    "$sbin/ember-daemon.sh" stop ember-worker "$n" || status=1
done
exit "$status"
