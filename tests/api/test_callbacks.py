"""Signed callbacks delivered to a real aiohttp portal server (no mocked client); the
gateway runs on fake ARI/AMI, so no Asterisk is needed here."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from ivr.cli import main
from tests.conftest import AUTH, DATA, Gateway, MakeGateway
from tests.portal import StartPortal, free_port, verify_signature

SECRET_A = "whsec_cG9ydGFsLWEtc2VjcmV0LWtleS0x"  # portal-a's, in tests/data/test.toml
FAST = {"backoff_base": 0.05, "backoff_max": 0.2, "timeout": 2.0}


async def cancel(gw: Gateway, vid: str) -> None:
    resp = await gw.client.post(f"/v1/verifications/{vid}/cancel", headers=AUTH)
    assert resp.status == 200


async def test_signed_the_standard_webhooks_way(
    make_gateway: MakeGateway, start_portal: StartPortal
) -> None:
    portal, url = await start_portal()
    gw = await make_gateway(connect=False, fake=True)
    v = await gw.create("09012345678", callback_url=url, reference="login-9")
    await cancel(gw, v["id"])
    await portal.wait_for(1)
    [record] = portal.received
    payload = verify_signature(SECRET_A, record)  # raises if the signature is wrong
    assert payload["type"] == "verification.cancelled"
    assert payload["data"]["id"] == v["id"] and payload["data"]["reference"] == "login-9"
    assert payload["data"]["status"] == "cancelled"
    assert record["headers"]["webhook-id"].startswith("msg_")
    assert abs(int(record["headers"]["webhook-timestamp"]) - time.time()) < 5
    # Another portal's secret does not verify it.
    with pytest.raises(Exception, match="signature"):
        verify_signature("whsec_cG9ydGFsLWItc2VjcmV0LWtleS0x", record)


async def test_rotation_sends_one_signature_per_secret(
    make_gateway: MakeGateway, start_portal: StartPortal, test_settings: Any
) -> None:
    import dataclasses

    new_secret = "whsec_bmV3LXJvdGF0ZWQtc2VjcmV0LWtleQ=="
    portals = list(test_settings.portals)
    portals[0] = dataclasses.replace(portals[0], callback_secrets=(SECRET_A, new_secret))
    portal, url = await start_portal()
    gw = await make_gateway(connect=False, fake=True)
    gw.parts.sender.portals["portal-a"] = portals[0]
    v = await gw.create("09012345678", callback_url=url)
    await cancel(gw, v["id"])
    await portal.wait_for(1)
    [record] = portal.received
    assert len(record["headers"]["webhook-signature"].split(" ")) == 2
    verify_signature(SECRET_A, record)
    verify_signature(new_secret, record)


async def test_retried_until_delivered_with_the_same_id(
    make_gateway: MakeGateway, start_portal: StartPortal
) -> None:
    portal, url = await start_portal(answers=[500, 503, (429, {"Retry-After": "0"}), 408, 200])
    gw = await make_gateway(connect=False, fake=True, callbacks=FAST)
    v = await gw.create("09012345678", callback_url=url)
    await cancel(gw, v["id"])
    await portal.wait_for(5)
    await asyncio.sleep(0.3)  # nothing more arrives once a 2xx was seen
    assert len(portal.received) == 5
    assert len({r["headers"]["webhook-id"] for r in portal.received}) == 1
    assert len({r["body"] for r in portal.received}) == 1
    [event] = await gw.parts.store.list_outbox()
    assert (event.status, event.attempts, event.last_status) == ("delivered", 5, 200)


async def test_a_4xx_stops_retrying(make_gateway: MakeGateway, start_portal: StartPortal) -> None:
    portal, url = await start_portal(answers=[410])
    gw = await make_gateway(connect=False, fake=True, callbacks=FAST)
    v = await gw.create("09012345678", callback_url=url)
    await cancel(gw, v["id"])
    await portal.wait_for(1)
    await asyncio.sleep(0.3)
    assert len(portal.received) == 1
    [event] = await gw.parts.store.list_outbox()
    assert (event.status, event.last_status) == ("failed", 410)


async def test_portal_down_for_the_whole_window_then_replayed(
    make_gateway: MakeGateway,
    start_portal: StartPortal,
    tmp_path: Path,
    store_section: dict[str, Any],
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks/ivr"
    gw = await make_gateway(
        connect=False, fake=True, callbacks={**FAST, "max_age": 0.6}, store=store_section
    )
    v = await gw.create("09012345678", callback_url=url)
    await cancel(gw, v["id"])
    for _ in range(50):
        events = await gw.parts.store.list_outbox("failed")
        if events:
            break
        await asyncio.sleep(0.1)
    [event] = events
    assert event.attempts >= 2 and "gave up" in (event.last_error or "")
    # Ops see it, the portal comes back, ops replay it.
    cfg = tmp_path / "ops.toml"
    store = gw.settings.store
    cfg.write_text(
        f'inventory = "{DATA / "trunks.test.toml"}"\n'
        f'[store]\npath = "{store.path}"\nurl = "{store.url}"\n'
    )
    listing = await asyncio.to_thread(
        _cli_output, ["--config", str(cfg), "callbacks", "list", "--failed", "--json"]
    )
    assert [e["id"] for e in json.loads(listing)] == [event.id]
    portal, _ = await start_portal(port=port)
    out = await asyncio.to_thread(
        _cli_output, ["--config", str(cfg), "callbacks", "retry", event.id]
    )
    assert "requeued 1" in out
    await portal.wait_for(1, timeout=5)  # the running gateway picks it up by itself
    assert portal.received[0]["headers"]["webhook-id"] == event.id
    verify_signature(SECRET_A, portal.received[0])
    # The sender records the delivery once the portal's answer is read: a moment later.
    for _ in range(50):
        delivered = await gw.parts.store.get_event(event.id)
        if delivered is not None and delivered.status == "delivered":
            break
        await asyncio.sleep(0.1)
    assert delivered is not None and delivered.status == "delivered"


def _cli_output(args: list[str]) -> str:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(args) == 0
    return buf.getvalue()


async def test_admin_api_lists_and_replays(
    make_gateway: MakeGateway, start_portal: StartPortal, store_section: dict[str, Any]
) -> None:
    portal, url = await start_portal(answers=[400])
    gw = await make_gateway(connect=False, fake=True, callbacks=FAST, store=store_section)
    v = await gw.create("09012345678", callback_url=url)
    await cancel(gw, v["id"])
    await portal.wait_for(1)
    await asyncio.sleep(0.2)
    ops = {"Authorization": "Bearer test-ops-token"}
    assert (await gw.client.get("/admin/callbacks", headers=AUTH)).status == 401
    listed = await (await gw.client.get("/admin/callbacks?status=failed", headers=ops)).json()
    [failed] = listed["callbacks"]
    assert failed["last_status"] == 400
    resp = await gw.client.post("/admin/callbacks/retry-failed", headers=ops)
    assert (await resp.json()) == {"requeued": 1}
    await portal.wait_for(2)
    assert portal.received[1]["headers"]["webhook-id"] == failed["id"]


async def test_a_dead_portal_does_not_delay_another(
    make_gateway: MakeGateway, start_portal: StartPortal
) -> None:
    slow, slow_url = await start_portal(delay=5.0)
    fast, fast_url = await start_portal()
    gw = await make_gateway(
        connect=False,
        fake=True,
        callbacks={**FAST, "timeout": 3.0, "per_portal": 2, "concurrency": 4},
    )
    for i in range(6):
        v = await gw.create(f"0901234000{i}", callback_url=slow_url)
        await cancel(gw, v["id"])
    await slow.wait_for(2)
    other = AUTH | {"Authorization": "Bearer test-token-portal-b"}
    resp = await gw.client.post(
        "/v1/verifications",
        headers=other,
        json={"phone_number": "09099990000", "callback_url": fast_url},
    )
    vid = (await resp.json())["id"]
    started = time.time()
    assert (await gw.client.post(f"/v1/verifications/{vid}/cancel", headers=other)).status == 200
    await fast.wait_for(1, timeout=2)
    assert fast.received[0]["at"] - started < 1.0
    assert len(slow.received) == 2  # portal-a's hung deliveries held only its own slots


async def test_callback_url_must_be_on_the_allow_list(api_gateway: Gateway) -> None:
    for url, code in [
        ("http://portal.example/hook", "callback_url_not_allowed"),
        ("https://10.0.0.1/hook", "callback_url_not_allowed"),
        ("file:///etc/passwd", "invalid_request"),
        ("gopher://127.0.0.1/x", "invalid_request"),
    ]:
        resp = await api_gateway.client.post(
            "/v1/verifications",
            headers=AUTH,
            json={"phone_number": "09012345678", "callback_url": url},
        )
        assert resp.status == 422
        assert (await resp.json())["error"]["code"] == code
    assert await api_gateway.parts.store.list_outbox() == []
    store: Any = api_gateway.parts.store
    count = await store._run(
        lambda: store.db.execute("SELECT count(*) FROM verifications").fetchone()[0]
    )
    assert count == 0


async def test_a_url_that_became_undeliverable_fails_at_once(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(connect=False, fake=True, callbacks=FAST)
    # Stored before today's checks (the API refuses it now): never retried for a day.
    created = await gw.parts.service.create(
        "09012345678", callback_url="http://127.0.0.1:99999/hook", portal="portal-a"
    )
    await cancel(gw, created.verification.id)
    for _ in range(50):
        [event] = await gw.parts.store.list_outbox()
        if event.status == "failed":
            break
        await asyncio.sleep(0.05)
    assert event.status == "failed" and event.attempts == 0
    assert "not a valid URL" in (event.last_error or "")


async def test_a_crashing_attempt_is_rescheduled_and_the_sender_never_spins(
    make_gateway: MakeGateway, start_portal: StartPortal, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ivr.callbacks

    _, url = await start_portal()
    gw = await make_gateway(connect=False, fake=True, callbacks={**FAST, "backoff_max": 5.0})

    def broken(*args: Any) -> str:
        raise RuntimeError("a bug in one attempt")

    monkeypatch.setattr(ivr.callbacks, "sign", broken)
    store = gw.parts.store
    polls = 0
    real_due = store.due_events

    async def counting(now: float, per_portal: int) -> Any:
        nonlocal polls
        polls += 1
        return await real_due(now, per_portal)

    monkeypatch.setattr(store, "due_events", counting)
    v = await gw.create("09012345678", callback_url=url)
    await cancel(gw, v["id"])
    await asyncio.sleep(1.5)
    [event] = await store.list_outbox()
    assert event.status == "pending" and event.attempts == 1
    assert event.next_attempt_at > time.time() + 0.1  # rescheduled, not left due
    assert polls < 10  # about one look a second, not a busy loop


async def test_backoff_after_thousands_of_manual_retries_does_not_overflow(
    make_gateway: MakeGateway,
) -> None:
    from ivr.vocabulary import OutboxStatus

    slow = {**FAST, "backoff_base": 30.0, "backoff_max": 600.0}
    gw = await make_gateway(connect=False, fake=True, callbacks=slow)
    free = free_port()  # nothing listens there: every attempt fails
    created = await gw.parts.service.create(
        "09012345678", callback_url=f"http://127.0.0.1:{free}/hook", portal="portal-a"
    )
    await cancel(gw, created.verification.id)
    [event] = await gw.parts.store.list_outbox()
    # Wait for the first attempt to fail: the event then sits in a 30 s backoff, so no
    # attempt is in flight to write its own count over the one set here.
    for _ in range(100):
        first = await gw.parts.store.get_event(event.id)
        if first is not None and first.attempts >= 1:
            break
        await asyncio.sleep(0.05)
    await gw.parts.store.record_attempt(event.id, OutboxStatus.PENDING, 2000, time.time())
    gw.parts.sender.kick()
    for _ in range(100):
        got = await gw.parts.store.get_event(event.id)
        assert got is not None
        if got.attempts > 2000:
            break
        await asyncio.sleep(0.05)
    assert got.attempts == 2001 and got.status == "pending"
    assert got.next_attempt_at > time.time() + 200  # clamped at backoff_max, not an error


async def test_a_recovered_portal_gets_its_backlog_at_once(
    make_gateway: MakeGateway, start_portal: StartPortal
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks/ivr"
    slow_backoff = {"backoff_base": 1.0, "backoff_max": 30.0, "timeout": 2.0}
    gw = await make_gateway(connect=False, fake=True, callbacks=slow_backoff)
    for i in range(10):
        v = await gw.create(f"0901234{i:04d}", callback_url=url)
        await cancel(gw, v["id"])
    await asyncio.sleep(4.0)  # the portal is down: each event backs off on its own
    events = await gw.parts.store.list_outbox()
    assert all(e.attempts >= 2 for e in events)
    portal, _ = await start_portal(port=port)
    await portal.wait_for(10, timeout=30)
    first, last = portal.received[0]["at"], portal.received[-1]["at"]
    # Before: each waited out its own backoff (seconds apart); now the first success
    # releases the rest.
    assert last - first < 1.5, f"backlog took {last - first:.1f} s after the first delivery"


async def test_deliveries_do_not_make_the_sender_poll_the_outbox(
    make_gateway: MakeGateway, start_portal: StartPortal
) -> None:
    """Committed events are offered to the sender directly; its outbox poll is for
    retries and what others wrote. Delivered events stay 'pending' in the store until
    their batch is marked, and a sender that took them for due work read the outbox
    twice per call under load. The portal here takes 20 ms to answer, so deliveries are
    in flight all the time (but fewer than ``per_portal``), as they are under load."""
    portal, url = await start_portal(delay=0.02)
    gw = await make_gateway(connect=False, fake=True)
    store = gw.parts.store
    reads = 0
    due_events = store.due_events

    async def counted(*args: Any) -> Any:
        nonlocal reads
        reads += 1
        return await due_events(*args)

    store.due_events = counted  # type: ignore[method-assign]
    ids = [(await gw.create(f"0901234{i:04d}", callback_url=url))["id"] for i in range(100)]
    started = time.monotonic()
    for vid in ids:  # for about 2.5 s: past the sender's one-second look
        await cancel(gw, vid)
        await asyncio.sleep(0.02)
    await portal.wait_for(100)
    await asyncio.sleep(0.3)  # the last answers
    seconds = time.monotonic() - started
    # About one look a second (the safety net), not one per delivery.
    assert reads <= 3 + 2 * seconds, (reads, seconds)
