"""The embedded store: SQLite in WAL mode, every commit durable (synchronous=FULL).

One connection, owned by one worker thread: the event loop never waits on disk, and
SQLite's single writer is respected without lock retries (see ``group_commit``). Every
method that changes state runs whole inside one transaction (a savepoint of a group
commit), so matching a call, committing ``verified`` and queueing its callback happen
together or not at all.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from random import Random
from typing import Any, TypeVar

from ivr.store import CallRecord, Created, NewVerification, OutboxEvent
from ivr.store.group_commit import GroupCommit
from ivr.store.sqlite_schema import (
    CALL_COLUMNS,
    IDEMPOTENCY_TTL,
    MIGRATIONS,
    V_COLUMNS,
    V_MARKS,
    call_values,
    row_to_verification,
    verification_values,
)
from ivr.verification.errors import IdempotencyConflict, NotFound, NotPending
from ivr.verification.events import terminal_event
from ivr.verification.models import (
    InvalidTransition,
    Status,
    Verification,
    choose_dial_number,
)

T = TypeVar("T")


class SqliteStore:
    """See the module docstring; the threading and group commit are in
    :mod:`ivr.store.group_commit`."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._gc = GroupCommit()

    @property
    def on_committed_events(self) -> Callable[[list[OutboxEvent]], None] | None:
        """Called in the event loop with the outbox events of every commit: the callback
        sender delivers them at once instead of finding them by polling the outbox."""
        return self._gc.on_committed

    @on_committed_events.setter
    def on_committed_events(self, hook: Callable[[list[OutboxEvent]], None] | None) -> None:
        self._gc.on_committed = hook

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

    async def close(self) -> None:
        if not self._gc.running:
            return
        await self._gc.run("flush", self._close_db)
        await self._gc.stop()

    def _close_db(self) -> None:
        if self._gc.connection is not None:
            self._gc.connection.close()
            self._gc.connection = None

    def _tx(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        # Writes run inside the group commit's transaction: nothing to open here.
        return fn(self.db)

    def _ping(self) -> bool:
        self.db.execute("SELECT 1").fetchone()
        return True

    async def ping(self) -> bool:
        try:
            return await asyncio.wait_for(self._run(self._ping), 2.0)
        except (sqlite3.Error, RuntimeError, TimeoutError):
            return False

    # -- verifications ----------------------------------------------------------------

    def _save_terminal(self, db: sqlite3.Connection, v: Verification, now: float) -> None:
        db.execute(
            f"UPDATE verifications SET ({V_COLUMNS}) = ({V_MARKS}) WHERE id = ?",
            (*verification_values(v), v.id),
        )
        event_id, type_, body = terminal_event(v, now)
        db.execute(
            "INSERT INTO outbox (id, verification_id, type, payload, callback_url, portal,"
            " created_at, next_attempt_at, retry_since) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (event_id, v.id, type_, body, v.callback_url, v.portal, now, now, now),
        )
        self._gc.emit(
            OutboxEvent(
                event_id,
                v.id,
                type_,
                body,
                v.callback_url,
                v.portal,
                now,
                "pending",
                0,
                now,
                None,
                None,
                None,
                now,
            )
        )

    @staticmethod
    def _pending_of(db: sqlite3.Connection, phone: str) -> list[Verification]:
        rows = db.execute(
            f"SELECT {V_COLUMNS} FROM verifications WHERE phone_number = ? AND status = 'pending'",
            (phone,),
        ).fetchall()
        return [row_to_verification(r) for r in rows]

    def _create(
        self, req: NewVerification, pool: Sequence[str], now: float, rng: Random
    ) -> Created:
        def tx(db: sqlite3.Connection) -> Created:
            if req.idempotency_key is not None:
                db.execute(
                    "DELETE FROM idempotency_keys WHERE created_at < ?", (now - IDEMPOTENCY_TTL,)
                )
                row = db.execute(
                    "SELECT fingerprint, verification_id FROM idempotency_keys"
                    " WHERE scope = ? AND key = ?",
                    (req.idempotency_scope, req.idempotency_key),
                ).fetchone()
                if row is not None:
                    if row[0] != req.fingerprint:
                        raise IdempotencyConflict(
                            "this Idempotency-Key was used with a different request"
                        )
                    existing = self._get(row[1])
                    assert existing is not None
                    return Created(existing, replayed=True)
            pending = []
            for v in self._pending_of(db, req.phone_number):
                if v.is_due(now):  # past expiry: settle it now, it holds no DID
                    self._save_terminal(db, v.expire(now), now)
                else:
                    pending.append(v)
            dial, supersede = choose_dial_number(pool, pending, rng)
            superseded: tuple[Verification, ...] = ()
            if supersede is not None:
                cancelled = supersede.cancel(now, "superseded")
                self._save_terminal(db, cancelled, now)
                superseded = (cancelled,)
            v = Verification.new(
                req.phone_number, dial, now, req.ttl, req.reference, req.callback_url, req.portal
            )
            db.execute(
                f"INSERT INTO verifications ({V_COLUMNS}) VALUES ({V_MARKS})",
                verification_values(v),
            )
            if req.idempotency_key is not None:
                db.execute(
                    "INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?)",
                    (req.idempotency_scope, req.idempotency_key, req.fingerprint, v.id, now),
                )
            return Created(v, superseded)

        return self._tx(tx)

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
        def tx(db: sqlite3.Connection) -> Verification:
            v = self._get(verification_id)
            if v is None:
                raise NotFound(f"no verification {verification_id}")
            try:
                done = v.expire(now) if v.is_due(now) else v.cancel(now, reason)
            except InvalidTransition:
                raise NotPending(
                    f"verification {verification_id} is already {v.status}",
                    current_status=str(v.status),
                ) from None
            self._save_terminal(db, done, now)
            return done

        return self._tx(tx)

    async def cancel_verification(
        self, verification_id: str, now: float, reason: str
    ) -> Verification:
        done = await self._write(self._cancel, verification_id, now, reason)
        if done.status is Status.EXPIRED:  # committed as expired; the cancel itself fails
            raise NotPending(
                f"verification {verification_id} has expired", current_status="expired"
            )
        return done

    # -- calls ------------------------------------------------------------------------

    def _match(
        self, call: CallRecord, caller_e164: str, caller_raw: str, now: float
    ) -> tuple[CallRecord, Verification | None]:
        def tx(db: sqlite3.Connection) -> tuple[CallRecord, Verification | None]:
            row = db.execute(
                f"SELECT {V_COLUMNS} FROM verifications WHERE phone_number = ?"
                " AND dial_number = ? AND status = 'pending' ORDER BY created_at DESC LIMIT 1",
                (caller_e164, call.did),
            ).fetchone()
            verified: Verification | None = None
            record = call
            if row is not None:
                v = row_to_verification(row)
                if v.is_due(now):
                    self._save_terminal(db, v.expire(now), now)
                    record = _with(
                        call, outcome="no_pending", reason="expired", verification_id=v.id
                    )
                else:
                    verified = v.verify(now, call.channel_id, call.trunk or "", caller_raw)
                    self._save_terminal(db, verified, now)
                    record = _with(call, outcome="verified", reason=None, verification_id=v.id)
            else:
                record = _with(call, outcome="no_pending", reason="no_pending_verification")
            db.execute(
                f"INSERT INTO calls ({CALL_COLUMNS}) VALUES ({','.join('?' * 14)})",
                call_values(record),
            )
            return record, verified

        return self._tx(tx)

    async def match_call(
        self, call: CallRecord, caller_e164: str, caller_raw: str, now: float
    ) -> tuple[CallRecord, Verification | None]:
        return await self._write(self._match, call, caller_e164, caller_raw, now)

    def _record(self, call: CallRecord) -> None:
        self.db.execute(
            f"INSERT INTO calls ({CALL_COLUMNS}) VALUES ({','.join('?' * 14)})",
            call_values(call),
        )

    async def record_call(self, call: CallRecord) -> None:
        await self._write(self._record, call)

    def _finish(self, channel_id: str, ended_at: float, committed_at: float | None) -> None:
        self.db.execute(
            "UPDATE calls SET ended_at = ?, committed_at = ? WHERE channel_id = ?"
            " AND ended_at IS NULL",
            (ended_at, committed_at, channel_id),
        )

    async def finish_call(
        self, channel_id: str, ended_at: float, committed_at: float | None = None
    ) -> None:
        await self._write(self._finish, channel_id, ended_at, committed_at)

    def _list_calls(self, limit: int) -> list[CallRecord]:
        rows = self.db.execute(
            f"SELECT {CALL_COLUMNS} FROM calls ORDER BY seq DESC LIMIT ?", (limit,)
        ).fetchall()
        return [CallRecord(*r) for r in rows]

    async def list_calls(self, limit: int = 100) -> list[CallRecord]:
        return await self._run(self._list_calls, limit)

    # -- expiry -----------------------------------------------------------------------

    def _expire_due(self, now: float) -> list[Verification]:
        def tx(db: sqlite3.Connection) -> list[Verification]:
            rows = db.execute(
                f"SELECT {V_COLUMNS} FROM verifications WHERE status = 'pending'"
                " AND expires_at <= ? ORDER BY expires_at LIMIT 1000",
                (now,),
            ).fetchall()
            done = []
            for r in rows:
                v = row_to_verification(r).expire(now)
                self._save_terminal(db, v, now)
                done.append(v)
            return done

        return self._tx(tx)

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

    # -- outbox -----------------------------------------------------------------------

    _OUTBOX_COLUMNS = (
        "id, verification_id, type, payload, callback_url, portal, created_at, status,"
        " attempts, next_attempt_at, last_error, last_status, delivered_at, retry_since"
    )

    def _list_outbox(self, status: str | None, limit: int) -> list[OutboxEvent]:
        sql = f"SELECT {self._OUTBOX_COLUMNS} FROM outbox"
        args: tuple[Any, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            args = (status,)
        rows = self.db.execute(sql + " ORDER BY created_at LIMIT ?", (*args, limit)).fetchall()
        return [OutboxEvent(*r) for r in rows]

    async def list_outbox(self, status: str | None = None, limit: int = 1000) -> list[OutboxEvent]:
        return await self._run(self._list_outbox, status, limit)

    def _due_events(self, now: float, per_portal: int) -> list[OutboxEvent]:
        # The first few due events of every portal: a portal with a backlog of failing
        # events cannot fill the window and starve the others.
        rows = self.db.execute(
            f"SELECT {self._OUTBOX_COLUMNS} FROM ("
            f" SELECT {self._OUTBOX_COLUMNS}, row_number() OVER ("
            "  PARTITION BY portal ORDER BY next_attempt_at) AS rn"
            " FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?)"
            " WHERE rn <= ? ORDER BY next_attempt_at",
            (now, per_portal),
        ).fetchall()
        return [OutboxEvent(*r) for r in rows]

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
        status: str,
        attempts: int,
        next_attempt_at: float,
        last_error: str | None,
        last_status: int | None,
        delivered_at: float | None,
    ) -> None:
        self.db.execute(
            "UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?,"
            " last_status = ?, delivered_at = ? WHERE id = ?",
            (status, attempts, next_attempt_at, last_error, last_status, delivered_at, event_id),
        )

    async def record_attempt(
        self,
        event_id: str,
        status: str,
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
            f"SELECT {self._OUTBOX_COLUMNS} FROM outbox WHERE id = ?", (event_id,)
        ).fetchone()
        return OutboxEvent(*row) if row else None

    async def get_event(self, event_id: str) -> OutboxEvent | None:
        return await self._run(self._get_event, event_id)


def _with(call: CallRecord, **changes: Any) -> CallRecord:
    return dataclasses.replace(call, **changes)
