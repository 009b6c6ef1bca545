"""The SQLite store's group commit: every write atomic on its own, all durable together."""

from __future__ import annotations

import asyncio
from pathlib import Path
from random import Random

from ivr.store.sqlite import SqliteStore
from ivr.verification.errors import IdempotencyConflict
from ivr.verification.ports import NewVerification

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
