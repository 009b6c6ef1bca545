"""ARI client: one WebSocket for the Stasis app's events, REST over one ClientSession.

Only protocol here; what to do with a call lives in :mod:`ivr.stasis`, which subscribes
to the events (``subscribe``) when it is built.

Asterisk replays nothing after a disconnect (LAB-NOTES): channels that were in the app
stay there, controllable over REST, and never time out by themselves. So after every
(re)connect the ``on_connect`` hook runs before any event is read, and the owner finds
and finishes the channels it lost. A frozen Asterisk is only noticed by the heartbeat,
and a reconnect handshake to it would hang without the timeout around it. Asterisk
answers the upgrade before it registers the app, and may drop the registration when it
cleans up an older session late, so "connected" means "the app is listed", checked again
every heartbeat.

REST requests go over the same WebSocket once Asterisk has shown it takes them (ARI REST
over WebSocket, Asterisk 22.3 and later: a ``RESTRequest`` message answered by a
``RESTResponse`` event), which spares both sides an HTTP request per call; before that,
with an older Asterisk, and when the socket goes away under a request, over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp

from ivr import jsoncodec
from ivr.config import AsteriskSettings
from ivr.log import get_logger

log = get_logger("ivr.ari")

EventHandler = Callable[[dict[str, Any]], None]
ConnectHook = Callable[[], Awaitable[None]]


def _no_handler(event: dict[str, Any]) -> None:
    log.debug("ari_event_unrouted", type=event.get("type"))


class AriError(Exception):
    def __init__(self, status: int, method: str, path: str, text: str) -> None:
        super().__init__(f"ARI {method} {path} -> {status}: {text[:200]}")
        self.status = status


class _SocketGone(Exception):
    """The WebSocket closed before a request over it was answered."""


REQUEST_TIMEOUT = 10.0  # seconds, over either transport
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def _query(params: dict[str, str]) -> str:
    """``urlencode``, without its cost for the values calls send (ids, contexts, our
    extensions, reasons: nothing to escape)."""
    if all(_PLAIN.issuperset(k) and _PLAIN.issuperset(v) for k, v in params.items()):
        return "&".join(f"{k}={v}" for k, v in params.items())
    return urlencode(params)


def _time_out(fut: asyncio.Future[dict[str, Any]]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


class AriClient:
    def __init__(self, settings: AsteriskSettings) -> None:
        self.settings = settings
        self.app = settings.app
        self.on_event: EventHandler = _no_handler
        self.on_connect: ConnectHook | None = None
        self.base = settings.ari_url
        self._auth = aiohttp.encode_basic_auth(settings.ari_user, settings.ari_password)
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.connected = asyncio.Event()
        self.connects = 0
        self.rest_over_ws = False  # this socket answered a RESTRequest
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._seq = 0

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("ARI client is not started")
        return self._session

    def subscribe(self, on_event: EventHandler, on_connect: ConnectHook | None = None) -> None:
        """Where the app's events go, and what runs after every (re)connect."""
        self.on_event = on_event
        self.on_connect = on_connect

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            headers={"Authorization": self._auth},
            connector=aiohttp.TCPConnector(limit=64),
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
        )
        self._task = asyncio.create_task(self._run(), name="ari-events")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
        self.connected.clear()

    # -- REST -------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        body: Any = None,
    ) -> Any:
        ws = self._ws
        if ws is not None and self.rest_over_ws and body is None:
            with contextlib.suppress(_SocketGone):
                return await self._over_ws(ws, method, path, params)
        return await self._over_http(method, path, params, body)

    async def _over_http(
        self, method: str, path: str, params: dict[str, str] | None = None, body: Any = None
    ) -> Any:
        url = f"{self.base}{path}"
        async with self.session.request(method, url, params=params, json=body) as resp:
            text = await resp.text()
            if resp.status >= 400:
                raise AriError(resp.status, method, path, text)
            return jsoncodec.loads(text) if text else None

    async def _over_ws(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        method: str,
        path: str,
        params: dict[str, str] | None,
    ) -> Any:
        self._seq += 1
        request_id = str(self._seq)
        uri = path.lstrip("/") + (f"?{_query(params)}" if params else "")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._pending[request_id] = fut
        # A timer on the future itself: one handle per request, no timeout context.
        timer = loop.call_later(REQUEST_TIMEOUT, _time_out, fut)
        try:
            message = {"type": "RESTRequest", "request_id": request_id, "method": method}
            try:
                await ws.send_str(jsoncodec.dumps({**message, "uri": uri}))
            except (aiohttp.ClientError, ConnectionError, RuntimeError):
                raise _SocketGone from None
            answer = await fut
        finally:
            timer.cancel()
            self._pending.pop(request_id, None)
        status = int(answer.get("status_code") or 500)
        text = str(answer.get("message_body") or "")
        if status >= 400:
            raise AriError(status, method, path, text)
        return jsoncodec.loads(text) if text else None

    async def _probe_rest_over_ws(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Does this Asterisk take REST requests on the socket? An older one ignores the
        message: HTTP it is, until the next connection."""
        try:
            async with asyncio.timeout(2.0):
                await self._over_ws(ws, "GET", f"/applications/{self.app}", None)
        except (TimeoutError, _SocketGone, AriError) as exc:
            log.info("ari_rest_over_http", reason=str(exc) or type(exc).__name__)
            return
        self.rest_over_ws = ws is self._ws

    async def info(self) -> dict[str, Any]:
        data: dict[str, Any] = await self.request("GET", "/asterisk/info")
        return data

    async def continue_in_dialplan(self, channel_id: str, context: str, extension: str) -> None:
        """The channel leaves the app for ``context``/``extension``, priority 1."""
        await self.request(
            "POST",
            f"/channels/{channel_id}/continue",
            params={"context": context, "extension": extension, "priority": "1"},
        )

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", f"/channels/{channel_id}", params={"reason": reason})

    async def application_channels(self) -> list[str]:
        data = await self.request("GET", f"/applications/{self.app}")
        return list(data.get("channel_ids", []))

    # -- events -----------------------------------------------------------------------

    async def _run(self) -> None:
        delay = 0.2
        url = self.base.replace("http", "ws", 1) + "/events"
        params = {"app": self.app, "subscribeAll": "false"}
        while True:
            try:
                async with asyncio.timeout(self.settings.connect_timeout):
                    ws = await self.session.ws_connect(
                        url,
                        params=params,
                        heartbeat=self.settings.heartbeat,
                        timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
                    )
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                log.warning(
                    "ari_connect_failed",
                    error=str(exc) or type(exc).__name__,
                    retry_in=round(delay, 2),
                )
                await asyncio.sleep(delay)
                # Refused connections cost nothing: keep trying every half second, so
                # calls flow again within 0.5 s of Asterisk's ARI answering.
                delay = min(delay * 2, 0.5) * random.uniform(0.8, 1.0)
                continue
            self._ws = ws
            watch: asyncio.Task[None] | None = None
            probe: asyncio.Task[None] | None = None
            self.connects += 1
            delay = 0.2
            try:
                try:
                    waited = await self._registered()
                except (AriError, aiohttp.ClientError, TimeoutError, OSError) as exc:
                    log.warning("ari_register_failed", error=str(exc) or type(exc).__name__)
                    await asyncio.sleep(delay)
                    continue
                log.info("ari_connected", app=self.app, url=self.base, registered_ms=waited)
                if self.on_connect is not None:
                    try:
                        await self.on_connect()
                    except Exception:
                        log.exception("ari_resync_failed")
                self.connected.set()
                watch = asyncio.create_task(self._watch(ws), name="ari-watch")
                probe = asyncio.create_task(self._probe_rest_over_ws(ws), name="ari-probe")
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        self._dispatch(msg.data)
                    elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                        break
            finally:
                self.connected.clear()
                self._ws = None
                self.rest_over_ws = False
                for fut in self._pending.values():
                    if not fut.done():
                        fut.set_exception(_SocketGone())
                if probe is not None:
                    probe.cancel()
                    probe = None
                if watch is not None:
                    watch.cancel()
                    watch = None
                with contextlib.suppress(Exception):
                    await ws.close()
            log.warning("ari_disconnected", code=ws.close_code, error=str(ws.exception() or ""))

    async def _registered(self) -> float:
        """Wait until Asterisk lists the app: it answers the WebSocket upgrade before it
        registers the app, and a call arriving in between is refused (503) although the
        socket is open. Returns the milliseconds waited; raises TimeoutError."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with asyncio.timeout(min(self.settings.connect_timeout, 2.0)):
            while True:
                try:
                    await self._over_http("GET", f"/applications/{self.app}")
                    return round((loop.time() - started) * 1000, 1)
                except AriError as exc:
                    if exc.status != 404:
                        raise
                await asyncio.sleep(0.01)

    async def _watch(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Every heartbeat, check that the app is still registered to a live socket.
        After a freeze or a network cut, Asterisk may clean up the old session after it
        registered the new one, and that unregisters the app: the socket stays open and
        calls are refused. Closing it makes the loop reconnect and register again."""
        while not ws.closed:
            await asyncio.sleep(self.settings.heartbeat)
            try:
                # Over HTTP: Asterisk's registry, whatever happened to this socket.
                await self._over_http("GET", f"/applications/{self.app}")
            except AriError as exc:
                if exc.status == 404:
                    log.warning("ari_app_unregistered", app=self.app)
                    await ws.close()
                    return
            except (aiohttp.ClientError, TimeoutError, OSError):
                pass  # the heartbeat judges the connection itself

    def _dispatch(self, data: str) -> None:
        try:
            event = jsoncodec.loads(data)
        except ValueError:
            log.warning("ari_bad_event", size=len(data))
            return
        if not isinstance(event, dict):
            return
        if event.get("type") == "RESTResponse":
            fut = self._pending.get(str(event.get("request_id")))
            if fut is not None and not fut.done():
                fut.set_result(event)
            return
        if event.get("type") == "ApplicationReplaced":
            # Another client connected with this app's name (two gateways sharing one
            # ``asterisk.app``): calls now go there. Not fought over: an operator fixes it.
            log.error("ari_app_replaced", app=self.app)
            return
        try:
            self.on_event(event)
        except Exception:
            # An event we cannot handle must never take the connection down.
            log.exception("ari_event_failed", type=event.get("type"))
