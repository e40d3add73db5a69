#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers for the tests and prints the URL to use.
#
# Order: $ORTEAM_TEST_DATABASE_URL if it answers; else postgres://postgres@127.0.0.1:5432/test;
# else start the machine's cluster (pg_ctlcluster); else a throwaway cluster in a temp dir
# (initdb + pg_ctl, installing PostgreSQL with apt-get if it is missing).
# PostgreSQL tests are never skipped, so failing here fails the test run.
set -euo pipefail

log() { echo "ensure-postgres: $*" >&2; }

answers() {
  command -v psql >/dev/null 2>&1 || return 1
  psql "$1" -qtAc 'select 1' >/dev/null 2>&1
}

default_url="postgres://postgres@127.0.0.1:5432/test"
if [ -n "${ORTEAM_TEST_DATABASE_URL:-}" ] && answers "$ORTEAM_TEST_DATABASE_URL"; then
  echo "$ORTEAM_TEST_DATABASE_URL"; exit 0
fi
if answers "$default_url"; then
  echo "$default_url"; exit 0
fi

# The machine's own cluster may simply be stopped.
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  for v in $(ls /etc/postgresql); do
    log "starting cluster $v/main"
    pg_ctlcluster --skip-systemctl-redirect "$v" main start >&2 2>&1 || true
  done
  for _ in $(seq 1 30); do
    if answers "$default_url"; then echo "$default_url"; exit 0; fi
    psql "postgres://postgres@127.0.0.1:5432/postgres" -qtAc 'create database test' >/dev/null 2>&1 || true
    sleep 0.5
  done
fi

# A throwaway cluster of our own.
bindir=""
for d in /usr/lib/postgresql/*/bin /usr/local/bin /usr/bin; do
  if [ -x "$d/initdb" ]; then bindir="$d"; break; fi
done
if [ -z "$bindir" ]; then
  log "PostgreSQL not installed: installing it with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ]; then bindir="$d"; break; fi
  done
fi
[ -n "$bindir" ] || { log "no initdb found after install"; exit 1; }

port="${ORTEAM_TEST_PG_PORT:-55432}"
dir="${TMPDIR:-/tmp}/orteam-pg-$port"
url="postgres://postgres@127.0.0.1:$port/test"
if answers "$url"; then echo "$url"; exit 0; fi
log "starting a throwaway cluster in $dir on port $port"
rm -rf "$dir"; mkdir -p "$dir"
runas=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$dir"
  runas=(runuser -u postgres --)
fi
"${runas[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust >&2
"${runas[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" start >&2
psql "postgres://postgres@127.0.0.1:$port/postgres" -qtAc 'create database test' >&2
echo "$url"
