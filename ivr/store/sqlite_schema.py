"""The SQLite schema: migrations and placeholders (rows: :mod:`ivr.store.rows`)."""

from __future__ import annotations

# Each entry moves the schema one version on; PRAGMA user_version says how far it is.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE verifications (
        id TEXT PRIMARY KEY,
        phone_number TEXT NOT NULL,
        dial_number TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        reference TEXT,
        callback_url TEXT,
        verified_at REAL,
        channel_id TEXT,
        trunk TEXT,
        caller_number TEXT,
        ended_at REAL,
        cancel_reason TEXT,
        portal TEXT
    );
    CREATE INDEX verifications_pending ON verifications (phone_number, dial_number)
        WHERE status = 'pending';
    CREATE INDEX verifications_expiry ON verifications (expires_at) WHERE status = 'pending';
    CREATE TABLE idempotency_keys (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        verification_id TEXT NOT NULL REFERENCES verifications (id),
        created_at REAL NOT NULL,
        PRIMARY KEY (scope, key)
    );
    CREATE TABLE calls (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        channel_id TEXT NOT NULL,
        did TEXT NOT NULL,
        trunk TEXT,
        caller_masked TEXT NOT NULL,
        presentation TEXT NOT NULL,
        absence TEXT,
        outcome TEXT NOT NULL,
        reason TEXT,
        answer_mode TEXT NOT NULL,
        started_at REAL NOT NULL,
        decided_at REAL NOT NULL,
        verification_id TEXT,
        ended_at REAL,
        committed_at REAL
    );
    CREATE INDEX calls_channel ON calls (channel_id);
    CREATE TABLE outbox (
        id TEXT PRIMARY KEY,
        verification_id TEXT NOT NULL,
        type TEXT NOT NULL,
        payload TEXT NOT NULL,
        callback_url TEXT,
        portal TEXT,
        created_at REAL NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error TEXT,
        last_status INTEGER,
        delivered_at REAL,
        retry_since REAL NOT NULL
    );
    CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';
    CREATE INDEX outbox_status ON outbox (status, created_at);
    """,
    # 2: a login page's hint reads the newest calls to one dial number.
    "CREATE INDEX calls_did ON calls (did, started_at);",
)

V_MARKS = ",".join("?" * 15)
CALL_MARKS = ",".join("?" * 14)
OUTBOX_MARKS = ",".join("?" * 14)
