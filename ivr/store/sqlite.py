"""The embedded store: SQLite in WAL mode, every commit durable (synchronous=FULL).

One connection, owned by one worker thread: the event loop never waits on disk, and
SQLite's single writer is respected without lock retries (see ``group_commit``). Every
method that changes state runs whole inside one transaction (a savepoint of a group
commit), so matching a call, committing ``verified`` and queueing its callback happen
together or not at all.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from random import Random
from typing import Any, TypeVar

from ivr.store.group_commit import GroupCommit
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
from ivr.store.sqlite_checkpoint import Checkpointer
from ivr.store.sqlite_schema import CALL_MARKS, MIGRATIONS, OUTBOX_MARKS, V_MARKS
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

T = TypeVar("T")
WRITER_CHECKPOINT_PAGES = 4000  # 16 MB of log: only a burst the checkpointer did not keep up with


class SqliteStore:
    """See the module docstring; the threading and group commit are in
    :mod:`ivr.store.group_commit`."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._gc = GroupCommit()
        # WAL checkpoints on a thread of their own, not in the commit that fills the log.
        self._checkpoints = Checkpointer(self.path) if self.path != ":memory:" else None

    def set_change_listener(
        self, on_change: ChangeListener | None, on_resync: Callable[[], None] | None = None
    ) -> None:
        """One process owns the file: every change is this process's own."""

    def set_commit_listener(self, listener: CommitListener | None) -> None:
        """Called in the event loop with the outbox events of every commit: the callback
        sender delivers them at once instead of finding them by polling the outbox."""
        self._gc.on_committed = listener

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._gc.run("read", fn, *args)

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._gc.run("write", fn, *args)

    @property
    def db(self) -> sqlite3.Connection:
        if self._gc.connection is None:
            raise RuntimeError("store is not open")
        return self._gc.connection

    def _open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        if self._checkpoints is not None:
            # The checkpointer thread keeps the log short; the writer checkpoints only
            # if a burst of writes outran it (then what is left to copy is little), and
            # a log that grew is cut back to that size once it starts over.
            db.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
            db.execute(f"PRAGMA journal_size_limit={WRITER_CHECKPOINT_PAGES * 4096}")
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA foreign_keys=ON")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"store {self.path} has schema version {version}, newer than this program "
                f"({len(MIGRATIONS)})"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            db.execute("BEGIN IMMEDIATE")
            for statement in script.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")
            db.execute("COMMIT")
        self._gc.connection = db

    async def open(self) -> None:
        self._gc.start()
        await self._gc.run("flush", self._open)
        if self._checkpoints is not None:
            self._checkpoints.start()

    async def close(self) -> None:
        if not self._gc.running:
            return
        if self._checkpoints is not None:
            await asyncio.to_thread(self._checkpoints.stop)
        await self._gc.run("flush", self._close_db)  # the last connection checkpoints all
        await self._gc.stop()

    def _close_db(self) -> None:
        if self._gc.connection is not None:
            self._gc.connection.close()
            self._gc.connection = None

    def _ping(self) -> bool:
        self.db.execute("SELECT 1").fetchone()
        return True

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(2.0):
                return await self._run(self._ping)
        except (sqlite3.Error, RuntimeError, TimeoutError):
            return False

    # -- verifications ----------------------------------------------------------------
    # Each write reads the rows a decision needs, runs the decision (ivr.verification.
    # decisions) and persists what it says, all in one savepoint of the group commit.

    def _save_terminal(self, db: sqlite3.Connection, v: Verification, now: float) -> None:
        db.execute(
            f"UPDATE verifications SET ({V_COLUMNS}) = ({V_MARKS}) WHERE id = ?",
            (*verification_values(v), v.id),
        )
        event = decisions.outbox_event(v, now)
        db.execute(
            f"INSERT INTO outbox ({OUTBOX_COLUMNS}) VALUES ({OUTBOX_MARKS})",
            outbox_values(event),
        )
        self._gc.emit(event)

    @staticmethod
    def _pending_of(db: sqlite3.Connection, phone: str) -> list[Verification]:
        rows = db.execute(
            f"SELECT {V_COLUMNS} FROM verifications WHERE phone_number = ? AND status = 'pending'",
            (phone,),
        ).fetchall()
        return [row_to_verification(r) for r in rows]

    def _previous(self, db: sqlite3.Connection, req: NewVerification) -> IdempotentEntry | None:
        if req.idempotency_key is None:
            return None
        row = db.execute(
            "SELECT fingerprint, verification_id, created_at FROM idempotency_keys"
            " WHERE scope = ? AND key = ?",
            (req.idempotency_scope, req.idempotency_key),
        ).fetchone()
        if row is None:
            return None
        v = self._get(row[1])
        return None if v is None else IdempotentEntry(row[0], v, row[2])

    def _create(
        self, req: NewVerification, pool: Sequence[str], now: float, rng: Random
    ) -> Created:
        db = self.db
        if req.idempotency_key is not None:  # housekeeping: keys are remembered for a day
            db.execute(
                "DELETE FROM idempotency_keys WHERE created_at < ?",
                (now - decisions.IDEMPOTENCY_TTL,),
            )
        plan = decisions.plan_create(
            req, self._previous(db, req), self._pending_of(db, req.phone_number), pool, now, rng
        )
        if plan.replayed:
            return Created(plan.verification, replayed=True)
        for done in plan.terminal:
            self._save_terminal(db, done, now)
        v = plan.verification
        db.execute(
            f"INSERT INTO verifications ({V_COLUMNS}) VALUES ({V_MARKS})",
            verification_values(v),
        )
        if req.idempotency_key is not None:
            db.execute(
                "INSERT OR REPLACE INTO idempotency_keys VALUES (?, ?, ?, ?, ?)",
                (req.idempotency_scope, req.idempotency_key, req.fingerprint, v.id, now),
            )
        return Created(v, plan.superseded, expired=plan.expired)

    async def create_verification(
        self, req: NewVerification, pool: Sequence[str], now: float, rng: Random
    ) -> Created:
        return await self._write(self._create, req, pool, now, rng)

    def _get(self, verification_id: str) -> Verification | None:
        row = self.db.execute(
            f"SELECT {V_COLUMNS} FROM verifications WHERE id = ?", (verification_id,)
        ).fetchone()
        return row_to_verification(row) if row else None

    async def get_verification(self, verification_id: str) -> Verification | None:
        return await self._run(self._get, verification_id)

    def _cancel(self, verification_id: str, now: float, reason: str) -> Verification:
        done = decisions.plan_cancel(verification_id, self._get(verification_id), now, reason)
        self._save_terminal(self.db, done, now)
        return done

    async def cancel_verification(
        self, verification_id: str, now: float, reason: str
    ) -> Verification:
        return await self._write(self._cancel, verification_id, now, reason)

    # -- calls ------------------------------------------------------------------------

    def _match(
        self, call: CallRecord, caller_e164: str, caller_raw: str, now: float
    ) -> tuple[CallRecord, Verification | None]:
        db = self.db
        row = db.execute(
            f"SELECT {V_COLUMNS} FROM verifications WHERE phone_number = ?"
            " AND dial_number = ? AND status = 'pending' ORDER BY created_at DESC LIMIT 1",
            (caller_e164, call.did),
        ).fetchone()
        candidate = row_to_verification(row) if row is not None else None
        plan = decisions.plan_match(call, candidate, caller_raw, now)
        if plan.changed is not None:
            self._save_terminal(db, plan.changed, now)
        self._record(plan.record)
        return plan.record, plan.verified

    async def match_call(
        self, call: CallRecord, caller_e164: str, caller_raw: str, now: float
    ) -> tuple[CallRecord, Verification | None]:
        # A call's write: it may wait a few ms for other calls' to share its commit.
        return await self._gc.run("gather", self._match, call, caller_e164, caller_raw, now)

    def _record(self, call: CallRecord) -> None:
        self.db.execute(
            f"INSERT INTO calls ({CALL_COLUMNS}) VALUES ({CALL_MARKS})",
            call_values(call),
        )

    async def record_call(self, call: CallRecord) -> None:
        await self._gc.run("gather", self._record, call)

    def _finish(self, ends: Sequence[CallEnd]) -> None:
        self.db.executemany(
            "UPDATE calls SET ended_at = ?, committed_at = ? WHERE channel_id = ?"
            " AND ended_at IS NULL",
            [(e.ended_at, e.committed_at, e.channel_id) for e in ends],
        )

    async def finish_calls(self, ends: Sequence[CallEnd]) -> None:
        await self._gc.run("lazy", self._finish, ends)  # rides with the next write

    def _list_calls(self, query: CallFilter) -> list[CallRecord]:
        where, args = call_where(query, lambda n: "?")
        rows = self.db.execute(
            f"SELECT {CALL_COLUMNS} FROM calls{where} ORDER BY seq DESC LIMIT ?",
            (*args, query.limit),
        ).fetchall()
        return [row_to_call(r) for r in rows]

    async def list_calls(self, query: CallFilter = RECENT_CALLS) -> list[CallRecord]:
        return await self._run(self._list_calls, query)

    def _purge(self, calls_before: float, verifications_before: float) -> tuple[int, int]:
        db = self.db
        calls = db.execute("DELETE FROM calls WHERE started_at < ?", (calls_before,)).rowcount
        ended = (
            "SELECT id FROM verifications WHERE status != 'pending'"
            " AND coalesce(verified_at, ended_at) < ?"
        )
        db.execute(
            f"DELETE FROM outbox WHERE verification_id IN ({ended})", (verifications_before,)
        )
        db.execute(
            f"DELETE FROM idempotency_keys WHERE verification_id IN ({ended})",
            (verifications_before,),
        )
        gone = db.execute(
            f"DELETE FROM verifications WHERE id IN ({ended})", (verifications_before,)
        ).rowcount
        return calls, gone

    async def purge(self, calls_before: float, verifications_before: float) -> tuple[int, int]:
        return await self._write(self._purge, calls_before, verifications_before)

    # -- expiry -----------------------------------------------------------------------

    def _expire_due(self, now: float) -> list[Verification]:
        rows = self.db.execute(
            f"SELECT {V_COLUMNS} FROM verifications WHERE status = 'pending'"
            " AND expires_at <= ? ORDER BY expires_at LIMIT 1000",
            (now,),
        ).fetchall()
        done = decisions.plan_expiry([row_to_verification(r) for r in rows], now)
        for v in done:
            self._save_terminal(self.db, v, now)
        return done

    async def expire_due(self, now: float) -> list[Verification]:
        return await self._write(self._expire_due, now)

    def _next_expiry(self) -> float | None:
        row = self.db.execute(
            "SELECT min(expires_at) FROM verifications WHERE status = 'pending'"
        ).fetchone()
        return row[0] if row and row[0] is not None else None

    async def next_expiry(self) -> float | None:
        return await self._run(self._next_expiry)

    def _count_pending(self) -> int:
        row = self.db.execute("SELECT count(*) FROM verifications WHERE status = 'pending'")
        return int(row.fetchone()[0])

    async def count_pending(self) -> int:
        return await self._run(self._count_pending)

    def _outbox_backlog(self) -> int:
        row = self.db.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()
        return int(row[0])

    async def outbox_backlog(self) -> int:
        return await self._run(self._outbox_backlog)

    def _busiest_pending(self) -> int:
        row = self.db.execute(
            "SELECT max(n) FROM (SELECT count(*) AS n FROM verifications"
            " WHERE status = 'pending' GROUP BY phone_number)"
        ).fetchone()
        return int(row[0] or 0)

    async def busiest_pending(self) -> int:
        return await self._run(self._busiest_pending)

    # -- outbox -----------------------------------------------------------------------

    def _list_outbox(self, status: OutboxStatus | None, limit: int) -> list[OutboxEvent]:
        sql = f"SELECT {OUTBOX_COLUMNS} FROM outbox"
        args: tuple[Any, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            args = (str(status),)
        rows = self.db.execute(sql + " ORDER BY created_at LIMIT ?", (*args, limit)).fetchall()
        return [row_to_event(r) for r in rows]

    async def list_outbox(
        self, status: OutboxStatus | None = None, limit: int = 1000
    ) -> list[OutboxEvent]:
        return await self._run(self._list_outbox, status, limit)

    def _due_events(self, now: float, per_portal: int) -> list[OutboxEvent]:
        # The first few due events of every portal: a portal with a backlog of failing
        # events cannot fill the window and starve the others.
        rows = self.db.execute(
            f"SELECT {OUTBOX_COLUMNS} FROM ("
            f" SELECT {OUTBOX_COLUMNS}, row_number() OVER ("
            "  PARTITION BY portal ORDER BY next_attempt_at) AS rn"
            " FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?)"
            " WHERE rn <= ? ORDER BY next_attempt_at",
            (now, per_portal),
        ).fetchall()
        return [row_to_event(r) for r in rows]

    async def due_events(self, now: float, per_portal: int) -> list[OutboxEvent]:
        return await self._run(self._due_events, now, per_portal)

    def _next_event_at(self) -> float | None:
        row = self.db.execute(
            "SELECT min(next_attempt_at) FROM outbox WHERE status = 'pending'"
        ).fetchone()
        return row[0] if row and row[0] is not None else None

    async def next_event_at(self) -> float | None:
        return await self._run(self._next_event_at)

    def _record_attempt(
        self,
        event_id: str,
        status: OutboxStatus,
        attempts: int,
        next_attempt_at: float,
        last_error: str | None,
        last_status: int | None,
        delivered_at: float | None,
    ) -> None:
        self.db.execute(
            "UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?,"
            " last_status = ?, delivered_at = ? WHERE id = ?",
            (
                str(status),
                attempts,
                next_attempt_at,
                last_error,
                last_status,
                delivered_at,
                event_id,
            ),
        )

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
        await self._write(
            self._record_attempt,
            event_id,
            status,
            attempts,
            next_attempt_at,
            last_error,
            last_status,
            delivered_at,
        )

    def _record_deliveries(self, delivered: Sequence[Delivery]) -> None:
        self.db.executemany(
            "UPDATE outbox SET status = 'delivered', attempts = ?, next_attempt_at = ?,"
            " last_error = NULL, last_status = ?, delivered_at = ? WHERE id = ?",
            [
                (d.attempts, d.delivered_at, d.http_status, d.delivered_at, d.event_id)
                for d in delivered
            ],
        )

    async def record_deliveries(self, delivered: Sequence[Delivery]) -> None:
        await self._gc.run("lazy", self._record_deliveries, delivered)

    def _release_backlog(self, portal: str | None, now: float) -> int:
        cur = self.db.execute(
            "UPDATE outbox SET next_attempt_at = ? WHERE status = 'pending'"
            " AND portal IS ? AND next_attempt_at > ?",
            (now, portal, now),
        )
        return cur.rowcount

    async def release_backlog(self, portal: str | None, now: float) -> int:
        return await self._write(self._release_backlog, portal, now)

    def _retry_events(self, event_id: str | None, now: float) -> int:
        """Queue failed events again (one, or all when ``event_id`` is None); a fresh
        retry window starts now."""
        if event_id is None:
            cur = self.db.execute(
                "UPDATE outbox SET status = 'pending', next_attempt_at = ?, retry_since = ?"
                " WHERE status = 'failed'",
                (now, now),
            )
        else:
            cur = self.db.execute(
                "UPDATE outbox SET status = 'pending', next_attempt_at = ?, retry_since = ?"
                " WHERE id = ? AND status IN ('failed', 'pending')",
                (now, now, event_id),
            )
        return cur.rowcount

    async def retry_events(self, event_id: str | None, now: float) -> int:
        return await self._write(self._retry_events, event_id, now)

    def _get_event(self, event_id: str) -> OutboxEvent | None:
        row = self.db.execute(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = ?", (event_id,)
        ).fetchone()
        return row_to_event(row) if row else None

    async def get_event(self, event_id: str) -> OutboxEvent | None:
        return await self._run(self._get_event, event_id)
