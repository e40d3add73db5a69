#!/usr/bin/env bash
# The bare proxy hop: direct vs nginx vs the gateway's server core with no policy
# (crates/orteam-gateway/examples/passthrough.rs), upstream = a fixed completion from nginx.
# Usage: bench/proxy-hop.sh [SECONDS] [ROUNDS]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need wrk wrk; need nginx nginx-light
SECS=${1:-5}; ROUNDS=${2:-1}
cargo build --release -q -p orteam-gateway --example passthrough
start_nginx nginx-fixed-upstream.conf 9000
start_nginx nginx-proxy.conf 9001 9000
taskset -c 1 "$ROOT/target/release/examples/passthrough" 127.0.0.1:9002 http://127.0.0.1:9000/api/v1 > /dev/null &
PIDS+=($!); wait_port 9002
for r in $(seq 1 "$ROUNDS"); do
  for c in 1 64; do
    for t in direct:9000 nginx:9001 passthrough:9002; do
      echo "round=$r c=$c target=${t%%:*} $(run_wrk "http://127.0.0.1:${t##*:}/api/v1/chat/completions" "$c" "$SECS")"
    done
  done
done
