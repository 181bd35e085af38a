#!/usr/bin/env bash
#
# Runs a shell command on every worker host (Spark's workers.sh).
#
#   workers.sh <command...>
#
# The arguments are joined with spaces into one shell command line, as ssh does, so quote
# what must stay one word. The hosts are the lines of the file EMBER_WORKERS, else of
# $EMBER_CONF_DIR/workers, else just localhost; '#' starts a comment, blank lines are
# skipped. localhost, 127.0.0.1 and ::1 run the command here, in this environment; other
# hosts run it over `ssh $EMBER_SSH_OPTS <host>` (default -o StrictHostKeyChecking=no).
# Hosts run in parallel, each output line prefixed with "<host>: " (one after the other
# when EMBER_SSH_FOREGROUND is set). Exits 1 when the command failed on some host.
set -eu

sbin="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=sbin/ember-config.sh
. "$sbin/ember-config.sh"

usage="Usage: ./sbin/workers.sh <command...>

Runs the shell command on every host of \$EMBER_WORKERS, else of conf/workers, else on
localhost; each output line is prefixed with its host."
# Only a first argument asks for help: later ones belong to the command.
case "${1:-}" in
    --help | -h)
        echo "$usage"
        exit 0
        ;;
esac
if [ $# -lt 1 ]; then
    echo "$usage" >&2
    exit 1
fi
command_line="$*"

hosts_file="${EMBER_WORKERS:-}"
if [ -z "$hosts_file" ] && [ -f "$EMBER_CONF_DIR/workers" ]; then
    hosts_file="$EMBER_CONF_DIR/workers"
fi
hosts=()
if [ -n "$hosts_file" ]; then
    if [ ! -f "$hosts_file" ]; then
        echo "workers.sh: no such hosts file: $hosts_file" >&2
        exit 1
    fi
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line%%#*}
        for host in $line; do
            hosts+=("$host")
        done
    done <"$hosts_file"
else
    hosts=(localhost)
fi

# shellcheck disable=SC2206 # the options are words, as Spark splits SPARK_SSH_OPTS
ssh_opts=(${EMBER_SSH_OPTS:--o StrictHostKeyChecking=no})

# Runs the command on host $1 (here for a local name, else over ssh).
run_command_on() {
    case "$1" in
        localhost | 127.0.0.1 | ::1)
            bash -c "$command_line"
            ;;
        *)
            # shellcheck disable=SC2029 # the command line is for the remote shell
            ssh "${ssh_opts[@]}" "$1" "$command_line" </dev/null
            ;;
    esac
}

# Runs the command on host $1, each output line prefixed; returns the command's status.
run_on() {
    run_command_on "$1" 2>&1 | sed "s/^/$1: /"
    return "${PIPESTATUS[0]}"
}

status=0
pids=()
for host in ${hosts[@]+"${hosts[@]}"}; do
    if [ -n "${EMBER_SSH_FOREGROUND:-}" ]; then
        run_on "$host" || status=1
    else
        run_on "$host" &
        pids+=("$!")
    fi
done
for pid in ${pids[@]+"${pids[@]}"}; do
    wait "$pid" || status=1
done
exit "$status"
