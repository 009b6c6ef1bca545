#!/bin/sh
# First start: a cluster with the database and role the gateway uses (IVR_PG_USER,
# IVR_PG_DATABASE; the password from IVR_PG_PASSWORD or IVR_PG_PASSWORD_FILE). Then
# PostgreSQL in the foreground on IVR_PG_HOST:IVR_PG_PORT.
set -eu
BIN=/usr/lib/postgresql/15/bin
DATA=/var/lib/ivr-postgres/data
USER_NAME=${IVR_PG_USER:-ivr}
DB=${IVR_PG_DATABASE:-ivr}
if [ -n "${IVR_PG_PASSWORD_FILE:-}" ]; then IVR_PG_PASSWORD=$(cat "$IVR_PG_PASSWORD_FILE"); fi
if [ ! -s "$DATA/PG_VERSION" ]; then
    : "${IVR_PG_PASSWORD:?set IVR_PG_PASSWORD or IVR_PG_PASSWORD_FILE}"
    pwfile=$(mktemp)
    printf '%s\n' "$IVR_PG_PASSWORD" > "$pwfile"
    "$BIN/initdb" -D "$DATA" -U "$USER_NAME" --pwfile="$pwfile" -A scram-sha-256 -E UTF8 >/dev/null
    rm -f "$pwfile"
    "$BIN/pg_ctl" -D "$DATA" -o "-c listen_addresses='' -k /run/postgresql" -w start >/dev/null
    PGPASSWORD="$IVR_PG_PASSWORD" "$BIN/createdb" -h /run/postgresql -U "$USER_NAME" "$DB"
    "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
fi
exec "$BIN/postgres" -D "$DATA" -k /run/postgresql \
    -c listen_addresses="${IVR_PG_HOST:-127.0.0.1}" -p "${IVR_PG_PORT:-5432}"
