"""The callbacks' HTTP client against real servers on loopback: plain asyncio servers
that answer byte for byte what a test says, and a TLS one with a certificate made here."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from ivr.webhook_http import MAX_BODY, HttpError, WebhookHttp

Answerer = Callable[[bytes], bytes | None]  # request bytes -> answer bytes (None: silence)


class RawServer:
    """Answers each whole request (headers + Content-Length body) with ``answer(request)``;
    counts connections, remembers requests, closes after answering when ``close_after``."""

    def __init__(self, answer: Answerer, close_after: bool = False, then: bytes = b"") -> None:
        self.answer = answer
        self.close_after = close_after
        self.then = then  # sent a moment after each answer, unasked
        self.connections = 0
        self.requests: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                out = self.answer(request)
                if out is None:
                    await asyncio.sleep(3600)
                    return
                writer.write(out)
                await writer.drain()
                if self.then:
                    await asyncio.sleep(0.05)
                    writer.write(self.then)
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[tuple[RawServer, int]]]]:
    servers: list[asyncio.Server] = []

    async def start(
        answer: Answerer,
        close_after: bool = False,
        tls: ssl.SSLContext | None = None,
        then: bytes = b"",
    ) -> tuple[RawServer, int]:
        raw = RawServer(answer, close_after, then)
        server = await asyncio.start_server(raw.handle, "127.0.0.1", 0, ssl=tls)
        servers.append(server)
        return raw, server.sockets[0].getsockname()[1]

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def ok(request: bytes) -> bytes:
    return b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


BODY = b'{"type": "verification.verified"}'
HEADERS = {"Content-Type": "application/json", "webhook-id": "msg_1"}


async def test_one_connection_carries_many_requests(
    serve: Callable[..., Awaitable[tuple[RawServer, int]]],
) -> None:
    raw, port = await serve(ok)
    http = WebhookHttp(2.0, "ivr-test/1")
    for _ in range(5):
        answer = await http.post(f"http://127.0.0.1:{port}/hook?portal=a", BODY, HEADERS)
        assert answer.status == 204
    assert raw.connections == 1 and len(raw.requests) == 5
    head, _, body = raw.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /hook?portal=a HTTP/1.1"
    assert f"Host: 127.0.0.1:{port}".encode() in lines
    assert b"User-Agent: ivr-test/1" in lines and b"webhook-id: msg_1" in lines
    assert body == BODY
    http.close()


async def test_chunked_and_close_delimited_answers_are_read(
    serve: Callable[..., Awaitable[tuple[RawServer, int]]],
) -> None:
    def chunked(_: bytes) -> bytes:
        return (
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n5\r\nslow \r\n4\r\ndown\r\n0\r\n\r\n"
        )

    def until_close(_: bytes) -> bytes:
        return b"HTTP/1.0 503 Service Unavailable\r\n\r\nbusy"

    raw, port = await serve(chunked)
    http = WebhookHttp(2.0, "ivr-test/1")
    for _ in range(2):
        answer = await http.post(f"http://127.0.0.1:{port}/", BODY, HEADERS)
        assert (answer.status, answer.headers["retry-after"], answer.body) == (
            429,
            "7",
            b"slow down",
        )
    assert raw.connections == 1
    raw, port = await serve(until_close, close_after=True)
    answer = await http.post(f"http://127.0.0.1:{port}/", BODY, HEADERS)
    assert (answer.status, answer.body) == (503, b"busy")
    answer = await http.post(f"http://127.0.0.1:{port}/", BODY, HEADERS)
    assert answer.status == 503 and raw.connections == 2  # not reused after its close
    http.close()


async def test_a_connection_closed_while_idle_is_replaced_without_an_error(
    serve: Callable[..., Awaitable[tuple[RawServer, int]]],
) -> None:
    raw, port = await serve(ok)
    http = WebhookHttp(2.0, "ivr-test/1")
    assert (await http.post(f"http://127.0.0.1:{port}/", BODY, HEADERS)).status == 204
    for writer in raw.writers:  # the portal drops its idle keep-alive connection...
        writer.transport.abort()
    await asyncio.sleep(0.05)  # ...and the client notices before its next request
    assert (await http.post(f"http://127.0.0.1:{port}/", BODY, HEADERS)).status == 204
    assert raw.connections == 2
    for writer in raw.writers:  # dropped again, and this time the request is on its way
        writer.transport.abort()  # before the client has read of it: sent once more
    assert (await http.post(f"http://127.0.0.1:{port}/", BODY, HEADERS)).status == 204
    assert raw.connections == 3
    http.close()


async def test_no_answer_is_an_error_that_says_why(
    serve: Callable[..., Awaitable[tuple[RawServer, int]]],
) -> None:
    http = WebhookHttp(0.5, "ivr-test/1")
    raw, port = await serve(lambda _: b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
    with pytest.raises(HttpError, match="not an HTTP answer"):
        await http.post(f"http://127.0.0.1:{port}/", BODY, HEADERS)
    raw, port = await serve(lambda _: None)  # takes the request, never answers
    with pytest.raises(TimeoutError):
        await http.post(f"http://127.0.0.1:{port}/", BODY, HEADERS)
    raw.writers[0].close()
    with pytest.raises(ConnectionRefusedError):  # nothing listens on port 1
        await http.post("http://127.0.0.1:1/", BODY, HEADERS)
    with pytest.raises(HttpError, match="not an http"):
        await http.post("ftp://127.0.0.1/", BODY, HEADERS)
    http.close()


async def test_a_huge_answer_is_cut_and_its_connection_dropped(
    serve: Callable[..., Awaitable[tuple[RawServer, int]]],
) -> None:
    big = b"x" * (MAX_BODY * 3)
    raw, port = await serve(
        lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(big), big)
    )
    http = WebhookHttp(2.0, "ivr-test/1")
    for _ in range(2):
        answer = await http.post(f"http://127.0.0.1:{port}/", BODY, HEADERS)
        assert answer.status == 200 and len(answer.body) == MAX_BODY
    assert raw.connections == 2
    http.close()


async def test_https_is_verified(
    serve: Callable[..., Awaitable[tuple[RawServer, int]]], tmp_path: Path
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    raw, port = await serve(ok, tls=server_tls)
    trusting = ssl.create_default_context(cafile=str(cert))
    http = WebhookHttp(2.0, "ivr-test/1", ssl_context=trusting)
    for _ in range(2):
        assert (await http.post(f"https://localhost:{port}/", BODY, HEADERS)).status == 204
    assert raw.connections == 1
    http.close()
    stranger = WebhookHttp(2.0, "ivr-test/1")  # the system's roots: this one is unknown
    with pytest.raises(ssl.SSLCertVerificationError):
        await stranger.post(f"https://localhost:{port}/", BODY, HEADERS)
    stranger.close()


async def test_a_connection_that_speaks_unasked_is_not_used_again(
    serve: Callable[..., Awaitable[tuple[RawServer, int]]],
) -> None:
    raw, port = await serve(ok, then=b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    http = WebhookHttp(2.0, "ivr-test/1")
    assert (await http.post(f"http://127.0.0.1:{port}/", BODY, HEADERS)).status == 204
    await asyncio.sleep(0.2)  # the stray answer arrives while the connection is idle
    assert (await http.post(f"http://127.0.0.1:{port}/", BODY, HEADERS)).status == 204
    assert raw.connections == 2  # the stray 200 was not taken for the second answer
    http.close()
