"""Stopping: a background loop cancelled in the moment something wakes it still stops.

On Python 3.11, ``asyncio.wait_for`` returns its awaitable's result instead of raising
when it is cancelled in the same loop iteration as that awaitable completes (CPython
gh-86296, fixed in 3.12). A loop sleeping on ``wait_for(event.wait(), t)`` then goes
round again, and the gateway's shutdown, which awaits the cancelled task, never ends:
a CI run hung for 75 minutes in a browser test's teardown that way. The loops sleep on
``asyncio.timeout`` instead; these tests cancel them exactly as a kick arrives."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from ivr.callbacks import CallbackSender
from ivr.verification.service import VerificationService
from tests.conftest import AUTH, Gateway

AUTH_TOKEN = AUTH["Authorization"].removeprefix("Bearer ")


async def _stops_when_cancelled_as_woken(
    run: Callable[[], Awaitable[None]], wake: Callable[[], None]
) -> None:
    task = asyncio.ensure_future(run())
    await asyncio.sleep(0.2)  # it has looked at the store and sleeps now
    wake()  # its sleep is over in this loop iteration...
    task.cancel()  # ...and so is its life
    done, _ = await asyncio.wait({task}, timeout=3)
    assert task in done, "the loop went on after it was cancelled"
    assert task.cancelled()


async def test_the_callback_sender_stops_when_cancelled_as_a_kick_arrives(
    api_gateway: Gateway,
) -> None:
    s = api_gateway.settings
    sender = CallbackSender(api_gateway.parts.store, s.callbacks, s.portals)
    await _stops_when_cancelled_as_woken(sender.run, sender.kick)


async def test_the_expiry_sweeper_stops_when_cancelled_as_a_kick_arrives(
    api_gateway: Gateway,
) -> None:
    live = api_gateway.parts.service
    service = VerificationService(live.store, live.pool, live.settings, live.policy)
    await _stops_when_cancelled_as_woken(service.run_expiry, service._kick.set)


async def test_a_stopping_gateway_answers_its_long_polls_at_once(api_gateway: Gateway) -> None:
    """Otherwise its stop waits for every poll to run out (up to ``api.max_wait``); the
    portal and the login page poll again, on a gateway that stays up."""
    v = await api_gateway.create("09012345678")
    url = str(api_gateway.client.make_url(""))
    async with aiohttp.ClientSession(url) as http:

        async def poll(path: str, token: str) -> dict[str, Any]:
            headers = {"Authorization": f"Bearer {token}"}
            async with http.get(path, params={"wait": "20"}, headers=headers) as resp:
                assert resp.status == 200
                data: dict[str, Any] = await resp.json()
                return data

        portal = asyncio.ensure_future(poll(f"/v1/verifications/{v['id']}", AUTH_TOKEN))
        page = asyncio.ensure_future(poll(f"/client/v1/verifications/{v['id']}", v["client_token"]))
        await asyncio.sleep(0.3)
        assert not portal.done() and not page.done()
        started = time.monotonic()
        await api_gateway.client.server.close()
        assert time.monotonic() - started < 5
        assert (await portal)["status"] == "pending"
        assert (await page)["status"] == "pending"
