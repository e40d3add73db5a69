#!/usr/bin/env bash
# Memory of `orteam serve` through a flood of idle connections (issue 17): RSS before, with
# N connections open (none sends a byte), right after they close, and 30 s later; and whether
# /healthz answers during the flood. No upstream is needed: the flood never gets past the
# request head.
#
#   bench/connection-flood.sh [N]        (default N = 12000; needs `ulimit -n` above N)
#
# Uses target/release/orteam if built, else target/debug/orteam (ORTEAM_BIN overrides).
source "$(dirname "$0")/lib.sh"
N=${1:-12000}
ORTEAM=${ORTEAM_BIN:-$ROOT/target/release/orteam}
[ -x "$ORTEAM" ] || ORTEAM=$ROOT/target/debug/orteam
[ -x "$ORTEAM" ] || { echo "build orteam first: cargo build --release -p orteam" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)"

rm -f "$WORK/flood.db"*
ADMIN_TOKEN="flood-admin-token-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
OPENROUTER_BASE_URL=http://127.0.0.1:9/api/v1 ORTEAM_DATABASE_URL="sqlite://$WORK/flood.db" \
  ORTEAM_ADMIN_TOKEN=$ADMIN_TOKEN ORTEAM_LOG=warn \
  "$ORTEAM" serve --listen 127.0.0.1:9290 --workers 2 > "$WORK/flood.out" 2> "$WORK/flood.err" &
pid=$!; PIDS+=($pid)
wait_port 9290
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
echo "binary: $ORTEAM"
echo "rss_before_kib=$(rss)"

python3 - "$N" "$pid" <<'PY'
import resource, socket, sys, time, urllib.request
n, pid = int(sys.argv[1]), sys.argv[2]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
socks, refused = [], 0
for _ in range(n):
    try:
        s = socket.create_connection(("127.0.0.1", 9290))
        socks.append(s)
    except OSError:
        refused += 1
time.sleep(1)
t = time.monotonic()
try:
    ok = urllib.request.urlopen("http://127.0.0.1:9290/healthz", timeout=10).status
except Exception as e:  # the cap may hold the health probe back; say so
    ok = f"failed: {e}"
print(f"open={len(socks)} refused_at_connect={refused} rss_flood_kib={rss()} healthz_during_flood={ok} in {time.monotonic()-t:.3f}s")
for s in socks:
    s.close()
time.sleep(5)
print(f"rss_5s_after_close_kib={rss()}")
time.sleep(25)
print(f"rss_30s_after_close_kib={rss()}")
PY
echo "log lines while flooded: $(wc -l < "$WORK/flood.err")"
