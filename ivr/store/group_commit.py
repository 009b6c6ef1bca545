"""One SQLite connection on one thread, with group commit.

The worker takes every job waiting in its queue, runs each write in a savepoint of one
transaction, and commits (one fsync) before any of them is answered. A write's caller
therefore learns of success only once it is durable, yet a busy second costs a few
fsyncs instead of one per write; a write that raises rolls back its savepoint alone.
The event loop never waits on disk, and SQLite's single writer never retries a lock.

A ``lazy`` write is bookkeeping that may wait (a call's end, a delivered callback): it
is held until a regular write's transaction can take it along, or ``LAZY_WAIT`` seconds,
so it costs no commit of its own while calls come in. The gateway's two bookkeeping
batches, one every 50 ms each, were 40 commits a second beside 250 calls' 250 at 250
calls/s, and a call whose write arrived during one waited for that fsync too.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

T = TypeVar("T")
Mode = Literal["read", "write", "lazy", "flush"]
LAZY_WAIT = 0.1  # seconds a lazy write waits for a regular one to share its commit


@dataclass(slots=True)
class _Job:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    future: asyncio.Future[Any]
    mode: Mode


def _settle(
    outcomes: list[tuple[_Job, Any, BaseException | None]],
    hook: Callable[[list[Any]], None] | None,
    emitted: list[Any],
) -> None:
    """On the loop: answer a batch's jobs, then hand what they emitted to ``hook``. One
    wake-up for the whole batch: each ``call_soon_threadsafe`` is a write to the loop's
    self-pipe and a trip through its selector."""
    for job, result, error in outcomes:
        if job.future.done():
            continue
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)
    if hook is not None:
        hook(emitted)


class GroupCommit:
    MAX_BATCH = 512

    def __init__(self, name: str = "ivr-sqlite") -> None:
        self.name = name
        self.connection: sqlite3.Connection | None = None  # set by the store's open job
        # Called in the event loop with what the writes of each commit emitted.
        self.on_committed: Callable[[list[Any]], None] | None = None
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._emitted: list[Any] = []

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        if self._thread is None:
            return
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    def emit(self, item: Any) -> None:
        """From inside a write: hand ``item`` to ``on_committed`` once the write commits."""
        self._emitted.append(item)

    async def run(self, mode: Mode, fn: Callable[..., T], *args: Any) -> T:
        """``read``: runs as is (inside the batch's transaction if one is open);
        ``write``: in a savepoint, answered after the commit; ``lazy``: a write that runs
        with the next regular one (or a flush), at most ``LAZY_WAIT`` seconds later;
        ``flush``: commits what the batch wrote so far, then runs outside any
        transaction (open, close)."""
        if self._thread is None:
            raise RuntimeError("store is not open")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put(_Job(fn, args, future, mode))
        return await future

    def _work(self) -> None:
        lazy: list[_Job] = []  # held until a regular write or a flush takes them along
        due = 0.0  # when the oldest of them must go anyway
        stop = False
        while not stop:
            try:
                wait = max(0.0, due - time.monotonic()) if lazy else None
                job = self._jobs.get(timeout=wait)
            except queue.Empty:  # the lazy writes waited long enough: alone, then
                self._execute(lazy)
                lazy = []
                continue
            batch = [] if job is None else [job]
            stop = job is None
            while not stop and len(batch) < self.MAX_BATCH:
                try:
                    nxt = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                else:
                    batch.append(nxt)
            held = [j for j in batch if j.mode == "lazy"]
            if held:
                if not lazy:
                    due = time.monotonic() + LAZY_WAIT
                lazy.extend(held)
                batch = [j for j in batch if j.mode != "lazy"]
            if lazy and (stop or any(j.mode != "read" for j in batch) or time.monotonic() >= due):
                # Along with this batch's writes, before any flush in it.
                at = next((i for i, j in enumerate(batch) if j.mode == "flush"), len(batch))
                batch[at:at] = lazy
                lazy = []
            if batch:
                self._execute(batch)

    def _db(self) -> sqlite3.Connection:
        if self.connection is None:
            raise RuntimeError("store is not open")
        return self.connection

    def _execute(self, batch: list[_Job]) -> None:
        outcomes: list[tuple[_Job, Any, BaseException | None]] = []
        emitted: list[Any] = []
        in_tx = False
        # A write alone in its batch needs no savepoint: if it fails, rolling back the
        # transaction undoes it and nothing else (under load most batches are one call).
        alone = sum(1 for job in batch if job.mode in ("write", "lazy")) == 1
        for job in batch:
            self._emitted = []
            try:
                if job.mode in ("write", "lazy"):
                    db = self._db()
                    if not in_tx:
                        db.execute("BEGIN IMMEDIATE")
                        in_tx = True
                    if not alone:
                        db.execute("SAVEPOINT job")
                    try:
                        result = job.fn(*job.args)
                    except BaseException:
                        if alone:
                            db.execute("ROLLBACK")
                            in_tx = False
                        else:
                            db.execute("ROLLBACK TO job")
                            db.execute("RELEASE job")
                        raise
                    if not alone:
                        db.execute("RELEASE job")
                    emitted.extend(self._emitted)
                else:
                    if in_tx and job.mode == "flush":
                        self._db().execute("COMMIT")
                        in_tx = False
                    result = job.fn(*job.args)
                outcomes.append((job, result, None))
            except BaseException as exc:
                outcomes.append((job, None, exc))
        if in_tx:
            try:
                self._db().execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db().execute("ROLLBACK")
                outcomes = [
                    (j, r, exc if j.mode in ("write", "lazy") else e) for j, r, e in outcomes
                ]
                emitted = []
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, Any, BaseException | None]]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].future.get_loop(), []).append(outcome)
        hook = self.on_committed if emitted else None
        hook_loop = batch[0].future.get_loop()
        for loop, answered in by_loop.items():
            loop.call_soon_threadsafe(
                _settle, answered, hook if loop is hook_loop else None, emitted
            )
