"""ARI event routing for one Stasis app: a task per call, started by its StasisStart.

A call's task ends when it hands the call to the dialplan for the prompt and the release
(:mod:`ivr.stasis.release`), so no other event of the call is needed. Asterisk replays
nothing after a disconnect (LAB-NOTES), so on every (re)connect the router looks at the
channels still in the app: those it holds no task for (this process restarted mid-call)
are released rather than left ringing with nobody to finish them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from ivr.asterisk.ari import AriError
from ivr.log import get_logger
from ivr.stasis.flow import ActiveCall, CallFlow
from ivr.stasis.ports import AriPort
from ivr.vocabulary import Outcome

log = get_logger("ivr.stasis")


def _channel_id(event: dict[str, Any]) -> str:
    channel = event.get("channel") or {}
    return str(channel.get("id", "")) if isinstance(channel, dict) else ""


class CallRouter:
    def __init__(self, ari: AriPort, flow: CallFlow) -> None:
        self.ari = ari
        self.flow = flow
        self._calls: dict[str, ActiveCall] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "StasisStart": self._on_start,
            "ApplicationReplaced": self._on_replaced,
        }
        ari.subscribe(self.on_event, self.on_connect)

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    def on_event(self, event: dict[str, Any]) -> None:
        # Everything not routed (StasisEnd, ChannelDestroyed, ...) is of no use here: a
        # call's task ends when it hands the call to the dialplan.
        handler = self._handlers.get(str(event.get("type")))
        if handler is not None:
            handler(event)

    def _on_start(self, event: dict[str, Any]) -> None:
        channel_id = _channel_id(event)
        if not channel_id or channel_id in self._calls:
            return
        call = ActiveCall(channel_id)
        self._calls[channel_id] = call
        task = asyncio.create_task(self._run(call, event), name=f"call-{channel_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, call: ActiveCall, event: dict[str, Any]) -> None:
        try:
            await self.flow.run(call, event)
        finally:
            self._calls.pop(call.channel_id, None)

    def _on_replaced(self, event: dict[str, Any]) -> None:
        log.error(
            "ari_application_replaced",
            app=event.get("application"),
            hint="another client took this Stasis app; give each gateway its own app",
        )

    async def on_connect(self) -> None:
        """After a (re)connect: finish what the gap left behind (nothing is replayed)."""
        in_app = set(await self.ari.application_channels())
        for channel_id in in_app - set(self._calls):
            log.warning("orphan_channel_released", channel_id=channel_id)
            with contextlib.suppress(AriError):
                await self.ari.hangup(channel_id, self.flow.call_policy.cause(Outcome.FAILED))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
