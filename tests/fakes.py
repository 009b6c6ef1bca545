"""Test doubles for the adapters the gateway talks to: ARI and AMI.

For unit and API tests of our own logic only; every integration test uses the real
Asterisk. Like panoramisk's ``testing`` module, they record what was asked of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ivr.asterisk.ami import AmiError, AmiEvent
from ivr.asterisk.ari import AriError
from ivr.stasis.ports import ConnectHook, EventHandler


class FakeAri:
    """Records call control requests; ``emit`` plays an ARI event to the subscriber."""

    def __init__(self, connected: bool = True) -> None:
        self.connected = asyncio.Event()
        self.connects = 0
        self._start_connected = connected
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.channels: set[str] = set()
        self.fail: dict[str, AriError] = {}  # method -> error to raise
        self.on_event: EventHandler = lambda event: None
        self.on_connect: ConnectHook | None = None

    def subscribe(self, on_event: EventHandler, on_connect: ConnectHook | None = None) -> None:
        self.on_event = on_event
        self.on_connect = on_connect

    async def start(self) -> None:
        if self._start_connected:
            await self.reconnect()

    async def reconnect(self) -> None:
        self.connects += 1
        if self.on_connect is not None:
            await self.on_connect()
        self.connected.set()

    async def close(self) -> None:
        self.connected.clear()

    def emit(self, event: dict[str, Any]) -> None:
        self.on_event(event)

    def _record(self, method: str, channel_id: str, **params: Any) -> None:
        self.requests.append((method, channel_id, params))
        if method in self.fail:
            raise self.fail[method]

    def methods(self, channel_id: str) -> list[str]:
        return [m for m, c, _ in self.requests if c == channel_id]

    async def continue_in_dialplan(self, channel_id: str, context: str, extension: str) -> None:
        self._record("continue", channel_id, context=context, extension=extension)
        self.channels.discard(channel_id)

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        self._record("hangup", channel_id, reason=str(reason))
        self.channels.discard(channel_id)

    async def application_channels(self) -> list[str]:
        return sorted(self.channels)


class FakeAmi:
    """Never logs in unless told to; ``actions`` answers list actions from a table."""

    def __init__(self, responses: dict[str, list[AmiEvent]] | None = None) -> None:
        self.logged_in = False
        self.responses = responses or {}
        self.on_event: Callable[[AmiEvent], None] | None = None
        self.on_login: Callable[[], None] | None = None
        self.actions: list[tuple[str, dict[str, str]]] = []

    @property
    def connected(self) -> bool:
        return self.logged_in

    def subscribe(
        self, on_event: Callable[[AmiEvent], None], on_login: Callable[[], None] | None = None
    ) -> None:
        self.on_event = on_event
        self.on_login = on_login

    async def connect(self, timeout: float | None = None) -> None:
        await asyncio.Event().wait()  # an Asterisk that never answers

    async def action(self, name: str, **params: str) -> list[AmiEvent]:
        self.actions.append((name, params))
        if not self.logged_in:
            raise AmiError("AMI is not connected")
        return self.responses.get(name, [])

    def close(self) -> None:
        self.logged_in = False
