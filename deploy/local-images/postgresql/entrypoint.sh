#!/bin/bash
# First start (an empty PGDATA): a cluster owned by POSTGRES_USER with its password, reached over TCP with
# scram-sha-256, as the official image makes it. Every start: PostgreSQL in the foreground as the postgres user,
# exec'd by setpriv (which, unlike runuser, leaves no parent behind) so it is PID 1 and `docker stop` signals it.
set -euo pipefail
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD (the password of POSTGRES_USER)}"
user="${POSTGRES_USER:-postgres}"
mkdir -p "$PGDATA" && chown postgres:postgres "$PGDATA" && chmod 700 "$PGDATA"
if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
  pwfile="$(mktemp)"
  printf '%s' "$POSTGRES_PASSWORD" > "$pwfile" && chown postgres "$pwfile"
  runuser -u postgres -- initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" -A scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  # The official image also makes a database named after the user (POSTGRES_DB); clients that connect without
  # naming one (psql, pg_isready) expect it.
  db="${POSTGRES_DB:-$user}"
  if [[ "$db" != postgres ]]; then
    echo "CREATE DATABASE \"$db\";" | runuser -u postgres -- postgres --single -D "$PGDATA" postgres >/dev/null
  fi
  echo "postgresql: initialised $PGDATA for user $user"
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" -c listen_addresses='*' "$@"
