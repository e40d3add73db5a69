#!/usr/bin/env bash
# The gateway benchmark of docs/BENCHMARKS.md, side by side in one run, simulator upstream:
#   (a) direct calls to the simulator, (b) nginx as a plain reverse proxy in front of it,
#   (c) `orteam serve` with the full policy on SQLite, (d) the same on PostgreSQL, and the floor
#   under (c) and (d): the gateway's server core and upstream pool with no policy at all
#   (target `passthrough`, crates/orteam-gateway/examples/passthrough.rs);
# concurrency 1, 64 and 256, non-stream and stream, for each route in ROUTES (default: chat;
# also messages, responses, embeddings, completions; embeddings has no stream rows). Then the
# RSS of `orteam serve` holding 1,000 concurrent streams.
#
#   bench/gateway-load.sh [SECONDS=5] [ROUNDS=1]
#
# For a quicker look while profiling, narrow it with the environment: TARGETS="nginx
# orteam-sqlite" CONCURRENCY="1 64" STREAMS="0" MEMORY=0 bench/gateway-load.sh 3 1
# ORTEAM_BIN=path runs that build of `orteam` instead (A/B of two builds, e.g. with
# bench/ab/no-inflight-hold.patch applied to one).
# Every route side by side: ROUTES="chat messages responses embeddings completions" …
#
# Method (../shared/performance-notes.md): every server pinned to CPU 1, wrk on CPU 0 (on CPU 1
# at concurrency 1), one warm-up, exact percentiles from wrk's Lua `done` hook.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need wrk wrk; need nginx nginx-light
SECS=${1:-5}; ROUNDS=${2:-1}
PG_URL=${ORTEAM_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}

if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release -q -p orteam --bin orteam
  cargo build --release -q -p orteam-sim --example sim_server
  cargo build --release -q -p orteam-gateway --example passthrough
fi
# ORTEAM_BIN: another build of the gateway, for an A/B in one sitting (docs/BENCHMARKS.md).
ORTEAM="${ORTEAM_BIN:-$ROOT/target/release/orteam}"

# Upstream: the simulator on one core.
taskset -c 1 "$ROOT/target/release/examples/sim_server" --port 9200 --threads 1 > "$WORK/sim.out" &
PIDS+=($!); wait_port 9200
SIM_URL=$(sed -n 's/^BASE_URL=//p' "$WORK/sim.out")
MGMT=$(sed -n 's/^MANAGEMENT_KEY=//p' "$WORK/sim.out")
SIM_KEY=$(sed -n 's/^KEY=//p' "$WORK/sim.out")

# nginx in front of the simulator.
start_nginx nginx-proxy.conf 9201 9200

# The bare hop on the gateway's server core, same upstream.
taskset -c 1 "$ROOT/target/release/examples/passthrough" 127.0.0.1:9204 "$SIM_URL" > /dev/null &
PIDS+=($!); wait_port 9204

# A team with one member whose budgets are never the limit.
cat > "$WORK/team.toml" <<'TOML'
[org]
name = "bench"
budget = { monthly = "1000000" }
keep_keys = ["bench"]
[tiers.all]
models = "*"
[teams.core]
budget = { monthly = "1000000" }
[[members]]
id = "loadgen"
team = "core"
tier = "all"
budget = { daily = "100000" }
TOML

gateway() { # NAME DB_URL PORT; sets KEY_<NAME> and GW_PIDS[NAME] (not in a subshell)
  local name=$1 db=$2 port=$3
  rm -f "$WORK/$name.secrets"
  OPENROUTER_BASE_URL=$SIM_URL OPENROUTER_PROVISIONING_KEY=$MGMT ORTEAM_DATABASE_URL=$db \
    "$ORTEAM" team apply -f "$WORK/team.toml" --yes --secrets-out "$WORK/$name.secrets" > /dev/null
  OPENROUTER_BASE_URL=$SIM_URL OPENROUTER_API_KEY=$SIM_KEY ORTEAM_DATABASE_URL=$db ORTEAM_LOG=warn \
    ORTEAM_ADMIN_TOKEN=$ADMIN_TOKEN \
    taskset -c 1 "$ORTEAM" serve --listen "127.0.0.1:$port" --workers 1 > "$WORK/$name.out" 2> "$WORK/$name.err" &
  PIDS+=($!); GW_PIDS[$name]=$!
  wait_port "$port"
  printf -v "KEY_$name" '%s' "$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["secret"])' "$WORK/$name.secrets")"
}
declare -A GW_PIDS
ADMIN_TOKEN="bench-admin-token-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
rm -f "$WORK/bench.db"*
gateway sqlite "sqlite://$WORK/bench.db" 9202
SQLITE_KEY=$KEY_sqlite
PG_SCHEMA="bench_$(date +%s)"
psql "$PG_URL" -qc "CREATE SCHEMA $PG_SCHEMA" >/dev/null
gateway postgres "$PG_URL?options=-c%20search_path%3D$PG_SCHEMA" 9203
PG_KEY=$KEY_postgres

