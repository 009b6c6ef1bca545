#!/bin/sh
# First start: a cluster with the database and role the gateway uses (PG_USER,
# PG_DATABASE; the password from PG_PASSWORD or PG_PASSWORD_FILE). Then
# PostgreSQL in the foreground on PG_HOST:PG_PORT.
set -eu
BIN=/usr/lib/postgresql/15/bin
DATA=/var/lib/ivr-postgres/data
USER_NAME=${PG_USER:-ivr}
DB=${PG_DATABASE:-ivr}
if [ -n "${PG_PASSWORD_FILE:-}" ]; then PG_PASSWORD=$(cat "$PG_PASSWORD_FILE"); fi
if [ ! -s "$DATA/PG_VERSION" ]; then
    : "${PG_PASSWORD:?set PG_PASSWORD or PG_PASSWORD_FILE}"
    pwfile=$(mktemp)
    printf '%s\n' "$PG_PASSWORD" > "$pwfile"
    "$BIN/initdb" -D "$DATA" -U "$USER_NAME" --pwfile="$pwfile" -A scram-sha-256 -E UTF8 >/dev/null
    rm -f "$pwfile"
    "$BIN/pg_ctl" -D "$DATA" -o "-c listen_addresses='' -k /run/postgresql" -w start >/dev/null
    PGPASSWORD="$PG_PASSWORD" "$BIN/createdb" -h /run/postgresql -U "$USER_NAME" "$DB"
    "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
fi
exec "$BIN/postgres" -D "$DATA" -k /run/postgresql \
    -c listen_addresses="${PG_HOST:-127.0.0.1}" -p "${PG_PORT:-5432}"
