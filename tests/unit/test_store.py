"""The SQLite store's group commit: every write atomic on its own, all durable together."""

from __future__ import annotations

import asyncio
from pathlib import Path
from random import Random

import pytest

from ivr.store import NewVerification
from ivr.store.sqlite import SqliteStore
from ivr.verification.errors import IdempotencyConflict, NotPending

POOL = ["+81355550001"]


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


async def test_a_failed_write_rolls_back_only_itself(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite3")
    await store.open()
    created = await store.create_verification(req("+819011112222"), POOL, 1000.0, Random(1))
    vid = created.verification.id
    # Past expiry: the cancel commits the expiry and then reports not_pending.
    with pytest.raises(NotPending):
        await store.cancel_verification(vid, 2000.0, "cancelled")
    v = await store.get_verification(vid)
    assert v is not None and v.status == "expired"
    events = await store.list_outbox()
    assert [e.type for e in events] == ["verification.expired"]
    with pytest.raises(NotPending):
        await store.cancel_verification(vid, 2001.0, "cancelled")
    assert len(await store.list_outbox()) == 1
    await store.close()
