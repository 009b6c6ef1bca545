"""The store contract: every ``Store`` method, and the races that matter, for every store.

A new store passes by adding itself to the ``store`` fixture's parameters (and a factory
in ``STORES``); nothing else here may change for it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from random import Random

import pytest

from ivr.verification.errors import IdempotencyConflict, NotFound, NotPending
from ivr.verification.ports import CallEnd, CallFilter, CallRecord, NewVerification, Store
from ivr.vocabulary import AnswerMode, OutboxStatus, Outcome

POOL = ("+81355550001", "+81355550002")
PHONE = "+819012345678"
T0 = 1_800_000_000.0

StoreFactory = Callable[[pytest.FixtureRequest, Path], Awaitable[Store]]


async def _sqlite(request: pytest.FixtureRequest, tmp: Path) -> Store:
    from ivr.store.sqlite import SqliteStore

    return SqliteStore(tmp / "contract.sqlite3")


async def _postgres(request: pytest.FixtureRequest, tmp: Path) -> Store:
    from ivr.config import StoreSettings
    from ivr.store.postgres import PostgresStore

    url = request.getfixturevalue("pg_url")  # a fresh database on the session's cluster
    return PostgresStore(StoreSettings(url=url, pool_max=12), "contract-test")


STORES: dict[str, StoreFactory] = {"sqlite": _sqlite, "postgres": _postgres}


@pytest.fixture(params=sorted(STORES))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s = await STORES[request.param](request, tmp_path)
    await s.open()
    yield s
    await s.close()


def req(
    phone: str = PHONE,
    key: str | None = None,
    fingerprint: str = "",
    portal: str = "portal-a",
    ttl: float = 180.0,
) -> NewVerification:
    return NewVerification(phone, "ref", None, ttl, key, portal, fingerprint, portal)


def call(channel_id: str, did: str = POOL[0], trunk: str = "carrier") -> CallRecord:
    return CallRecord(
        channel_id=channel_id,
        did=did,
        trunk=trunk,
        caller_masked="090****5678",
        presentation="allowed",
        absence=None,
        outcome=Outcome.NO_PENDING,
        reason=None,
        answer_mode=AnswerMode.EARLY_MEDIA,
        started_at=T0,
        decided_at=T0,
    )


# -- verifications --------------------------------------------------------------------


async def test_create_get_and_ping(store: Store) -> None:
    assert await store.ping()
    created = await store.create_verification(req(), POOL, T0, Random(1))
    v = created.verification
    assert v.status == "pending" and v.phone_number == PHONE and v.dial_number in POOL
    assert v.expires_at == T0 + 180.0 and v.portal == "portal-a"
    assert await store.get_verification(v.id) == v
    assert await store.get_verification("vrf_missing") is None
    assert await store.count_pending() == 1
    assert await store.busiest_pending() == 1
    assert await store.next_expiry() == T0 + 180.0
    assert await store.list_outbox() == []  # nothing terminal yet


async def test_idempotent_replay_and_conflict(store: Store) -> None:
    first = await store.create_verification(req(key="k1", fingerprint="a"), POOL, T0, Random(1))
    again = await store.create_verification(req(key="k1", fingerprint="a"), POOL, T0 + 1, Random(2))
    assert again.replayed and again.verification == first.verification
    with pytest.raises(IdempotencyConflict):
        await store.create_verification(req(key="k1", fingerprint="b"), POOL, T0 + 2, Random(3))
    # Another portal's same key is its own.
    other = await store.create_verification(
        req(key="k1", fingerprint="a", portal="portal-b"), POOL, T0 + 3, Random(4)
    )
    assert not other.replayed and other.verification.id != first.verification.id
    # A day later the key is forgotten: a new verification.
    later = await store.create_verification(
        req(key="k1", fingerprint="z", ttl=60), POOL, T0 + 86400 + 10, Random(5)
    )
    assert not later.replayed and later.verification.id != first.verification.id


async def test_supersede_when_every_did_is_held(store: Store) -> None:
    a = (await store.create_verification(req(), POOL, T0, Random(1))).verification
    b = (await store.create_verification(req(), POOL, T0 + 1, Random(2))).verification
    assert {a.dial_number, b.dial_number} == set(POOL)
    c = await store.create_verification(req(), POOL, T0 + 2, Random(3))
    assert [s.id for s in c.superseded] == [a.id]
    assert c.verification.dial_number == a.dial_number
    old = await store.get_verification(a.id)
    assert old is not None and old.status == "cancelled" and old.cancel_reason == "superseded"
    [event] = await store.list_outbox()
    assert event.verification_id == a.id and event.type == "verification.cancelled"
    assert await store.count_pending() == 2
    assert await store.busiest_pending() == 2  # every DID of the pool held by one number


async def test_overdue_pending_ones_are_settled_on_create(store: Store) -> None:
    a = (await store.create_verification(req(ttl=60), POOL, T0, Random(1))).verification
    created = await store.create_verification(req(), POOL, T0 + 61, Random(2))
    assert [v.id for v in created.expired] == [a.id] and created.superseded == ()
    old = await store.get_verification(a.id)
    assert old is not None and old.status == "expired"
    assert [e.type for e in await store.list_outbox()] == ["verification.expired"]


async def test_cancel(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.cancel_verification("vrf_missing", T0, "cancelled")
    v = (await store.create_verification(req(), POOL, T0, Random(1))).verification
    done = await store.cancel_verification(v.id, T0 + 5, "cancelled")
    assert done.status == "cancelled" and done.ended_at == T0 + 5
    with pytest.raises(NotPending) as info:
        await store.cancel_verification(v.id, T0 + 6, "cancelled")
    assert info.value.details["current_status"] == "cancelled"
    assert len(await store.list_outbox()) == 1


async def test_cancel_after_expiry_commits_the_expiry(store: Store) -> None:
    v = (await store.create_verification(req(ttl=60), POOL, T0, Random(1))).verification
    done = await store.cancel_verification(v.id, T0 + 100, "cancelled")
    assert done.status == "expired" and done.ended_at == T0 + 100
    stored = await store.get_verification(v.id)
    assert stored is not None and stored.status == "expired"
    assert [e.type for e in await store.list_outbox()] == ["verification.expired"]


async def test_expire_due(store: Store) -> None:
    a = (await store.create_verification(req(ttl=60), POOL, T0, Random(1))).verification
    b = (await store.create_verification(req("+819011112222"), POOL, T0, Random(2))).verification
    assert await store.expire_due(T0 + 59) == []
    [expired] = await store.expire_due(T0 + 60)
    assert expired.id == a.id and expired.status == "expired"
    assert await store.next_expiry() == b.expires_at
    assert await store.expire_due(T0 + 61) == []
    assert await store.count_pending() == 1


# -- calls ----------------------------------------------------------------------------


async def test_match_verifies_the_pending_one_on_that_did(store: Store) -> None:
    v = (await store.create_verification(req(), POOL, T0, Random(1))).verification
    record, verified = await store.match_call(
        call("ch-1", did=v.dial_number), PHONE, "09012345678", T0 + 10
    )
    assert record.outcome is Outcome.VERIFIED and record.verification_id == v.id
    assert verified is not None and verified.status == "verified"
    assert verified.channel_id == "ch-1" and verified.trunk == "carrier"
    assert verified.caller_number == "09012345678" and verified.verified_at == T0 + 10
    assert await store.get_verification(v.id) == verified
    [event] = await store.list_outbox()
    assert event.type == "verification.verified" and event.status is OutboxStatus.PENDING
    [stored] = await store.list_calls()
    assert stored.outcome is Outcome.VERIFIED and stored.answer_mode is AnswerMode.EARLY_MEDIA


async def test_match_on_another_did_or_number_finds_nothing(store: Store) -> None:
    v = (await store.create_verification(req(), POOL, T0, Random(1))).verification
    other_did = next(d for d in POOL if d != v.dial_number)
    record, verified = await store.match_call(call("ch-1", other_did), PHONE, "x", T0 + 1)
    assert (record.outcome, record.reason, verified) == (
        Outcome.NO_PENDING,
        "no_pending_verification",
        None,
    )
    record, _ = await store.match_call(call("ch-2", v.dial_number), "+819099999999", "x", T0 + 1)
    assert record.outcome is Outcome.NO_PENDING
    assert (await store.get_verification(v.id)).status == "pending"  # type: ignore[union-attr]


async def test_match_after_expiry_records_no_pending_and_expires(store: Store) -> None:
    v = (await store.create_verification(req(ttl=60), POOL, T0, Random(1))).verification
    record, verified = await store.match_call(call("ch-1", v.dial_number), PHONE, "x", T0 + 60)
    assert verified is None
    assert (record.outcome, record.reason, record.verification_id) == (
        Outcome.NO_PENDING,
        "expired",
        v.id,
    )
    assert (await store.get_verification(v.id)).status == "expired"  # type: ignore[union-attr]
    assert [e.type for e in await store.list_outbox()] == ["verification.expired"]


async def test_record_finish_and_list_calls(store: Store) -> None:
    withheld = dataclasses.replace(
        call("ch-1"), outcome=Outcome.WITHHELD, reason="user_withheld", caller_masked=""
    )
    await store.record_call(withheld)
    await store.record_call(call("ch-2"))
    await store.finish_calls([CallEnd("ch-1", T0 + 5, committed_at=T0 + 0.01)])
    await store.finish_calls([CallEnd("ch-1", T0 + 9), CallEnd("nobody", T0 + 9)])  # first counts
    calls = await store.list_calls()
    assert [c.channel_id for c in calls] == ["ch-2", "ch-1"]  # newest first
    assert calls[1] == dataclasses.replace(withheld, ended_at=T0 + 5, committed_at=T0 + 0.01)
    assert [c.channel_id for c in await store.list_calls(CallFilter(limit=1))] == ["ch-2"]


# -- races: each has exactly one winner -------------------------------------------------


async def test_two_calls_matching_one_verification_verify_it_once(store: Store) -> None:
    v = (await store.create_verification(req(), POOL, T0, Random(1))).verification
    results = await asyncio.gather(
        *(
            store.match_call(call(f"ch-{i}", v.dial_number), PHONE, "09012345678", T0 + 1)
            for i in range(8)
        )
    )
    winners = [r for r, verified in results if verified is not None]
    assert len(winners) == 1 and winners[0].outcome is Outcome.VERIFIED
    losers = [r for r, verified in results if verified is None]
    assert {r.outcome for r in losers} == {Outcome.NO_PENDING}
    assert [e.type for e in await store.list_outbox()] == ["verification.verified"]


async def test_concurrent_idempotent_creates_make_one_verification(store: Store) -> None:
    results = await asyncio.gather(
        *(
            store.create_verification(req(key="same", fingerprint="f"), POOL, T0, Random(i))
            for i in range(8)
        )
    )
    assert len({r.verification.id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert await store.count_pending() == 1


async def test_supersede_under_concurrency_keeps_one_pending_per_did(store: Store) -> None:
    results = await asyncio.gather(
        *(store.create_verification(req(), POOL, T0 + i * 0.001, Random(i)) for i in range(10))
    )
    assert len(results) == 10
    assert await store.count_pending() == len(POOL)
    pending = [
        v
        for r in results
        if (v := await store.get_verification(r.verification.id)) and v.status == "pending"
    ]
    assert sorted(v.dial_number for v in pending) == sorted(POOL)
    cancelled = [e for e in await store.list_outbox() if e.type == "verification.cancelled"]
    assert len(cancelled) == 10 - len(POOL)  # each superseded exactly once


async def test_expiry_racing_a_matching_call_has_one_outcome(store: Store) -> None:
    v = (await store.create_verification(req(ttl=60), POOL, T0, Random(1))).verification
    (record, verified), expired = await asyncio.gather(
        store.match_call(call("ch-1", v.dial_number), PHONE, "x", T0 + 59.9),
        store.expire_due(T0 + 60),
    )
    final = await store.get_verification(v.id)
    assert final is not None
    events = await store.list_outbox()
    assert len(events) == 1  # one terminal transition, one callback
    if verified is not None:
        assert final.status == "verified" and expired == []
    else:
        assert final.status == "expired" and record.outcome is Outcome.NO_PENDING


# -- outbox ---------------------------------------------------------------------------


async def _terminal(store: Store, portal: str, n: int, at: float) -> list[str]:
    ids = []
    for i in range(n):
        v = (
            await store.create_verification(
                req(f"+81901000{portal[-1]}{i:03d}", portal=portal), POOL, at + i, Random(i)
            )
        ).verification
        await store.cancel_verification(v.id, at + i, "cancelled")
        ids.append(v.id)
    return ids


async def test_outbox_order_per_portal_and_fair_share(store: Store) -> None:
    a_ids = await _terminal(store, "portal-a", 5, T0)
    b_ids = await _terminal(store, "portal-b", 2, T0 + 100)
    assert await store.next_event_at() == T0
    due = await store.due_events(T0 + 1000, per_portal=3)
    by_portal: dict[str | None, list[str]] = {}
    for e in due:
        by_portal.setdefault(e.portal, []).append(e.verification_id)
    assert by_portal == {"portal-a": a_ids[:3], "portal-b": b_ids}  # oldest first, capped
    assert [e.next_attempt_at for e in due] == sorted(e.next_attempt_at for e in due)
    assert len(await store.list_outbox(OutboxStatus.PENDING)) == 7


async def test_record_attempt_retry_and_get_event(store: Store) -> None:
    await _terminal(store, "portal-a", 2, T0)
    first, second = await store.list_outbox()
    assert await store.outbox_backlog() == 2
    await store.record_attempt(first.id, OutboxStatus.DELIVERED, 1, T0 + 1, None, 200, T0 + 1)
    await store.record_attempt(second.id, OutboxStatus.PENDING, 1, T0 + 50, "HTTP 503", 503)
    assert await store.outbox_backlog() == 1  # the one waiting for its next attempt
    assert [e.id for e in await store.due_events(T0 + 10, 10)] == []
    assert [e.id for e in await store.due_events(T0 + 50, 10)] == [second.id]
    got = await store.get_event(second.id)
    assert got is not None and got.attempts == 1 and got.last_status == 503
    assert got.last_error == "HTTP 503" and got.status is OutboxStatus.PENDING
    await store.record_attempt(second.id, OutboxStatus.FAILED, 2, T0 + 60, "gave up", 503)
    assert [e.id for e in await store.list_outbox(OutboxStatus.FAILED)] == [second.id]
    assert await store.outbox_backlog() == 0
    assert await store.next_event_at() is None
    # A delivered event is never queued again; a failed one is, with a new window.
    assert await store.retry_events(first.id, T0 + 100) == 0
    assert await store.retry_events(None, T0 + 100) == 1
    again = await store.get_event(second.id)
    assert again is not None and again.status is OutboxStatus.PENDING
    assert again.retry_since == T0 + 100 and again.next_attempt_at == T0 + 100
    assert again.attempts == 2  # the count goes on
    assert await store.get_event("msg_missing") is None
    delivered = await store.get_event(first.id)
    assert delivered is not None and delivered.delivered_at == T0 + 1


async def test_commit_listener_gets_each_committed_event_once(store: Store) -> None:
    seen: list[str] = []
    store.set_commit_listener(lambda events: seen.extend(e.id for e in events))
    await _terminal(store, "portal-a", 3, T0)
    for _ in range(20):
        if len(seen) == 3:
            break
        await asyncio.sleep(0.01)
    assert sorted(seen) == sorted(e.id for e in await store.list_outbox())
    # A write that fails commits nothing and announces nothing.
    with pytest.raises(NotFound):
        await store.cancel_verification("vrf_missing", T0, "cancelled")
    await asyncio.sleep(0.02)
    assert len(seen) == 3
    store.set_commit_listener(None)


async def test_release_backlog_makes_one_portals_waiting_events_due(store: Store) -> None:
    await _terminal(store, "portal-a", 2, T0)
    await _terminal(store, "portal-b", 1, T0)
    events = await store.list_outbox()
    for e in events:
        await store.record_attempt(e.id, OutboxStatus.PENDING, 3, T0 + 500, "HTTP 503", 503)
    assert await store.release_backlog("portal-a", T0 + 10) == 2
    due = await store.due_events(T0 + 10, 10)
    assert sorted(e.portal or "" for e in due) == ["portal-a", "portal-a"]
    assert all(e.attempts == 3 for e in due)  # the count goes on
    assert await store.release_backlog("portal-a", T0 + 10) == 0


async def test_calls_filtered(store: Store) -> None:
    v = (await store.create_verification(req(), POOL, T0, Random(1))).verification
    await store.record_call(dataclasses.replace(call("ch-1"), outcome=Outcome.WITHHELD))
    late = dataclasses.replace(call("ch-2", trunk="other"), started_at=T0 + 50)
    await store.record_call(late)
    await store.match_call(
        dataclasses.replace(call("ch-3", did=v.dial_number), started_at=T0 + 60),
        PHONE,
        "x",
        T0 + 60,
    )

    async def ids(**kw: object) -> list[str]:
        return [c.channel_id for c in await store.list_calls(CallFilter(**kw))]  # type: ignore[arg-type]

    assert await ids() == ["ch-3", "ch-2", "ch-1"]
    assert await ids(since=T0 + 50) == ["ch-3", "ch-2"]
    assert await ids(outcome=Outcome.WITHHELD) == ["ch-1"]
    assert await ids(trunk="other") == ["ch-2"]
    assert await ids(verification_id=v.id) == ["ch-3"]
    assert await ids(limit=1) == ["ch-3"]
    assert await ids(did=v.dial_number, since=T0 + 55) == ["ch-3"]
    assert await ids(did="+81399999999") == []


async def test_purge_deletes_old_calls_and_ended_verifications(store: Store) -> None:
    old = await store.create_verification(req(key="k", fingerprint="f"), POOL, T0, Random(1))
    await store.cancel_verification(old.verification.id, T0 + 1, "cancelled")
    live = await store.create_verification(req("+819011112222"), POOL, T0, Random(2))
    await store.record_call(call("ch-old"))
    await store.record_call(dataclasses.replace(call("ch-new"), started_at=T0 + 1000))
    calls, verifications = await store.purge(T0 + 500, T0 + 500)
    assert (calls, verifications) == (1, 1)
    assert await store.get_verification(old.verification.id) is None  # deleted, not hidden
    assert await store.get_verification(live.verification.id) is not None  # pending stays
    assert [c.channel_id for c in await store.list_calls()] == ["ch-new"]
    assert await store.list_outbox() == []  # its callback event went with it
    # Its idempotency key went too: the same key makes a new verification.
    again = await store.create_verification(
        req(key="k", fingerprint="f"), POOL, T0 + 600, Random(3)
    )
    assert not again.replayed
    assert await store.purge(T0 + 500, T0 + 500) == (0, 0)
