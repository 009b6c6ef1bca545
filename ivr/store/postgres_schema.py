"""The PostgreSQL schema: numbered migrations and placeholders (rows: :mod:`ivr.store.rows`).

Times are POSIX seconds in ``double precision``, as in SQLite, so both stores hold the
same values and the domain never sees an engine's own time type.
"""

from __future__ import annotations

import asyncpg

MIGRATE_LOCK = 0x697672_01  # pg_advisory_xact_lock while migrating

# Migration N moves the schema from version N-1 to N; ``ivr_schema`` records each one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE verifications (
        id text PRIMARY KEY,
        phone_number text NOT NULL,
        dial_number text NOT NULL,
        status text NOT NULL,
        created_at double precision NOT NULL,
        expires_at double precision NOT NULL,
        reference text,
        callback_url text,
        verified_at double precision,
        channel_id text,
        trunk text,
        caller_number text,
        ended_at double precision,
        cancel_reason text,
        portal text
    );
    CREATE INDEX verifications_pending ON verifications (phone_number, dial_number)
        WHERE status = 'pending';
    CREATE INDEX verifications_expiry ON verifications (expires_at) WHERE status = 'pending';
    CREATE TABLE idempotency_keys (
        scope text NOT NULL,
        key text NOT NULL,
        fingerprint text NOT NULL,
        verification_id text NOT NULL REFERENCES verifications (id),
        created_at double precision NOT NULL,
        PRIMARY KEY (scope, key)
    );
    CREATE TABLE calls (
        seq bigserial PRIMARY KEY,
        channel_id text NOT NULL,
        did text NOT NULL,
        trunk text,
        caller_masked text NOT NULL,
        presentation text NOT NULL,
        absence text,
        outcome text NOT NULL,
        reason text,
        answer_mode text NOT NULL,
        started_at double precision NOT NULL,
        decided_at double precision NOT NULL,
        verification_id text,
        ended_at double precision,
        committed_at double precision
    );
    CREATE INDEX calls_channel ON calls (channel_id);
    CREATE TABLE outbox (
        id text PRIMARY KEY,
        verification_id text NOT NULL,
        type text NOT NULL,
        payload text NOT NULL,
        callback_url text,
        portal text,
        created_at double precision NOT NULL,
        status text NOT NULL DEFAULT 'pending',
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at double precision NOT NULL,
        last_error text,
        last_status integer,
        delivered_at double precision,
        retry_since double precision NOT NULL,
        -- Which gateway holds the event, and until when (the shared outbox's lease).
        leased_by text,
        lease_until double precision
    );
    CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';
    CREATE INDEX outbox_status ON outbox (status, created_at);
    """,
    # 2: a login page's hint reads the newest calls to one dial number.
    "CREATE INDEX calls_did ON calls (did, started_at);",
)

V_PARAMS = ", ".join(f"${i}" for i in range(1, 16))
CALL_PARAMS = ", ".join(f"${i}" for i in range(1, 15))
OUTBOX_PARAMS = ", ".join(f"${i}" for i in range(1, 15))


SCHEMA_TABLE = (
    "CREATE TABLE IF NOT EXISTS ivr_schema (version integer PRIMARY KEY,"
    " applied_at timestamptz NOT NULL DEFAULT now())"
)


async def schema_version(conn: asyncpg.Connection) -> int:
    await conn.execute(SCHEMA_TABLE)
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM ivr_schema"))


async def migrate(conn: asyncpg.Connection, where: str, error: type[Exception]) -> list[int]:
    """Apply the migrations this database lacks, under an advisory lock (one gateway at
    a time); ``error`` is raised for a database newer than this program."""
    applied = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATE_LOCK)
        version = await schema_version(conn)
        if version > len(MIGRATIONS):
            raise error(
                f"the database at {where} has schema version {version},"
                f" newer than this program ({len(MIGRATIONS)})"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            await conn.execute(script)
            await conn.execute("INSERT INTO ivr_schema (version) VALUES ($1)", number)
            applied.append(number)
    return applied
