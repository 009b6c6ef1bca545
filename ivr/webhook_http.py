"""HTTP/1.1 POSTs for the callbacks, on kept-alive connections: protocol only.

A callback is one small POST whose answer matters only for its status (and a
``Retry-After``), so this is the least an HTTP client can be: an asyncio protocol per
connection, the response read by httptools (llhttp, the parser of Node.js), idle
connections kept per origin and reused. aiohttp's client did the same job at about
twice the CPU per request (134 against 60 us in one micro-benchmark); in the gateway the
change took 6-9 % off the CPU of a verified call.

What it does not do, because a callback never needs it: redirects (a portal's 3xx is an
answer, like any other status), proxies, cookies, compression, reading more than
``MAX_BODY`` bytes of an answer (the connection is closed instead of drained).
A kept-alive connection the portal closed while it was idle fails before any answer
arrives; such a request is sent once more on a new connection (a portal deduplicates by
``webhook-id``, and no byte of an answer was seen).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import httptools

MAX_BODY = 64 * 1024  # bytes of an answer read before the connection is given up
IDLE_TIMEOUT = 30.0  # seconds an idle connection is kept (portals close theirs at 5-75 s)
MAX_IDLE = 32  # idle connections kept per origin


class HttpError(Exception):
    """The request got no answer: the connection failed, closed, or spoke no HTTP."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case; a repeated header keeps its last value
    body: bytes  # at most ``MAX_BODY`` bytes


@dataclass(frozen=True, slots=True)
class _Target:
    origin: tuple[str, str, int]  # scheme, host, port
    head: bytes  # request line and Host header


@lru_cache(maxsize=1024)
def _target(url: str) -> _Target:
    """The parts of a callback URL a request needs (callback URLs repeat: cached)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpError(f"not an http(s) URL: {url!r}")
    default = 443 if parts.scheme == "https" else 80
    port = parts.port or default
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    if port != default:
        shown += f":{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    head = f"POST {path} HTTP/1.1\r\nHost: {shown}\r\n".encode("ascii")
    return _Target((parts.scheme, host, port), head)


class _Connection(asyncio.Protocol):
    """One connection, one request at a time; httptools calls the ``on_*`` methods."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: asyncio.Future[Answer] | None = None
        self.headers: dict[str, str] = {}
        self.body = bytearray()
        self.headers_done = False
        self.answered_any = False  # a byte of an answer arrived on this request
        self.closed = False
        self.idle_since = 0.0

    # -- asyncio ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.answer is None or self.answer.done():
            self.close()  # bytes nobody asked for: this connection cannot be trusted again
            return
        self.answered_any = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpError(f"not an HTTP answer: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.headers_done:  # an answer whose end is the end of the connection
            self._settle()
        else:
            self._fail(HttpError("the server closed the connection without an answer"))

    # -- httptools --------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.body += body
        if len(self.body) > MAX_BODY:  # not drained: this connection is done
            del self.body[MAX_BODY:]
            self._settle()
            self.close()

    def on_message_complete(self) -> None:
        if not self.parser.should_keep_alive():
            self.closed = True  # answered, then closed by the server: not reused
        self._settle()

    # -- a request --------------------------------------------------------------------

    def send(self, request: bytes) -> asyncio.Future[Answer]:
        assert self.transport is not None
        self.answer = asyncio.get_running_loop().create_future()
        self.headers, self.body = {}, bytearray()
        self.headers_done = self.answered_any = False
        self.transport.write(request)
        return self.answer

    def _settle(self) -> None:
        if self.answer is not None and not self.answer.done():
            status = self.parser.get_status_code()
            self.answer.set_result(Answer(status, self.headers, bytes(self.body)))

    def _fail(self, exc: Exception) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class WebhookHttp:
    """POST bytes to URLs over kept-alive connections, ``timeout`` seconds per request."""

    def __init__(
        self,
        timeout: float,
        user_agent: str,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.timeout = timeout
        self._agent = f"User-Agent: {user_agent}\r\n".encode("latin-1")
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()  # verified, like any HTTPS client
        return self._ssl

    async def _connect(self, origin: tuple[str, str, int]) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(
            _Connection,
            host,
            port,
            ssl=self._tls() if scheme == "https" else None,
            happy_eyeballs_delay=0.25,
        )
        return conn

    def _take(self, origin: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < IDLE_TIMEOUT:
                return conn
            conn.close()
        return None

    def _give_back(self, origin: tuple[str, str, int], conn: _Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if conn.closed or len(idle) >= MAX_IDLE:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        """Raises :class:`HttpError` or ``OSError`` (no answer), ``TimeoutError``."""
        target = _target(url)
        request = b"".join(
            (
                target.head,
                self._agent,
                "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode("latin-1"),
                f"Content-Length: {len(body)}\r\n\r\n".encode("ascii"),
                body,
            )
        )
        async with asyncio.timeout(self.timeout):
            conn = self._take(target.origin)
            if conn is not None:
                try:
                    return await self._exchange(target, conn, request)
                except HttpError:
                    if conn.answered_any:
                        raise
                    # Closed by the portal while idle: once more, on a new connection.
            return await self._exchange(target, await self._connect(target.origin), request)

    async def _exchange(self, target: _Target, conn: _Connection, request: bytes) -> Answer:
        try:
            answer = await conn.send(request)
        except BaseException:
            conn.close()
            raise
        self._give_back(target.origin, conn)
        return answer

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
