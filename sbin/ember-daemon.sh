#!/usr/bin/env bash
#
# Runs an Ember program as a daemon (Spark's spark-daemon.sh).
#
#   ember-daemon.sh (start|stop|status) <command> <instance> [args...]
#
# <command> is a program in $EMBER_BIN_DIR (ember-master, ember-worker); <instance> (a
# number) tells copies on one host apart. The pid file is
# $EMBER_PID_DIR/ember-$EMBER_IDENT_STRING-<command>-<instance>.pid and the output goes to
# $EMBER_LOG_DIR/ember-$EMBER_IDENT_STRING-<command>-<instance>-<host>.out.
#
#   start   refuses when that instance runs ("<command> running as process <pid>.  Stop it
#           first.", exit 1); rotates the log, starts the program detached (nohup, setsid,
#           nice), writes the pid file, then waits until the program reports it is up
#           (EMBER_START_TIMEOUT) or dies (then prints the end of its log and exits 1).
#           Once up, the master and the worker's line is printed ("Master listening on
#           ember://host:port"): the address really bound, after the warning that names the
#           taken port when the one asked for was.
#   stop    "stopping <command>": SIGTERM, then waits up to EMBER_STOP_TIMEOUT seconds for
#           it to exit, SIGKILL after that; removes the pid file. "no <command> to stop"
#           when it does not run (a stale pid file is removed).
#   status  exit 0 when it runs, 1 when a pid file names a dead process, 2 with no pid file.
#
# Environment (also from $EMBER_CONF_DIR/ember-env.sh):
#   EMBER_PID_DIR        pid files (default /tmp)
#   EMBER_LOG_DIR        logs (default $EMBER_HOME/logs)
#   EMBER_LOG_MAX_FILES  old logs kept per daemon, rotated at each start (default 5)
#   EMBER_IDENT_STRING   who runs it, in file names (default $USER)
#   EMBER_NICENESS       the daemon's scheduling priority (default 0)
#   EMBER_NO_DAEMONIZE   when set, start runs the program in the foreground, no pid file
#   EMBER_START_TIMEOUT  seconds start waits for the program to report it is up (default 10)
#   EMBER_STOP_TIMEOUT   seconds stop waits after SIGTERM before SIGKILL (default 30)
set -eu

usage="Usage: ./sbin/ember-daemon.sh (start|stop|status) <command> <instance> [args...]"
case "${1:-}" in
    --help | -h)
        echo "$usage"
        exit 0
        ;;
esac
if [ $# -lt 3 ]; then
    echo "$usage" >&2
    exit 1
fi

sbin="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=sbin/ember-config.sh
. "$sbin/ember-config.sh"

action=$1
command=$2
instance=$3
shift 3

case "$command" in
    "" | */*)
        echo "ember-daemon.sh: <command> must name a program in \$EMBER_BIN_DIR, not '$command'" >&2
        exit 1
        ;;
esac

# A whole number, or exit naming the setting.
require_number() {
    case "$2" in
        "" | *[!0-9]*)
            echo "ember-daemon.sh: $1 must be a whole number, not '$2'" >&2
            exit 1
            ;;
    esac
}

require_number "<instance>" "$instance"
EMBER_PID_DIR="${EMBER_PID_DIR:-/tmp}"
EMBER_LOG_DIR="${EMBER_LOG_DIR:-$EMBER_HOME/logs}"
EMBER_LOG_MAX_FILES="${EMBER_LOG_MAX_FILES:-5}"
EMBER_IDENT_STRING="${EMBER_IDENT_STRING:-${USER:-$(id -un)}}"
EMBER_NICENESS="${EMBER_NICENESS:-0}"
EMBER_START_TIMEOUT="${EMBER_START_TIMEOUT:-10}"
EMBER_STOP_TIMEOUT="${EMBER_STOP_TIMEOUT:-30}"
require_number EMBER_LOG_MAX_FILES "$EMBER_LOG_MAX_FILES"
require_number EMBER_START_TIMEOUT "$EMBER_START_TIMEOUT"
require_number EMBER_STOP_TIMEOUT "$EMBER_STOP_TIMEOUT"

host="${HOSTNAME:-$(uname -n)}"
name="ember-$EMBER_IDENT_STRING-$command-$instance"
pid_file="$EMBER_PID_DIR/$name.pid"
log="$EMBER_LOG_DIR/$name-$host.out"
exe="$EMBER_BIN_DIR/$command"

# Whether process $1 exists and is not a zombie (an exited process nobody reaped yet).
is_alive() {
    local stat
    case "$1" in "" | *[!0-9]*) return 1 ;; esac
    stat=$(ps -p "$1" -o stat= 2>/dev/null) || return 1
    case "$stat" in Z*) return 1 ;; esac
}

# Whether process $1 is alive and runs $command (and so is not a recycled pid). Linux cuts
# process names to 15 characters.
is_running() {
    local comm
    is_alive "$1" || return 1
    comm=$(ps -p "$1" -o comm= 2>/dev/null) || return 1
    comm=${comm##*/}
    [ "$comm" = "$command" ] || [ "$comm" = "${command:0:15}" ]
}

