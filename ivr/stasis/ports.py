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

    async def continue_in_dialplan(self, channel_id: str, context: str, extension: str) -> None:
        """The channel leaves the app for the dialplan (the prompt and the release)."""

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
