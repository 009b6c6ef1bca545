"""The ceiling: a minimal aiohttp ARI app that answers, plays the prompt and hangs up.

The same call shape as the gateway in `answer` mode, with none of its work (no
identity, no store, no callback): what Asterisk and an ARI client on this machine can
do at best. One task per call, one ClientSession with TCPConnector(limit=32).

It also measures what the gateway's `stasis_ms` split measures: the hand-over, from the
channel's creation (the INVITE reaching Asterisk) to its StasisStart read off the
socket, so the gateway's own share of that latency is known. On SIGTERM it writes the
(read time, hand-over) pairs in seconds as JSON to <latency_file>.
Run: python -m bench.ceiling_app <ari_url> <user> <password> <app> <media> <latency_file>
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
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
    base: str, user: str, password: str, app: str, media: str, latency_file: str
) -> None:
    handover: list[tuple[float, float]] = []
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        runner = asyncio.create_task(serve(base, user, password, app, media, handover))
        await stop.wait()
        runner.cancel()
    finally:
        with open(latency_file, "w") as f:
            json.dump(handover, f)


async def serve(
    base: str, user: str, password: str, app: str, media: str, handover: list[tuple[float, float]]
) -> None:
    auth = {"Authorization": aiohttp.encode_basic_auth(user, password)}
    finished: dict[str, asyncio.Future[None]] = {}
    async with aiohttp.ClientSession(
        headers=auth, connector=aiohttp.TCPConnector(limit=32)
    ) as session:

        async def call(channel_id: str) -> None:
            try:
                async with session.post(f"{base}/channels/{channel_id}/answer"):
                    pass
                done = asyncio.get_running_loop().create_future()
                finished[f"pb-{channel_id}"] = done
                async with session.post(
                    f"{base}/channels/{channel_id}/play/pb-{channel_id}", params={"media": media}
                ):
                    pass
                await asyncio.wait_for(done, 10)
            except (aiohttp.ClientError, TimeoutError):
                pass
            finally:
                finished.pop(f"pb-{channel_id}", None)
                async with session.delete(f"{base}/channels/{channel_id}"):
                    pass

        url = base.replace("http", "ws", 1) + "/events"
        async with session.ws_connect(url, params={"app": app}, heartbeat=5) as ws:
            print("ready", flush=True)
            tasks = set()
            async for msg in ws:
                read_at = time.time()
                event = json.loads(msg.data)
                if event["type"] == "StasisStart":
                    if (created := created_at(event)) is not None:
                        handover.append((read_at, read_at - created))
                    task = asyncio.create_task(call(event["channel"]["id"]))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                elif event["type"] == "PlaybackFinished":
                    fut = finished.get(event["playback"]["id"])
                    if fut is not None and not fut.done():
                        fut.set_result(None)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:7]))
