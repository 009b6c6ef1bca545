"""The ceiling: a minimal aiohttp ARI app that hands each call to the dialplan's prompt.

The same call shape as the gateway in `answer` mode, with none of its work (no
identity, no store, no callback): one ``continue`` into the ``ivr-release`` context
(answer, the 1 s prompt, hang-up; ivr.stasis.release), what Asterisk and an ARI client
on this machine can do at best. The ``continue`` goes the way the gateway sends it: as a
REST request on the event WebSocket (Asterisk 22), which takes the app about a third
less CPU per call than an HTTP POST (docs/benchmarks.md, twelfth step); with ``http`` as
the last argument, as an HTTP POST (one ClientSession, TCPConnector(limit=32)), as the
ceiling was measured before 2026-12-08.

It also measures what the gateway's `stasis_ms` split measures: the hand-over, from the
channel's creation (the INVITE reaching Asterisk) to its StasisStart read off the
socket, so the gateway's own share of that latency is known. On SIGUSR1 (after each
rate) and on SIGTERM it writes the (read time, hand-over) pairs in seconds as JSON to
<latency_file>.
Run: python -m bench.ceiling_app <ari_url> <user> <password> <app> <extension> <latency_file>
[ws|http]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import urllib.parse
from datetime import datetime

import aiohttp


def created_at(event: dict[str, object]) -> float | None:
    channel = event.get("channel")
    stamp = channel.get("creationtime") if isinstance(channel, dict) else None
    try:
        return datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
    except ValueError:
        return None


async def main(
    base: str,
    user: str,
    password: str,
    app: str,
    extension: str,
    latency_file: str,
    transport: str = "ws",
) -> None:
    handover: list[tuple[float, float]] = []
    stop = asyncio.Event()

    def dump() -> None:
        with open(latency_file + ".tmp", "w") as f:
            json.dump(handover, f)
        os.replace(latency_file + ".tmp", latency_file)

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, dump)
    try:
        runner = asyncio.create_task(
            serve(base, user, password, app, extension, handover, transport == "http")
        )
        await stop.wait()
        runner.cancel()
    finally:
        dump()


async def serve(
    base: str,
    user: str,
    password: str,
    app: str,
    extension: str,
    handover: list[tuple[float, float]],
    over_http: bool,
) -> None:
    auth = {"Authorization": aiohttp.encode_basic_auth(user, password)}
    where = {"context": "ivr-release", "extension": extension, "priority": "1"}
    async with aiohttp.ClientSession(
        headers=auth, connector=aiohttp.TCPConnector(limit=32)
    ) as session:

        async def call(channel_id: str) -> None:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.post(f"{base}/channels/{channel_id}/continue", params=where):
                    pass

        query = urllib.parse.urlencode(where)
        url = base.replace("http", "ws", 1) + "/events"
        async with session.ws_connect(url, params={"app": app}, heartbeat=5) as ws:
            print("ready", flush=True)
            tasks = set()
            sent = 0
            async for msg in ws:
                read_at = time.time()
                event = json.loads(msg.data)
                if event["type"] == "StasisStart":
                    if (created := created_at(event)) is not None:
                        handover.append((read_at, read_at - created))
                    channel_id = event["channel"]["id"]
                    if over_http:
                        task = asyncio.create_task(call(channel_id))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                        continue
                    sent += 1
                    request = {
                        "type": "RESTRequest",
                        "request_id": str(sent),
                        "method": "POST",
                        "uri": f"channels/{channel_id}/continue?{query}",
                    }
                    await ws.send_str(json.dumps(request))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:8]))