# The pid in the pid file, or nothing.
recorded_pid() {
    if [ -f "$pid_file" ]; then
        cat "$pid_file" 2>/dev/null || true
    fi
}

# Keeps the last $EMBER_LOG_MAX_FILES logs as $log.1 (newest) ... $log.N.
rotate_log() {
    local num=$EMBER_LOG_MAX_FILES prev
    if [ ! -f "$log" ] || [ "$num" -lt 1 ]; then
        return 0
    fi
    while [ "$num" -gt 1 ]; do
        prev=$((num - 1))
        if [ -f "$log.$prev" ]; then
            mv -f "$log.$prev" "$log.$num"
        fi
        num=$prev
    done
    mv -f "$log" "$log.1"
}

# The line a program writes once it is up, when known: the master and the worker print
# theirs on stdout whatever the log level.
ready_line() {
    case "$command" in
        ember-master) echo "Master listening on" ;;
        ember-worker) echo "Worker listening on" ;;
        *) echo "" ;;
    esac
}

start() {
    local pid ready required polls deadline
    pid=$(recorded_pid)
    if [ -n "$pid" ] && is_running "$pid"; then
        echo "$command running as process $pid.  Stop it first."
        exit 1
    fi
    if [ ! -x "$exe" ]; then
        echo "failed to launch: $exe is not an executable program" >&2
        echo "(build it with 'cargo build --release', or point EMBER_BIN_DIR at it)" >&2
        exit 1
    fi
    if [ -n "${EMBER_NO_DAEMONIZE+set}" ]; then
        exec nice -n "$EMBER_NICENESS" "$exe" "$@"
    fi
    mkdir -p "$EMBER_PID_DIR" "$EMBER_LOG_DIR"
    rm -f "$pid_file"
    rotate_log
    echo "starting $command, logging to $log"
    # nohup, nice and setsid each exec the next, so $! is the program's own pid. setsid
    # gives it a session of its own, away from this terminal's signals.
    local detach=()
    if command -v setsid >/dev/null 2>&1; then
        detach=(setsid)
    fi
    nohup nice -n "$EMBER_NICENESS" ${detach[@]+"${detach[@]}"} "$exe" "$@" >>"$log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$pid_file"

    # Wait, bounded, until it says it is up; fail if it dies first. Any other program
    # may instead just survive a moment (10 polls).
    ready=$(ready_line)
    required=0
    if [ -n "$ready" ]; then
        required=1
    fi
    polls=0
    # SECONDS counts whole seconds: one more makes sure at least the timeout passes.
    deadline=$((SECONDS + EMBER_START_TIMEOUT + 1))
    while :; do
        if ! is_alive "$pid"; then
            rm -f "$pid_file"
            echo "failed to launch: $exe $*" >&2
            tail -n 20 "$log" | sed 's/^/  /' >&2
            echo "full log in $log" >&2
            exit 1
        fi
        if [ -n "$ready" ] && grep -qF -- "$ready" "$log" 2>/dev/null; then
            # Where it really listens: on a taken port it binds the next one, and says so.
            grep -F -- "could not bind on port" "$log" | sed 's/^.*\(Service \)/\1/' || true
            grep -F -- "$ready" "$log" | tail -n 1
            return 0
        fi
        if [ "$required" = 0 ] && [ "$polls" -ge 10 ]; then
            return 0
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "$command (process $pid) has not reported that it is up after" \
                "${EMBER_START_TIMEOUT}s; see $log"
            return 0
        fi
        polls=$((polls + 1))
        sleep 0.1
    done
}

stop() {
    local pid deadline
    pid=$(recorded_pid)
    if [ -z "$pid" ] || ! is_running "$pid"; then
        echo "no $command to stop"
        rm -f "$pid_file"
        return 0
    fi
    echo "stopping $command"
    kill -TERM "$pid" 2>/dev/null || true
    # SECONDS counts whole seconds: one more makes sure at least the timeout passes.
    deadline=$((SECONDS + EMBER_STOP_TIMEOUT + 1))
    while is_alive "$pid"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "$command (process $pid) did not stop within ${EMBER_STOP_TIMEOUT}s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            deadline=$((SECONDS + 6))
            while is_alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do
                sleep 0.1
            done
            break
        fi
        sleep 0.1
    done
    rm -f "$pid_file"
}

status() {
    local pid
    if [ ! -f "$pid_file" ]; then
        echo "$command is not running."
        exit 2
    fi
    pid=$(recorded_pid)
    if [ -n "$pid" ] && is_running "$pid"; then
        echo "$command is running as process $pid."
        exit 0
    fi
    echo "file $pid_file is present but $command is not running."
    exit 1
}

case "$action" in
    start) start "$@" ;;
    stop) stop ;;
    status) status ;;
    *)
        echo "$usage" >&2
        exit 1
        ;;
esac
