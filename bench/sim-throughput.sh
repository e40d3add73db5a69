#!/usr/bin/env bash
# Throughput of the simulator's non-streamed completion path (the gateway benchmark's upstream).
#
#   bench/sim-throughput.sh [CONNECTIONS=64] [DURATION=10s] [SIM_THREADS=1]
#
# Builds the example server in release, pins it to CPU 1 and wrk to CPU 0 (see
# /work/shared/performance-notes.md), and prints req/s and exact p50/p99 in microseconds.
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${1:-64}
DURATION=${2:-10s}
THREADS=${3:-1}

command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }
cargo build --release -q -p orteam-sim --example sim_server

OUT=$(mktemp)
taskset -c 1 target/release/examples/sim_server --threads "$THREADS" >"$OUT" &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; rm -f "$OUT"' EXIT
for _ in $(seq 200); do grep -q '^KEY=' "$OUT" && break; sleep 0.05; done
BASE=$(sed -n 's/^BASE_URL=//p' "$OUT")
export SIM_KEY=$(sed -n 's/^KEY=//p' "$OUT")
[ -n "$BASE" ] && [ -n "$SIM_KEY" ] || { echo "simulator did not start" >&2; exit 1; }

WRK_THREADS=2
[ "$CONNS" -lt 2 ] && WRK_THREADS=1
# Warm-up, then the measured run.
taskset -c 0 wrk -t"$WRK_THREADS" -c"$CONNS" -d2s -s bench/sim_completion.lua "$BASE/chat/completions" >/dev/null
echo "sim threads=$THREADS connections=$CONNS duration=$DURATION"
taskset -c 0 wrk -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" -s bench/sim_completion.lua "$BASE/chat/completions"
