"""The SQLite store's group commit: every write atomic on its own, all durable together."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from random import Random

import pytest

from ivr.store import group_commit
from ivr.store.sqlite import WRITER_CHECKPOINT_PAGES, SqliteStore
from ivr.verification.errors import IdempotencyConflict
from ivr.verification.ports import CallEnd, NewVerification
from tests.contract.test_store_contract import call

POOL = ["+81355550001"]


def log_restarts(wal: str) -> int:
    """The WAL header's checkpoint sequence number: one more each time the log starts
    over from its beginning (SQLite's file format, "WAL File Format")."""
    with open(wal, "rb") as f:
        header = f.read(16)
    return int.from_bytes(header[12:16], "big") if len(header) == 16 else 0


def req(phone: str, key: str | None = None, body: str = "") -> NewVerification:
    return NewVerification(phone, None, None, 180.0, key, "portal", body, "portal")


async def test_concurrent_writes_commit_together_and_fail_alone(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = SqliteStore(path)
    await store.open()
    await store.create_verification(req("+819000000000", "k", "a"), POOL, 1000.0, Random(1))
    jobs = [
        store.create_verification(req(f"+8190000000{i:02d}"), POOL, 1000.0, Random(i))
        for i in range(1, 51)
    ]
    jobs.append(
        store.create_verification(req("+819000000000", "k", "b"), POOL, 1000.0, Random(0))
    )  # same key, other body
    results = await asyncio.gather(*jobs, return_exceptions=True)
    assert isinstance(results[-1], IdempotencyConflict)
    assert all(not isinstance(r, BaseException) for r in results[:-1])
    await store.close()

    reopened = SqliteStore(path)
    await reopened.open()
    assert await reopened.count_pending() == 51  # nothing lost, nothing from the failure
    await reopened.close()


async def test_a_write_alone_in_its_batch_that_fails_leaves_nothing(tmp_path: Path) -> None:
    """Without a savepoint (a lone write), its failure rolls the transaction back: what
    it wrote before failing is gone, and the next write commits as usual."""
    store = SqliteStore(tmp_path / "s.sqlite3")
    await store.open()

    def half_then_fail() -> None:
        store._create(req("+819000000001"), POOL, 1000.0, Random(1))
        raise RuntimeError("failed after writing")

    with pytest.raises(RuntimeError):
        await store._gc.run("write", half_then_fail)
    assert await store.count_pending() == 0
    await store.create_verification(req("+819000000002"), POOL, 1000.0, Random(2))
    assert await store.count_pending() == 1
    await store.close()


async def test_the_log_is_checkpointed_beside_the_writes_not_in_them(tmp_path: Path) -> None:
    """The writer checkpoints only past a large log (a commit that did would wait for
    the copy and a sync); the checkpointer thread keeps the log short, and a burst that
    outran it does not leave the log big."""
    path = tmp_path / "s.sqlite3"
    store = SqliteStore(path)
    await store.open()
    pages = await store._run(lambda: store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
    assert pages == WRITER_CHECKPOINT_PAGES
    wal = f"{path}-wal"
    made = 0
    start = log_restarts(wal)
    sizes = []
    for second in range(5):  # writes all the time, as calls come in
        for i in range(150):
            await store.create_verification(req(f"+81901{second}{i:06d}"), POOL, 1000.0, Random(i))
            made += 1
            await asyncio.sleep(1 / 150)
        sizes.append(os.path.getsize(wal))
        if log_restarts(wal) >= start + 2:
            break
    # Checkpointed and started over while the writes came in. Without the checkpointer
    # the log only grows: the writer would not checkpoint before 4,000 pages, and five
    # seconds of these writes are about 3,300 (measured: no restart, 13.4 MB). How soon
    # it starts over depends on the disk: a PASSIVE checkpoint must finish between two
    # writes, and on a busy disk the log grew to 6.5 MB over four seconds before it did.
    assert log_restarts(wal) > start, sizes
    # A burst, as fast as the writer takes it: the log stops at about the writer's bound.
    await asyncio.gather(
        *(
            store.create_verification(req(f"+81902{i:07d}"), POOL, 1000.0, Random(i))
            for i in range(6000)
        )
    )
    await asyncio.sleep(1.5)  # the checkpointer catches up, the next write starts over
    await store.create_verification(req("+819030000000"), POOL, 1000.0, Random(1))
    assert os.path.getsize(wal) <= 1.2 * WRITER_CHECKPOINT_PAGES * 4096
    await store.close()
    # The last connection checkpointed the rest.
    assert not os.path.exists(wal) or os.path.getsize(wal) == 0
    reopened = SqliteStore(path)
    await reopened.open()
    assert await reopened.count_pending() == made + 6001
    await reopened.close()


async def test_a_lazy_write_shares_the_next_writes_commit_and_fails_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bookkeeping (a call's end, a delivered callback) costs no commit of its own while
    other writes come in; a failing one rolls back alone; one with no write to ride with
    is committed anyway, and so is one still waiting when the store closes."""
    monkeypatch.setattr(group_commit, "LAZY_WAIT", 30.0)  # held however slow the machine
    path = tmp_path / "s.sqlite3"
    store = SqliteStore(path)
    await store.open()
    await store.record_call(call("ch-1"))
    statements: list[str] = []
    await store._gc.run("flush", store.db.set_trace_callback, statements.append)

    def fail() -> None:
        store.db.execute("UPDATE verifications SET reference = 'x'")
        raise RuntimeError("bookkeeping failed")

    ended = asyncio.create_task(store.finish_calls([CallEnd("ch-1", 1005.0, committed_at=1000.1)]))
    failing = asyncio.create_task(store._gc.run("lazy", fail))
    await asyncio.sleep(0.05)  # both handed to the writer, held for a regular write
    assert not ended.done() and "COMMIT" not in statements
    made = await store.create_verification(req("+819000000001"), POOL, 1000.0, Random(1))
    await ended
    with pytest.raises(RuntimeError):
        await failing
    assert statements.count("COMMIT") == 1  # one transaction for the three
    v = await store.get_verification(made.verification.id)
    assert v is not None and v.reference is None  # the failed one's update undone
    assert [c.ended_at for c in await store.list_calls()] == [1005.0]

    monkeypatch.setattr(group_commit, "LAZY_WAIT", 0.05)
    await asyncio.wait_for(store.finish_calls([CallEnd("ch-2", 1006.0)]), 10)
    assert statements.count("COMMIT") == 2  # nothing to ride with: committed by itself

    monkeypatch.setattr(group_commit, "LAZY_WAIT", 30.0)
    waiting = asyncio.create_task(store.record_deliveries([]))
    await asyncio.sleep(0.05)
    await store.close()  # the close's flush takes it along
    await asyncio.wait_for(waiting, 10)


async def test_call_writes_that_come_often_share_a_commit_and_a_request_waits_for_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Calls come on their own, whatever our latency: when their writes come often, one
    is held (up to GATHER_WAIT) for the next to share its commit. A portal's write ends
    the wait at once and takes them along; so does closing the store; and calls that
    come seldom commit one by one, as before."""
    monkeypatch.setattr(group_commit, "GATHER_WAIT", 30.0)  # held however slow the machine
    monkeypatch.setattr(group_commit, "GATHER_GAP", 30.0)  # 10 ms apart is often
    store = SqliteStore(tmp_path / "s.sqlite3")
    await store.open()
    statements: list[str] = []
    await store._gc.run("flush", store.db.set_trace_callback, statements.append)

    await store.record_call(call("ch-1"))  # no gap known yet: committed at once
    assert statements.count("COMMIT") == 1
    await asyncio.sleep(0.01)
    second = asyncio.create_task(store.record_call(call("ch-2")))  # 10 ms on: often
    await asyncio.sleep(0.01)
    third = asyncio.create_task(store.record_call(call("ch-3")))
    await asyncio.sleep(0.05)
    assert not second.done() and not third.done()
    assert statements.count("COMMIT") == 1  # held for company
    await store.create_verification(req("+819000000001"), POOL, 1000.0, Random(1))
    await asyncio.wait_for(asyncio.gather(second, third), 10)
    assert statements.count("COMMIT") == 2  # the request's commit took both along
    assert {c.channel_id for c in await store.list_calls()} == {"ch-1", "ch-2", "ch-3"}

    held = asyncio.create_task(store.record_call(call("ch-4")))
    await asyncio.sleep(0.05)
    assert not held.done()
    await store.close()  # the close's flush takes it along
    await asyncio.wait_for(held, 10)

    monkeypatch.setattr(group_commit, "GATHER_WAIT", 0.004)
    monkeypatch.setattr(group_commit, "GATHER_GAP", 0.005)
    store = SqliteStore(tmp_path / "s.sqlite3")
    await store.open()
    statements.clear()
    await store._gc.run("flush", store.db.set_trace_callback, statements.append)
    for i in range(5, 9):  # 50 ms apart: seldom
        await asyncio.sleep(0.05)
        await store.record_call(call(f"ch-{i}"))
    assert statements.count("COMMIT") == 4
    assert len(await store.list_calls()) == 8
    await store.close()
