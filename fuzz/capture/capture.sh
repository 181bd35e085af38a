#!/usr/bin/env bash
# Regenerates the seed corpus from real traffic: a master, a worker and a pi job (auth off),
# and a tiny program in cluster deploy mode (its upload), with a recording relay (relay.py) in
# front of the master, then split.py.
# Usage (from the repository root): fuzz/capture/capture.sh [CORPUS_DIR, default fuzz/corpus]
set -euo pipefail
cd "$(dirname "$0")/../.."
corpus="${1:-fuzz/corpus}"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

timeout 900 cargo build --release -q --workspace --bins --example pi
bin=target/release
master_port=17077 relay_port=17078 worker_port=17079

"$bin/ember-master" --host 127.0.0.1 --port "$master_port" --webui-port 0 >"$work/master.log" 2>&1 &
pids+=($!)
python3 fuzz/capture/relay.py "$relay_port" "$master_port" "$work/cap" &
pids+=($!)
# Waits up to 30 s for a condition; on timeout shows the logs.
sleep_until() {
    for _ in $(seq 300); do if "$@"; then return 0; fi; sleep 0.1; done
    tail -n 20 "$work"/*.log >&2
    return 1
}
sleep_until grep -q "listening" "$work/master.log"
"$bin/ember-worker" --host 127.0.0.1 --port "$worker_port" --webui-port 0 --cores 2 --memory 1g \
    "ember://127.0.0.1:$relay_port" >"$work/worker.log" 2>&1 &
pids+=($!)
sleep_until grep -qi "registered" "$work/worker.log"
timeout 120 "$bin/ember-submit" --master "ember://127.0.0.1:$relay_port" "$bin/examples/pi" 8 \
    >"$work/pi.log" 2>&1 || { cat "$work/pi.log"; exit 1; }
grep -i "pi is" "$work/pi.log"
# Cluster deploy mode with a tiny program, for the program store's upload messages.
printf '#!/bin/sh\nexit 0\n' >"$work/tiny" && chmod +x "$work/tiny"
timeout 60 "$bin/ember-submit" --master "ember://127.0.0.1:$relay_port" --deploy-mode cluster \
    "$work/tiny" >"$work/tiny.log" 2>&1 || { cat "$work/tiny.log"; exit 1; }
python3 fuzz/capture/split.py "$work/cap" "$corpus"
find "$corpus" -type f | wc -l