declare -A TARGET_URL=([direct]="$SIM_URL" [nginx]="http://127.0.0.1:9201/api/v1" [passthrough]="http://127.0.0.1:9204/api/v1"
  [orteam-sqlite]="http://127.0.0.1:9202/v1" [orteam-postgres]="http://127.0.0.1:9203/v1")
declare -A TARGET_KEY=([direct]="$SIM_KEY" [nginx]="$SIM_KEY" [passthrough]="$SIM_KEY" [orteam-sqlite]="$SQLITE_KEY" [orteam-postgres]="$PG_KEY")

declare -A ROUTE_PATH=([chat]=chat/completions [messages]=messages [responses]=responses
  [embeddings]=embeddings [completions]=completions)
for r in $(seq 1 "$ROUNDS"); do
  for route in ${ROUTES:-chat}; do
    for stream in ${STREAMS:-0 1}; do
      [ "$route" = embeddings ] && [ "$stream" = 1 ] && continue
      for c in ${CONCURRENCY:-1 64 256}; do
        for t in ${TARGETS:-direct nginx passthrough orteam-sqlite orteam-postgres}; do
          url="${TARGET_URL[$t]}/${ROUTE_PATH[$route]}"
          ROUTE=$route KEY=${TARGET_KEY[$t]} STREAM=$stream MAX_TOKENS=16 run_wrk "$url" "$c" 1 >/dev/null
          echo "round=$r route=$route stream=$stream c=$c target=$t $(ROUTE=$route KEY=${TARGET_KEY[$t]} STREAM=$stream MAX_TOKENS=16 run_wrk "$url" "$c" "$SECS")"
        done
      done
    done
  done
done

if [ "${MEMORY:-1}" = 0 ]; then psql "$PG_URL" -qc "DROP SCHEMA $PG_SCHEMA CASCADE" >/dev/null 2>&1 || true; exit 0; fi
# Memory: 1,000 concurrent slow streams through the SQLite gateway.
pid=${GW_PIDS[sqlite]}
base_rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
rss_parts() { awk '/^(RssAnon|RssFile|RssShmem):/ {printf "%s%s_kib=%s", sep, tolower(substr($1,4,length($1)-4)), $2; sep=" "}' "/proc/$pid/status"; }
base_parts=$(rss_parts)
cat > "$WORK/slow.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")
wrk.body = '{"model":"openai/gpt-4o-mini","stream":true,"max_tokens":40,"messages":[{"role":"user","content":"hi [[sim:tokens=40]] [[sim:delay_ms=100]]"}]}'
LUA
ulimit -n 65536 || true
KEY=$SQLITE_KEY taskset -c 0 wrk -t2 -c1000 -d8s --timeout 30s -s "$WORK/slow.lua" "http://127.0.0.1:9202/v1/chat/completions" > "$WORK/slow.txt" 2>&1 &
WRK=$!
peak=0
for _ in $(seq 1 70); do
  sleep 0.1
  v=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status"); [ "$v" -gt "$peak" ] && { peak=$v; peak_parts=$(rss_parts); }
  open=$(curl -s -H "Authorization: Bearer $ADMIN_TOKEN" "http://127.0.0.1:9202/metrics" | awk '/^orteam_streams_open / {print $2}')
  [ -n "$open" ] && [ "${open%.*}" -gt "${maxopen:-0}" ] && maxopen=${open%.*}
done
wait $WRK || true
echo "memory: rss_before_kib=$base_rss peak_rss_kib=$peak peak_open_streams=${maxopen:-0} ($(grep -E 'requests in' "$WORK/slow.txt" | xargs))"
echo "memory: before: $base_parts; at peak: ${peak_parts:-}"
psql "$PG_URL" -qc "DROP SCHEMA $PG_SCHEMA CASCADE" >/dev/null 2>&1 || true
