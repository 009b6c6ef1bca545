"""The PostgreSQL store's two dedicated connections, outside the pool (asyncpg's pool
runs ``UNLISTEN *`` and ``pg_advisory_unlock_all()`` on every connection it gets back).

- :class:`Listener`: ``LISTEN`` on a channel, reconnecting by itself; after each
  (re)connect it calls ``on_resync`` (notifications sent while it was away are lost).
- :class:`AdvisoryLock`: a session advisory lock held on its own connection; when the
  holder dies the lock goes with its connection, and another process may take it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from ivr.log import get_logger

log = get_logger("ivr.store")

Connect = Callable[[], Awaitable[asyncpg.Connection]]
_DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class Listener:
    def __init__(self, connect: Connect, channel: str) -> None:
        self.connect = connect
        self.channel = channel
        self.on_notify: Callable[[str], None] | None = None
        self.on_resync: Callable[[], None] | None = None
        self.listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"listen-{self.channel}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _notified(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        if self.on_notify is not None:
            self.on_notify(payload)

    async def _run(self) -> None:
        delay = 0.2
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await self.connect()
                closed = asyncio.Event()
                conn.add_termination_listener(lambda _c, ev=closed: ev.set())
                await conn.add_listener(self.channel, self._notified)
                self.listening.set()
                delay = 0.2
                if self.on_resync is not None:
                    self.on_resync()  # what changed while we were not listening
                while not closed.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(5.0):
                            await closed.wait()
                    if not closed.is_set():  # a half-open connection shows only when used
                        async with asyncio.timeout(3.0):
                            await conn.fetchval("SELECT 1")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("store_listener_lost", error=str(exc) or type(exc).__name__)
            finally:
                self.listening.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


class AdvisoryLock:
    def __init__(self, connect: Connect, key: int, holder: str) -> None:
        self.connect = connect
        self.key = key
        self.holder = holder
        self._conn: asyncpg.Connection | None = None
        self._held = False

    async def held(self) -> bool:
        """Whether this process holds the lock, taking it if it is free."""
        conn = self._conn
        if conn is not None and conn.is_closed():
            conn, self._conn, self._held = None, None, False
        try:
            if conn is None:
                conn = self._conn = await self.connect()
            if not self._held:
                self._held = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key))
                if self._held:
                    log.info("store_lock_taken", lock=hex(self.key), holder=self.holder)
        except _DB_ERRORS:
            if conn is not None:
                conn.terminate()
            self._conn, self._held = None, False
            raise
        return self._held

    async def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=2)
        self._conn, self._held = None, False
