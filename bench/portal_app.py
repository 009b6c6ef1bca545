"""The benchmark's portal: receives the gateway's callbacks in a process of its own.

A portal is another machine's work; run inside the benchmark it would share the
benchmark's event loop and hide its CPU in the benchmark's. This one answers every
callback 204, remembers when each ``verification.verified`` arrived, and hands the
record over at ``GET /received`` (verification id -> receive time, POSIX seconds).
Run: python -m bench.portal_app <port>   (prints "ready" once it listens)
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time

from aiohttp import web


async def main(port: int) -> None:
    received: dict[str, float] = {}

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        at = time.time()
        data = json.loads(body)
        if data.get("type") == "verification.verified":
            received[data["data"]["id"]] = at
        return web.Response(status=204)

    async def record(request: web.Request) -> web.Response:
        return web.json_response(received)

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/received", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
