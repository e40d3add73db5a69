#!/usr/bin/env bash
# The crash drill (docs/CRASH-DRILL.md): load against the real `orteam serve` (plain requests,
# streams, hang-ups; a tight member budget hammered until 402), SIGKILL at a random point —
# every other round right after the restart — ROUNDS times on each backend, with upstream's
# /generation failing for a while; then restart, wait for exact costs, reconcile a day later
# (when /activity covers the day), and check ledger == billed exactly.
#
#   bench/crash-drill.sh [ROUNDS=10] [BACKENDS="sqlite postgres"]
#
# Per round it prints answered (complete answers clients received), recorded (of those, in the
# ledger after the restart), in flight resolved (requests charged provisionally at the restart),
# and at the end the ledger total, the simulator's billed total and their difference. The same
# drill with 3 rounds runs in the test suite (`crash::crash_drill`). PostgreSQL comes from
# ORTEAM_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test; a fresh schema).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ROUNDS=${1:-10}
BACKENDS=${2:-"sqlite postgres"}
cd "$ROOT"
for backend in $BACKENDS; do
  echo "## $backend, $ROUNDS kills"
  ORTEAM_DRILL_ROUNDS="$ROUNDS" cargo nextest run -p orteam --no-capture \
    -E "test(=crash::crash_drill::$backend)" 2>&1 |
    grep -E '^\| |^ledger |^Changed:|panicked|FAIL|PASS'
done
