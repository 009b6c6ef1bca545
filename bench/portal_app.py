"""The benchmark's portal: receives the gateway's callbacks in a process of its own.

A portal is another machine's work. Run on the benchmark's two cores it competes with
Asterisk and the gateway for the CPU it measures, so it is kept as cheap as a correct
HTTP/1.1 server can be: an asyncio protocol that reads each request whole (headers,
then ``Content-Length`` bytes of body), answers ``204`` on the same keep-alive
connection, and remembers when each ``verification.verified`` arrived (an aiohttp server
here cost 0.35 ms of CPU per callback, about a fifth of the gateway's own work), and the
``webhook-id`` of every event per verification (``make chaos`` counts duplicates).
``GET /received`` answers the first record (verification id -> receive time, POSIX
seconds), ``GET /ids`` the second (verification id -> webhook-ids).
A request it cannot read gets ``400`` and the connection closed.
Run: python -m bench.portal_app <port>   (prints "ready" once it listens)
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time

import orjson

NO_CONTENT = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
BAD = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
NOT_JSON = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
MAX_HEAD = 16 * 1024


class PortalProtocol(asyncio.Protocol):
    def __init__(self, received: dict[str, float], ids: dict[str, list[str]]) -> None:
        self.received = received
        self.ids = ids
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        at = time.time()
        self.buf += data
        while self.transport is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    self._refuse()
                return
            head = self.buf[:end].decode("latin-1").split("\r\n")
            length = 0
            webhook_id = ""
            for line in head[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    try:
                        length = int(value)
                    except ValueError:
                        self._refuse()
                        return
                elif name == "webhook-id":
                    webhook_id = value.strip()
            if len(self.buf) < end + 4 + length:
                return  # the rest of the body is on its way
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            self.transport.write(self._answer(head[0], body, at, webhook_id))

    def _answer(self, request_line: str, body: bytes, at: float, webhook_id: str) -> bytes:
        method, _, rest = request_line.partition(" ")
        path = rest.partition(" ")[0]
        if method == "POST" and path == "/hook":
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError:
                return NOT_JSON
            vid = data["data"]["id"]
            if data.get("type") == "verification.verified":
                self.received.setdefault(vid, at)  # the first delivery
            seen = self.ids.setdefault(vid, [])
            if webhook_id not in seen:
                seen.append(webhook_id)
            return NO_CONTENT
        if method == "GET" and path in ("/received", "/ids"):
            out = orjson.dumps(self.received if path == "/received" else self.ids)
            return (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(out)}\r\n\r\n".encode()
                + out
            )
        return NOT_FOUND

    def _refuse(self) -> None:
        assert self.transport is not None
        self.transport.write(BAD)
        self.transport.close()
        self.transport = None


async def main(port: int) -> None:
    received: dict[str, float] = {}
    ids: dict[str, list[str]] = {}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: PortalProtocol(received, ids), "127.0.0.1", port, backlog=1024
    )
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
