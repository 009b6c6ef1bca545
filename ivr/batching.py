"""Bookkeeping writes gathered into one: the first item starts a timer, and ``delay``
seconds later one write takes every item added meanwhile.

For records whose loss in a crash costs nothing that matters (a call's end time; an event
the portal already has, which is then sent again): one store write per batch instead of
one per call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from ivr.log import get_logger

log = get_logger("ivr.batching")
T = TypeVar("T")


class WriteBatch(Generic[T]):
    def __init__(
        self, write: Callable[[list[T]], Awaitable[None]], delay: float, name: str
    ) -> None:
        self._write = write
        self.delay = delay
        self.name = name  # the task's name, and the log event when a write fails
        self._items: list[T] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, item: T) -> None:
        self._items.append(item)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.delay, self._due)

    def _due(self) -> None:
        self._timer = None
        task = asyncio.create_task(self._write_now(), name=self.name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        """Write what waits now, after any write already under way (at shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._write_now()

    async def _write_now(self) -> None:
        items, self._items = self._items, []
        if items:
            try:
                await self._write(items)
            except Exception:
                log.exception(f"{self.name}_not_recorded", items=len(items))
