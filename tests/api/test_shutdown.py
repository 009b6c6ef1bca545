"""Stopping: a background loop cancelled in the moment something wakes it still stops.

On Python 3.11, ``asyncio.wait_for`` returns its awaitable's result instead of raising
when it is cancelled in the same loop iteration as that awaitable completes (CPython
gh-86296, fixed in 3.12). A loop sleeping on ``wait_for(event.wait(), t)`` then goes
round again, and the gateway's shutdown, which awaits the cancelled task, never ends:
a CI run hung for 75 minutes in a browser test's teardown that way. The loops sleep on
``asyncio.timeout`` instead; these tests cancel them exactly as a kick arrives."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ivr.callbacks import CallbackSender
from ivr.verification.service import VerificationService
from tests.conftest import Gateway


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
