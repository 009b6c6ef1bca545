"""PostgreSQL going away and coming back, and what only a shared store must do: wake a
long poll on one gateway when another commits, and hand a dead gateway's work on."""

from __future__ import annotations

import asyncio
import time
from random import Random
from typing import Any

from ivr.config import StoreSettings
from ivr.devtools.postgres import LocalPostgres
from ivr.store.postgres import PostgresStore
from ivr.verification.ports import NewVerification
from ivr.vocabulary import OutboxStatus
from tests.conftest import AUTH, MakeGateway

T0 = 1_800_000_000.0


async def test_restart_mid_run_readyz_recovers_and_nothing_is_lost(
    postgres: LocalPostgres, pg_url: str, make_gateway: MakeGateway
) -> None:
    gw = await make_gateway(fake=True, fake_connected=True, store={"url": pg_url})
    created = [await gw.create(f"0901000{i:04d}") for i in range(20)]
    assert (await gw.client.get("/readyz")).status == 200

    postgres.kill()  # immediate shutdown, as after a crash
    try:
        resp = await gw.client.get("/readyz")
        assert resp.status == 503 and (await resp.json())["checks"]["store"] is False
        failed = await gw.client.post(
            "/v1/verifications", json={"phone_number": "09099990000"}, headers=AUTH
        )
        assert failed.status >= 500  # said plainly, never a 201 for nothing stored
    finally:
        postgres.up()
    back = time.monotonic()
    while (await gw.client.get("/readyz")).status != 200:
        assert time.monotonic() - back < 5.0, "readyz not back within 5 s"
        await asyncio.sleep(0.1)
    for v in created:
        assert (await gw.get(v["id"]))["status"] == "pending"  # nothing committed was lost
    assert (await gw.create("09099990000"))["status"] == "pending"


async def test_a_long_poll_wakes_when_another_gateway_commits(
    pg_url: str, make_gateway: MakeGateway
) -> None:
    a = await make_gateway(connect=False, fake=True, store={"url": pg_url})
    other = PostgresStore(StoreSettings(url=pg_url), "gateway-b")  # a second gateway's store
    await other.open()
    try:
        v = await a.create("09012345678")
        poll = asyncio.create_task(a.get(v["id"], wait=10))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await other.cancel_verification(v["id"], time.time(), "cancelled")
        done = await poll
        assert done["status"] == "cancelled"
        assert time.monotonic() - started < 1.0
    finally:
        await other.close()


async def test_a_lost_listener_reconnects_and_rechecks_waiters(
    pg_url: str, make_gateway: MakeGateway
) -> None:
    a = await make_gateway(connect=False, fake=True, store={"url": pg_url})
    store: Any = a.parts.store
    other = PostgresStore(StoreSettings(url=pg_url), "gateway-b")
    await other.open()
    try:
        v = await a.create("09012345678")
        poll = asyncio.create_task(a.get(v["id"], wait=15))
        await asyncio.sleep(0.2)
        # Cut the listener's connection from the server side, then commit while it is
        # away: the NOTIFY is lost, the re-check after reconnecting must find it.
        await other.pool.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
        )
        await other.cancel_verification(v["id"], time.time(), "cancelled")
        done = await asyncio.wait_for(poll, 10)
        assert done["status"] == "cancelled"
        assert store.listening.is_set()
    finally:
        await other.close()


async def test_a_dead_gateways_leased_callbacks_move_to_another(pg_url: str) -> None:
    settings = StoreSettings(url=pg_url, lease_seconds=5)
    dead, alive = PostgresStore(settings, "dead"), PostgresStore(settings, "alive")
    await dead.open()
    await alive.open()
    try:
        req = NewVerification("+819012345678", None, "http://127.0.0.1/h", 180.0, portal="p")
        v = (await dead.create_verification(req, ["+81355550001"], T0, Random(1))).verification
        await dead.cancel_verification(v.id, T0, "cancelled")  # leased to "dead" until T0+5
        assert await alive.due_events(T0 + 1, 10) == []
        assert await alive.next_event_at() == T0 + 5
        # Two gateways asking at once after the lease: one of them takes it.
        a, b = await asyncio.gather(alive.due_events(T0 + 6, 10), dead.due_events(T0 + 6, 10))
        assert len(a) + len(b) == 1
        taken = (a or b)[0]
        await alive.record_attempt(taken.id, OutboxStatus.DELIVERED, 1, T0 + 6, None, 200, T0 + 6)
        assert await alive.due_events(T0 + 100, 10) == []  # delivered: never again
    finally:
        await dead.close()
        await alive.close()


async def test_one_sweeper_at_a_time_and_a_successor_when_it_dies(pg_url: str) -> None:
    settings = StoreSettings(url=pg_url)
    first, second = PostgresStore(settings, "first"), PostgresStore(settings, "second")
    await first.open()
    await second.open()
    try:
        req = NewVerification("+819012345678", None, None, 60.0)
        await first.create_verification(req, ["+81355550001"], T0, Random(1))
        assert len(await first.expire_due(T0 + 61)) == 1  # first holds the sweep lock
        req2 = NewVerification("+819012340000", None, None, 60.0)
        await first.create_verification(req2, ["+81355550001"], T0, Random(2))
        assert await second.expire_due(T0 + 61) == []  # not the sweeper
        await first.close()  # its connection, and the lock, go
        assert len(await second.expire_due(T0 + 61)) == 1
    finally:
        await second.close()


async def test_unreachable_database_is_one_clear_error() -> None:
    from ivr.config import ConfigError

    store = PostgresStore(StoreSettings(url="postgresql://ivr:hunter2@127.0.0.1:1/ivr"), "x")
    try:
        await store.open()
    except ConfigError as exc:
        assert exc.key == "store.url" and "hunter2" not in str(exc) and "***" in str(exc)
    else:
        raise AssertionError("opened a store that cannot be reached")
