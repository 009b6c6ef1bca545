"""The shared store: PostgreSQL through asyncpg, for several gateways at once.

Each method is one transaction on a pooled connection; it locks the rows its decision
reads (``FOR UPDATE``), runs the domain's decision and writes the result, so two
gateways racing for one verification verify it once. Creates for one phone number are
serialised by a transaction-level advisory lock (one pending verification per number
and DID), creates with one Idempotency-Key by another.

Beyond the pool, two dedicated connections (asyncpg's pool runs ``UNLISTEN *`` and
``pg_advisory_unlock_all()`` when a connection is released, LAB-NOTES):

- the listener: ``LISTEN ivr_verification``. Every terminal transition sends
  ``NOTIFY ivr_verification, '<id>'`` in its transaction (delivered on commit), so a long
  poll on any gateway wakes when any gateway commits. After a lost connection it
  reconnects, listens again and asks the service to re-check its waiters (notifications
  sent meanwhile are lost).
- the sweeper: holds a session advisory lock; only its holder expires overdue
  verifications, and when it dies the lock goes with its connection to the next.

The outbox is shared with a lease: the gateway that commits an event holds it (it
delivers it at once), and a due event is taken by one gateway at a time with
``FOR UPDATE SKIP LOCKED``; an event whose holder died is free again when its lease ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from random import Random

import asyncpg

from ivr.config import ConfigError, StoreSettings
from ivr.log import get_logger
from ivr.store.postgres_conns import AdvisoryLock, Listener
from ivr.store.postgres_schema import (
    CALL_PARAMS,
    OUTBOX_PARAMS,
    V_PARAMS,
    migrate,
    schema_version,
)
from ivr.store.rows import (
    CALL_COLUMNS,
    OUTBOX_COLUMNS,
    V_COLUMNS,
    call_values,
    call_where,
    outbox_values,
    row_to_call,
    row_to_event,
    row_to_verification,
    verification_values,
)
from ivr.verification import decisions
from ivr.verification.decisions import IdempotentEntry
from ivr.verification.models import Verification
from ivr.verification.ports import (
    RECENT_CALLS,
    CallEnd,
    CallFilter,
    CallRecord,
    ChangeListener,
    CommitListener,
    Created,
    Delivery,
    NewVerification,
    OutboxEvent,
)
from ivr.vocabulary import OutboxStatus

log = get_logger("ivr.store")

CHANNEL = "ivr_verification"
# Advisory lock keys (any bigint; these spell "ivr" plus a purpose).
SWEEP_LOCK = 0x697672_02


class StoreUnavailable(ConfigError):
    """PostgreSQL could not be reached or refused us: a start-up error naming store.url."""

    def __init__(self, message: str) -> None:
        super().__init__("store.url", message)


class PostgresStore:
    def __init__(self, settings: StoreSettings, instance: str) -> None:
        self.settings = settings
        self.instance = instance  # who holds an outbox lease
        self._pool: asyncpg.Pool | None = None
        self._on_commit: CommitListener | None = None
        self._listener = Listener(self._connect, CHANNEL)
        self._sweeper = AdvisoryLock(self._connect, SWEEP_LOCK, instance)

    # -- life -------------------------------------------------------------------------

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.settings.url, timeout=5)

    async def connect(self, min_size: int | None = None, max_size: int | None = None) -> None:
        """The pool only: no migrations, no listener (``ivr db status``)."""
        try:
            self._pool = await asyncpg.create_pool(
                self.settings.url,
                min_size=min_size or self.settings.pool_min,
                max_size=max_size or self.settings.pool_max,
                timeout=5,
                command_timeout=30,
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreUnavailable(
                f"cannot connect to PostgreSQL at {self.settings.masked_url} "
                f"({str(exc) or type(exc).__name__})"
            ) from None

    @property
    def listening(self) -> asyncio.Event:
        return self._listener.listening

    async def open(self) -> None:
        await self.connect()
        await self.migrate()
        self._listener.start()

    async def close(self) -> None:
        await self._listener.stop()
        await self._sweeper.release()
        if self._pool is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("store is not open")
        return self._pool

    async def schema_version(self) -> int:
        async with self.pool.acquire() as conn:
            return await schema_version(conn)

    async def migrate(self) -> list[int]:
        """Apply the migrations this database lacks; one gateway at a time."""
        async with self.pool.acquire() as conn:
            applied = await migrate(conn, self.settings.masked_url, StoreUnavailable)
        if applied:
            log.info("store_migrated", store=self.settings.masked_url, applied=applied)
        return applied

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(2.0):
                return bool(await self.pool.fetchval("SELECT 1"))
        except Exception:
            return False

    def set_commit_listener(self, listener: CommitListener | None) -> None:
        self._on_commit = listener

    def set_change_listener(
        self, on_change: ChangeListener | None, on_resync: Callable[[], None] | None = None
    ) -> None:
        self._listener.on_notify = on_change
        self._listener.on_resync = on_resync

    # -- the listener connection -------------------------------------------------------

    # -- helpers ----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[tuple[asyncpg.Connection, list[OutboxEvent]]]:
        """One transaction; the outbox events it wrote go to the commit listener after
        it commits (never when it rolls back)."""
        emitted: list[OutboxEvent] = []
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                yield conn, emitted
        if emitted and self._on_commit is not None:
            self._on_commit(emitted)

    async def _save_terminal(
        self, conn: asyncpg.Connection, v: Verification, now: float, emitted: list[OutboxEvent]
    ) -> None:
        await conn.execute(
            f"UPDATE verifications SET ({V_COLUMNS}) = ({V_PARAMS}) WHERE id = $1",
            *verification_values(v),
        )
        event = decisions.outbox_event(v, now)
        # Leased to this gateway: it delivers the event the moment the commit is done.
        await conn.execute(
            f"INSERT INTO outbox ({OUTBOX_COLUMNS}, leased_by, lease_until)"
            f" VALUES ({OUTBOX_PARAMS}, $15, $16)",
            *outbox_values(event),
            self.instance,
            now + self.settings.lease_seconds,
        )
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, v.id)
        emitted.append(event)

    @staticmethod
    async def _lock(conn: asyncpg.Connection, name: str) -> None:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", name)

    # -- verifications ----------------------------------------------------------------

    async def create_verification(
        self, req: NewVerification, pool: Sequence[str], now: float, rng: Random
    ) -> Created:
        async with self._tx() as (conn, emitted):
            previous: IdempotentEntry | None = None
            if req.idempotency_key is not None:
                await self._lock(conn, f"idem:{req.idempotency_scope}:{req.idempotency_key}")
                columns = ", ".join(f"v.{c.strip()}" for c in V_COLUMNS.split(","))
                row = await conn.fetchrow(
                    f"SELECT k.fingerprint, k.created_at, {columns} FROM idempotency_keys k"
                    " JOIN verifications v ON v.id = k.verification_id"
                    " WHERE k.scope = $1 AND k.key = $2",
                    req.idempotency_scope,
                    req.idempotency_key,
                )
                if row is not None:
                    previous = IdempotentEntry(row[0], row_to_verification(tuple(row)[2:]), row[1])
            await self._lock(conn, f"phone:{req.phone_number}")
            rows = await conn.fetch(
                f"SELECT {V_COLUMNS} FROM verifications WHERE phone_number = $1"
                " AND status = 'pending' FOR UPDATE",
                req.phone_number,
            )
            plan = decisions.plan_create(
                req, previous, [row_to_verification(r) for r in rows], pool, now, rng
            )
            if plan.replayed:
                return Created(plan.verification, replayed=True)
            for done in plan.terminal:
                await self._save_terminal(conn, done, now, emitted)
            v = plan.verification
            await conn.execute(
                f"INSERT INTO verifications ({V_COLUMNS}) VALUES ({V_PARAMS})",
                *verification_values(v),
            )
            if req.idempotency_key is not None:
                await conn.execute(
                    "INSERT INTO idempotency_keys VALUES ($1, $2, $3, $4, $5)"
                    " ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint,"
                    " verification_id = excluded.verification_id,"
                    " created_at = excluded.created_at",
                    req.idempotency_scope,
                    req.idempotency_key,
                    req.fingerprint,
                    v.id,
                    now,
                )
            return Created(v, plan.superseded, expired=plan.expired)

    async def get_verification(self, verification_id: str) -> Verification | None:
        row = await self.pool.fetchrow(
            f"SELECT {V_COLUMNS} FROM verifications WHERE id = $1", verification_id
        )
        return row_to_verification(row) if row else None

    async def cancel_verification(
        self, verification_id: str, now: float, reason: str
    ) -> Verification:
        async with self._tx() as (conn, emitted):
            row = await conn.fetchrow(
                f"SELECT {V_COLUMNS} FROM verifications WHERE id = $1 FOR UPDATE",
                verification_id,
            )
            current = row_to_verification(row) if row else None
            done = decisions.plan_cancel(verification_id, current, now, reason)
            await self._save_terminal(conn, done, now, emitted)
            return done

    # -- calls ------------------------------------------------------------------------

    async def match_call(
        self, call: CallRecord, caller_e164: str, caller_raw: str, now: float
    ) -> tuple[CallRecord, Verification | None]:
        async with self._tx() as (conn, emitted):
            # FOR UPDATE: a second gateway matching the same verification waits here,
            # then finds it no longer pending and records no_pending.
            row = await conn.fetchrow(
                f"SELECT {V_COLUMNS} FROM verifications WHERE phone_number = $1"
                " AND dial_number = $2 AND status = 'pending'"
                " ORDER BY created_at DESC LIMIT 1 FOR UPDATE",
                caller_e164,
                call.did,
            )
            candidate = row_to_verification(row) if row else None
            plan = decisions.plan_match(call, candidate, caller_raw, now)
            if plan.changed is not None:
                await self._save_terminal(conn, plan.changed, now, emitted)
            await conn.execute(
                f"INSERT INTO calls ({CALL_COLUMNS}) VALUES ({CALL_PARAMS})",
                *call_values(plan.record),
            )
            return plan.record, plan.verified

    async def record_call(self, call: CallRecord) -> None:
        await self.pool.execute(
            f"INSERT INTO calls ({CALL_COLUMNS}) VALUES ({CALL_PARAMS})", *call_values(call)
        )

    async def finish_calls(self, ends: Sequence[CallEnd]) -> None:
        await self.pool.executemany(
            "UPDATE calls SET ended_at = $1, committed_at = $2 WHERE channel_id = $3"
            " AND ended_at IS NULL",
            [(e.ended_at, e.committed_at, e.channel_id) for e in ends],
        )

    async def list_calls(self, query: CallFilter = RECENT_CALLS) -> list[CallRecord]:
        where, args = call_where(query, lambda n: f"${n}")
        rows = await self.pool.fetch(
            f"SELECT {CALL_COLUMNS} FROM calls{where} ORDER BY seq DESC LIMIT ${len(args) + 1}",
            *args,
            query.limit,
        )
        return [row_to_call(r) for r in rows]

    async def purge(self, calls_before: float, verifications_before: float) -> tuple[int, int]:
        ended = (
            "SELECT id FROM verifications WHERE status <> 'pending'"
            " AND coalesce(verified_at, ended_at) < $1"
        )
        async with self.pool.acquire() as conn, conn.transaction():
            calls = await conn.execute("DELETE FROM calls WHERE started_at < $1", calls_before)
            await conn.execute(
                f"DELETE FROM outbox WHERE verification_id IN ({ended})", verifications_before
            )
            await conn.execute(
                f"DELETE FROM idempotency_keys WHERE verification_id IN ({ended})",
                verifications_before,
            )
            gone = await conn.execute(
                f"DELETE FROM verifications WHERE id IN ({ended})", verifications_before
            )
        return int(calls.split()[-1]), int(gone.split()[-1])

    # -- expiry -----------------------------------------------------------------------

    async def expire_due(self, now: float) -> list[Verification]:
        if not await self._sweeper.held():
            return []  # another gateway sweeps
        async with self._tx() as (conn, emitted):
            rows = await conn.fetch(
                f"SELECT {V_COLUMNS} FROM verifications WHERE status = 'pending'"
                " AND expires_at <= $1 ORDER BY expires_at LIMIT 1000 FOR UPDATE SKIP LOCKED",
                now,
            )
            done = decisions.plan_expiry([row_to_verification(r) for r in rows], now)
            for v in done:
                await self._save_terminal(conn, v, now, emitted)
            return done

    async def next_expiry(self) -> float | None:
        value = await self.pool.fetchval(
            "SELECT min(expires_at) FROM verifications WHERE status = 'pending'"
        )
        return float(value) if value is not None else None

    async def busiest_pending(self) -> int:
        value = await self.pool.fetchval(
            "SELECT max(n) FROM (SELECT count(*) AS n FROM verifications"
            " WHERE status = 'pending' GROUP BY phone_number) per_number"
        )
        return int(value or 0)

    async def count_pending(self) -> int:
        return int(
            await self.pool.fetchval("SELECT count(*) FROM verifications WHERE status = 'pending'")
        )

    # -- outbox -----------------------------------------------------------------------

    async def outbox_backlog(self) -> int:
        value = await self.pool.fetchval("SELECT count(*) FROM outbox WHERE status = 'pending'")
        return int(value)

    async def list_outbox(
        self, status: OutboxStatus | None = None, limit: int = 1000
    ) -> list[OutboxEvent]:
        if status is None:
            rows = await self.pool.fetch(
                f"SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY created_at, id LIMIT $1", limit
            )
        else:
            rows = await self.pool.fetch(
                f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = $1"
                " ORDER BY created_at, id LIMIT $2",
                str(status),
                limit,
            )
        return [row_to_event(r) for r in rows]

    async def due_events(self, now: float, per_portal: int) -> list[OutboxEvent]:
        """Take (lease) the first due events of every portal that nobody else holds."""
        free = "(lease_until IS NULL OR lease_until <= $1 OR leased_by = $3)"
        rows = await self.pool.fetch(
            f"""
            WITH due AS (
                SELECT id FROM (
                    SELECT id, row_number() OVER (
                        PARTITION BY portal ORDER BY next_attempt_at) AS rn
                    FROM outbox
                    WHERE status = 'pending' AND next_attempt_at <= $1 AND {free}
                ) ranked WHERE rn <= $2
            ), taken AS (
                SELECT id FROM outbox
                WHERE id IN (SELECT id FROM due) AND status = 'pending' AND {free}
                FOR UPDATE SKIP LOCKED
            )
            UPDATE outbox SET leased_by = $3, lease_until = $1 + $4
            FROM taken WHERE outbox.id = taken.id
            RETURNING {", ".join(f"outbox.{c.strip()}" for c in OUTBOX_COLUMNS.split(","))}
            """,
            now,
            per_portal,
            self.instance,
            self.settings.lease_seconds,
        )
        return sorted((row_to_event(r) for r in rows), key=lambda e: (e.next_attempt_at, e.id))

    async def next_event_at(self) -> float | None:
        # When due_events could next give this gateway something: an event another one
        # holds is not due here before its lease ends.
        value = await self.pool.fetchval(
            "SELECT min(CASE WHEN leased_by <> $1 AND lease_until > next_attempt_at"
            " THEN lease_until ELSE next_attempt_at END) FROM outbox WHERE status = 'pending'",
            self.instance,
        )
        return float(value) if value is not None else None

    async def record_attempt(
        self,
        event_id: str,
        status: OutboxStatus,
        attempts: int,
        next_attempt_at: float,
        last_error: str | None = None,
        last_status: int | None = None,
        delivered_at: float | None = None,
    ) -> None:
        await self.pool.execute(
            "UPDATE outbox SET status = $1, attempts = $2, next_attempt_at = $3,"
            " last_error = $4, last_status = $5, delivered_at = $6,"
            " leased_by = NULL, lease_until = NULL WHERE id = $7",
            str(status),
            attempts,
            next_attempt_at,
            last_error,
            last_status,
            delivered_at,
            event_id,
        )

    async def record_deliveries(self, delivered: Sequence[Delivery]) -> None:
        await self.pool.executemany(
            "UPDATE outbox SET status = 'delivered', attempts = $1, next_attempt_at = $2,"
            " last_error = NULL, last_status = $3, delivered_at = $2,"
            " leased_by = NULL, lease_until = NULL WHERE id = $4",
            [(d.attempts, d.delivered_at, d.http_status, d.event_id) for d in delivered],
        )

    async def release_backlog(self, portal: str | None, now: float) -> int:
        result = await self.pool.execute(
            "UPDATE outbox SET next_attempt_at = $1 WHERE status = 'pending'"
            " AND portal IS NOT DISTINCT FROM $2 AND next_attempt_at > $1",
            now,
            portal,
        )
        return int(result.split()[-1])

    async def retry_events(self, event_id: str | None, now: float) -> int:
        if event_id is None:
            result = await self.pool.execute(
                "UPDATE outbox SET status = 'pending', next_attempt_at = $1, retry_since = $1,"
                " leased_by = NULL, lease_until = NULL WHERE status = 'failed'",
                now,
            )
        else:
            result = await self.pool.execute(
                "UPDATE outbox SET status = 'pending', next_attempt_at = $1, retry_since = $1,"
                " leased_by = NULL, lease_until = NULL"
                " WHERE id = $2 AND status IN ('failed', 'pending')",
                now,
                event_id,
            )
        return int(result.split()[-1])

    async def get_event(self, event_id: str) -> OutboxEvent | None:
        row = await self.pool.fetchrow(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = $1", event_id
        )
        return row_to_event(row) if row else None
