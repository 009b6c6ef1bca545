"""The ceiling: a minimal aiohttp ARI app that answers, plays the prompt and hangs up.

The same call shape as the gateway in `answer` mode, with none of its work (no
identity, no store, no callback): what Asterisk and an ARI client on this machine can
do at best. One task per call, one ClientSession with TCPConnector(limit=32).
Run: python -m bench.ceiling_app <ari_url> <user> <password> <app> <media>
"""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp


async def main(base: str, user: str, password: str, app: str, media: str) -> None:
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
                event = json.loads(msg.data)
                if event["type"] == "StasisStart":
                    task = asyncio.create_task(call(event["channel"]["id"]))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                elif event["type"] == "PlaybackFinished":
                    fut = finished.get(event["playback"]["id"])
                    if fut is not None and not fut.done():
                        fut.set_result(None)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
