"""A portal's callback endpoint for tests: a real aiohttp server that records what
arrives and answers as told."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook


@dataclass
class Portal:
    """A portal's callback endpoint: records what arrives, answers as told."""

    answers: list[int | tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    delay: float = 0.0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(
            {
                "headers": dict(request.headers),
                "body": body,
                "at": time.time(),
                "path": request.path,
            }
        )
        self.arrived.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        answer = self.answers.pop(0) if self.answers else 204
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        return web.Response(status=status, headers=headers)

    async def wait_for(self, count: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            self.arrived.clear()
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"only {len(self.received)} of {count} callbacks arrived"
            try:
                await asyncio.wait_for(self.arrived.wait(), remaining)
            except TimeoutError:
                pass

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.received]


StartPortal = Callable[..., Awaitable[tuple[Portal, str]]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def verify_signature(secret: str, record: dict[str, Any]) -> Any:
    headers = {k.lower(): v for k, v in record["headers"].items()}
    return Webhook(secret).verify(record["body"], headers)


async def wait_ready(url: str, alive: Callable[[], bool] = lambda: True, tries: int = 150) -> bool:
    """Poll ``url``/readyz every 0.2 s until it answers 200 (True), ``alive()`` turns false
    or the tries run out (False)."""
    import aiohttp

    async with aiohttp.ClientSession() as http:
        for _ in range(tries):
            try:
                async with http.get(f"{url}/readyz") as resp:
                    if resp.status == 200:
                        return True
            except aiohttp.ClientError:
                pass
            if not alive():
                return False
            await asyncio.sleep(0.2)
    return False
