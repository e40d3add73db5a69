# Helpers shared by the benchmark scripts. Source it.
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
WORK="${BENCH_WORK:-/tmp/orteam-bench}"
mkdir -p "$WORK"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT

need() { command -v "$1" >/dev/null 2>&1 || { echo "missing $1: apt-get install -y $2" >&2; exit 1; }; }

# start_nginx TEMPLATE PORT [UPSTREAM_PORT]: run nginx from a template, pinned to CPU 1.
start_nginx() {
  local tpl=$1 port=$2 up=${3:-0} dir="$WORK/nginx-$2"
  mkdir -p "$dir"
  local body; body=$(tr -d '\n' < "$BENCH_DIR/completion.json" | sed "s/'/\\\\'/g")
  sed -e "s#__DIR__#$dir#g" -e "s#__PORT__#$port#g" -e "s#__UPSTREAM_PORT__#$up#g" \
      -e "s#__BODY__#${body//&/\\&}#" "$BENCH_DIR/$tpl" > "$dir/nginx.conf"
  taskset -c 1 nginx -p "$dir" -c "$dir/nginx.conf" &
  PIDS+=($!)
  wait_port "$port"
}

wait_port() {
  for _ in $(seq 1 200); do
    (echo > /dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "port $1 never opened" >&2; exit 1
}

# run_wrk URL CONNECTIONS SECONDS: prints "RESULT p50_us=.. p99_us=.. rps=.."
run_wrk() {
  local url=$1 c=$2 secs=${3:-5} cpu=0
  [ "$c" = 1 ] && cpu=1
  taskset -c $cpu wrk -t1 -c"$c" -d"${secs}s" --latency -s "$BENCH_DIR/chat.lua" "$url" 2>&1 | grep '^RESULT'
}
