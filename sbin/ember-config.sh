# shellcheck shell=bash
#
# Sourced by the other sbin scripts (Spark's spark-config.sh and load-spark-env.sh):
#
#   EMBER_HOME      the Ember checkout or install (default: the parent of this sbin/)
#   EMBER_CONF_DIR  configuration (default: $EMBER_HOME/conf); its ember-env.sh, if present,
#                   is sourced once with every variable it sets exported
#   EMBER_BIN_DIR   where ember-master and ember-worker are (default:
#                   $EMBER_HOME/target/release; tests point it at target/debug)

if [ -z "${EMBER_HOME:-}" ]; then
    EMBER_HOME="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
fi
export EMBER_HOME
export EMBER_CONF_DIR="${EMBER_CONF_DIR:-$EMBER_HOME/conf}"

# ember-env.sh once per run of scripts, however many of them source this file.
if [ -z "${EMBER_ENV_LOADED:-}" ]; then
    export EMBER_ENV_LOADED=1
    if [ -f "$EMBER_CONF_DIR/ember-env.sh" ]; then
        set -a
        # shellcheck source=/dev/null
        . "$EMBER_CONF_DIR/ember-env.sh"
        set +a
    fi
fi

export EMBER_BIN_DIR="${EMBER_BIN_DIR:-$EMBER_HOME/target/release}"

# For the scripts that take no arguments: `--help` or `-h` prints the usage ($1) on stdout
# and exits 0; any other argument prints what is wrong and the usage on stderr and exits 1,
# since a script that starts or stops daemons must not guess what a stray word meant.
ember_no_arguments() {
    local usage=$1
    shift
    if [ $# -eq 0 ]; then
        return 0
    fi
    case "$1" in
        --help | -h)
            echo "$usage"
            exit 0
            ;;
    esac
    echo "${0##*/}: unexpected argument '$1'" >&2
    echo "$usage" >&2
    exit 1
}
