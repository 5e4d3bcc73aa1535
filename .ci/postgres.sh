#!/usr/bin/env bash
# Start a throw-away PostgreSQL server for the multi-worker tuning test and print its URL.
#
#   export IONFNO_TEST_POSTGRES_URL=$(bash .ci/postgres.sh)
#   .venv/bin/python -m pytest -m postgres tests/tuning
#
# Installs Debian's `postgresql` package when no server binaries are present (needs root and
# apt), creates a private cluster in $IONFNO_PG_DIR (default /tmp/ionfno-pg) that listens on
# 127.0.0.1 only (port $IONFNO_PG_PORT, default 55432), creates user and database `ionfno`,
# installs the Python driver (psycopg2-binary) into .venv when missing, and prints the URL on
# stdout (everything else goes to stderr). Safe to run again: a running server is reused.
# Stop it with: pg_ctl -D "$IONFNO_PG_DIR" stop (as the postgres user when run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${IONFNO_PG_PORT:-55432}
DIR=${IONFNO_PG_DIR:-/tmp/ionfno-pg}
DB=ionfno
ROLE=ionfno
PASS=ionfno

log() { echo "postgres.sh: $*" >&2; }

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
if [ -z "$(bindir)" ]; then
  log "installing postgresql (Debian package)"
  if [ "$(id -u)" -ne 0 ]; then log "need root to apt-get install postgresql"; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
BIN=$(bindir)

# initdb and the server refuse to run as root: run them as the postgres system user then.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ ! -s "$DIR/PG_VERSION" ]; then
  log "creating a cluster in $DIR"
  mkdir -p "$DIR"
  PWFILE=$(mktemp)
  echo postgres >"$PWFILE"
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$DIR" "$PWFILE"; fi
  as_owner "$BIN/initdb" -D "$DIR" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --pwfile="$PWFILE" >&2
  rm -f "$PWFILE"
fi
if ! as_owner "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
  log "starting the server on 127.0.0.1:$PORT"
  as_owner "$BIN/pg_ctl" -D "$DIR" -w -l "$DIR/server.log" \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c max_connections=200" start >&2
fi

psql_admin() { as_owner "$BIN/psql" -h "$DIR" -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname='$ROLE'")" != "1" ]; then
  psql_admin -c "CREATE ROLE $ROLE LOGIN PASSWORD '$PASS'" >&2
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname='$DB'")" != "1" ]; then
  psql_admin -c "CREATE DATABASE $DB OWNER $ROLE" >&2
fi

if [ -x .venv/bin/python ] && ! .venv/bin/python -c "import psycopg2" 2>/dev/null; then
  log "installing the Python driver psycopg2-binary into .venv"
  .venv/bin/pip install -q "psycopg2-binary>=2.9" >&2
fi

echo "postgresql://$ROLE:$PASS@127.0.0.1:$PORT/$DB"
