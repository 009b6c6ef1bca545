"""What call handling needs from ARI: a protocol the real client and the tests' fake
both satisfy (``ivr.asterisk.ari.AriClient``; ``tests/fakes.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

EventHandler = Callable[[dict[str, Any]], None]
ConnectHook = Callable[[], Awaitable[None]]


class AriPort(Protocol):
    """Call control for the channels of one Stasis app."""

    async def answer(self, channel_id: str) -> None: ...

    async def progress(self, channel_id: str) -> None: ...

    async def play(
        self, channel_id: str, media: str, playback_id: str, lang: str = "ja"
    ) -> None: ...

    async def hangup(self, channel_id: str, reason: str = "normal") -> None: ...

    async def application_channels(self) -> list[str]: ...

    def subscribe(self, on_event: EventHandler, on_connect: ConnectHook | None = None) -> None:
        """Events of the app go to ``on_event``; ``on_connect`` runs after every
        (re)connect, before any event is read."""


class AriConnection(AriPort, Protocol):
    """The connection's life, as the application builder drives it."""

    connected: asyncio.Event
    connects: int

    async def start(self) -> None: ...

    async def close(self) -> None: ...
