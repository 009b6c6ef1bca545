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

A ``gather`` write is a call's: calls arrive on their own, whatever our latency, so when
they come often (the recent gap between them under ``GATHER_GAP``) the worker holds
the first for up to ``GATHER_WAIT`` for others to share its commit, as PostgreSQL's
``commit_delay`` does for concurrent transactions. Below about 200 calls a second a call
commits at once as before; above, each commit's fixed cost (the fsync, the worker's and
the event loop's wake-ups) is shared by two or three calls: about a tenth less of the
gateway's CPU per call at 240 calls/s, for a few milliseconds on the way to durable.
Any other job ends the wait: a portal's request is answered when its client waits for
it, and more of those cannot come while it does.
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
Mode = Literal["read", "write", "gather", "lazy", "flush"]
WRITES = ("write", "gather", "lazy")  # in a savepoint of the batch's transaction
LAZY_WAIT = 0.1  # seconds a lazy write waits for a regular one to share its commit
GATHER_WAIT = 0.004  # seconds a call's write may wait for others to share its commit
GATHER_GAP = 0.005  # ... when calls lately came less than this apart (200 a second)


@dataclass(slots=True)
class _Job:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    future: asyncio.Future[Any]
    mode: Mode
    at: float = 0.0  # when a gather write was submitted (time.monotonic)


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
        # The recent gap between gather writes (an exponential average, seconds), and the
        # last one's submission: written and read by the worker thread only.
        self._gap = float("inf")
        self._last_gather = 0.0

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
        ``write``: in a savepoint, answered after the commit; ``gather``: a write that
        may wait up to ``GATHER_WAIT`` for others to share its commit when they come
        often; ``lazy``: a write that runs with the next regular one (or a flush), at
        most ``LAZY_WAIT`` seconds later; ``flush``: commits what the batch wrote so
        far, then runs outside any transaction (open, close)."""
        if self._thread is None:
            raise RuntimeError("store is not open")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        at = time.monotonic() if mode == "gather" else 0.0
        self._jobs.put(_Job(fn, args, future, mode, at))
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
            stop = job is None or self._take(batch, 0.0)
            self._note(batch)
            if not stop and self._busy(batch):
                seen = len(batch)
                first = next(j for j in batch if j.mode == "gather")
                stop = self._take(batch, first.at + GATHER_WAIT)
                self._note(batch[seen:])
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

    def _take(self, batch: list[_Job], until: float) -> bool:
        """Add what is waiting to ``batch``; with ``until``, also what arrives before
        then, unless a job that should not wait arrives. True if the stop sentinel came."""
        while len(batch) < self.MAX_BATCH:
            try:
                left = until - time.monotonic()
                nxt = self._jobs.get(timeout=left) if left > 0 else self._jobs.get_nowait()
            except queue.Empty:
                return False
            if nxt is None:
                return True
            batch.append(nxt)
            if until and nxt.mode not in ("gather", "lazy"):
                until = 0.0  # a portal's request or a read: go now, with what came
        return False

    def _note(self, jobs: list[_Job]) -> None:
        """Keep the recent gap between gather writes (an exponential average)."""
        for job in jobs:
            if job.mode != "gather":
                continue
            if self._last_gather:
                # Smooth enough that calls at 150 a second seldom look like 200; a
                # pause counts as ten gaps at most, so the average comes back within
                # a few dozen calls once they come often again.
                gap = min(job.at - self._last_gather, 10 * GATHER_GAP)
                if self._gap == float("inf"):
                    self._gap = gap
                else:
                    self._gap += (gap - self._gap) * 0.05
            self._last_gather = job.at

    def _busy(self, batch: list[_Job]) -> bool:
        """Whether to hold ``batch`` for company: gather writes lately less than
        ``GATHER_GAP`` apart, and nothing in it but gather and lazy writes."""
        return (
            self._gap < GATHER_GAP
            and any(j.mode == "gather" for j in batch)
            and all(j.mode in ("gather", "lazy") for j in batch)
        )

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
        alone = sum(1 for job in batch if job.mode in WRITES) == 1
        for job in batch:
            self._emitted = []
            try:
                if job.mode in WRITES:
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
                outcomes = [(j, r, exc if j.mode in WRITES else e) for j, r, e in outcomes]
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
