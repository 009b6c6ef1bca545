"""ARI event routing for one Stasis app: a task per call, events delivered to it.

Asterisk replays nothing after a disconnect (LAB-NOTES), so on every (re)connect the
router compares the channels still in the app with the calls it holds: calls whose
channel is gone are told so, and channels it holds no task for (this process restarted
mid-call) are released rather than left ringing with nobody to finish them.
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
            "StasisEnd": self._on_gone,
            "ChannelDestroyed": self._on_gone,
            "PlaybackFinished": self._on_playback_finished,
            "ApplicationReplaced": self._on_replaced,
        }
        ari.subscribe(self.on_event, self.on_connect)

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    def on_event(self, event: dict[str, Any]) -> None:
        # Everything not routed (ChannelVarset, ChannelStateChange, ...) is of no use here.
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

    def _on_gone(self, event: dict[str, Any]) -> None:
        call = self._calls.get(_channel_id(event))
        if call is not None:
            call.gone.set()

    def _on_playback_finished(self, event: dict[str, Any]) -> None:
        playback = event.get("playback") or {}
        target = str(playback.get("target_uri", ""))
        call = self._calls.get(target.removeprefix("channel:"))
        if call is None:
            return
        fut = call.playbacks.pop(str(playback.get("id")), None)
        if fut is not None and not fut.done():
            fut.set_result(str(playback.get("state", "done")))

    def _on_replaced(self, event: dict[str, Any]) -> None:
        log.error(
            "ari_application_replaced",
            app=event.get("application"),
            hint="another client took this Stasis app; give each gateway its own app",
        )

    async def on_connect(self) -> None:
        """After a (re)connect: finish what the gap left behind (nothing is replayed)."""
        in_app = set(await self.ari.application_channels())
        for channel_id, call in list(self._calls.items()):
            if channel_id not in in_app:
                call.gone.set()  # ended while we were away
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
