"""Signed callbacks to the portals, delivered at least once from the durable outbox.

Events are written to the outbox in the same transaction as the state change (see the
store); this module only delivers them. Signing follows Standard Webhooks
(standardwebhooks.com): ``webhook-id`` (the same on every attempt, for deduplication),
``webhook-timestamp`` (of the attempt, so a portal can refuse stale ones) and
``webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``, one
signature per active secret so a secret can be rotated without downtime.

Retries: timeouts, connection errors, 408, 429 and 5xx, with exponential backoff and
jitter, honouring ``Retry-After``, until the event is ``callbacks.max_age`` old; then it
is ``failed``, kept, and replayable. Any other 4xx (and a redirect: we never follow one
off the allow-list) stops at once as ``failed``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import functools
import hashlib
import hmac
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ivr.batching import WriteBatch
from ivr.config import CallbacksSettings, PortalSettings
from ivr.log import get_logger
from ivr.metrics import Metrics
from ivr.urls import callback_url_problem
from ivr.verification.ports import Delivery, OutboxEvent, Store
from ivr.vocabulary import OutboxStatus
from ivr.webhook_http import HttpError, WebhookHttp

log = get_logger("ivr.callbacks")
USER_AGENT = "ivr-gateway/1 (+callbacks)"

RETRY_STATUSES = frozenset({408, 429})
IDLE_LOOK = 0.02  # seconds between looks at the outbox while deliveries are in flight
DELIVERED_BATCH = 0.05  # seconds a delivered event waits to be marked with others
_RESULT_LABELS = {  # the result label of callback attempts in /metrics
    OutboxStatus.DELIVERED: "delivered",
    OutboxStatus.PENDING: "retry",
    OutboxStatus.FAILED: "failed",
    OutboxStatus.NO_URL: "no_url",
}


@functools.lru_cache(maxsize=64)
def _keyed(secret: str) -> hmac.HMAC:
    """An HMAC-SHA256 already keyed with ``secret``, to copy per message: a copy and an
    update cost about a third less than ``hmac.digest``'s one-shot, which looks the hash
    up and keys it again each time and lets go of the GIL around it (the SQLite writer
    thread then takes the GIL, and the event loop waits to get it back)."""
    return hmac.new(base64.b64decode(secret.removeprefix("whsec_")), digestmod=hashlib.sha256)


@functools.lru_cache(maxsize=1024)
def _destination(url: str) -> tuple[str | None, str | None]:
    """``(problem, host)`` of a callback URL: portals have few, checked once each."""
    problem = callback_url_problem(url)
    return problem, None if problem else urlsplit(url).hostname


def sign(secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value: ``v1,<sig>`` per secret, space-separated."""
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    signatures = []
    for secret in secrets:
        mac = _keyed(secret).copy()
        mac.update(to_sign)  # in C, holding the GIL below 2 KiB
        signatures.append("v1," + base64.b64encode(mac.digest()).decode())
    return " ".join(signatures)


def backoff(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds before retry ``attempt`` (1, 2, ...): exponential, half of it jittered."""
    # The exponent is clamped: 2 ** 1024 as a float overflows, and attempts keep counting
    # across manual retries.
    delay = min(cap, base * 2.0 ** min(max(attempt - 1, 0), 60))
    return float(delay / 2 + rng.uniform(0, delay / 2))


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError, IndexError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - now)
    return None


@dataclass(frozen=True)
class Decision:
    """What becomes of an event after one attempt."""

    status: OutboxStatus  # delivered | pending | failed
    next_attempt_at: float
    error: str | None


def decide(
    event: OutboxEvent,
    http_status: int | None,
    error: str | None,
    retry_after_s: float | None,
    now: float,
    settings: CallbacksSettings,
    rng: random.Random,
) -> Decision:
    """Pure: the outcome of an attempt, from its HTTP status or transport error."""
    if http_status is not None and 200 <= http_status < 300:
        return Decision(OutboxStatus.DELIVERED, now, None)
    retryable = http_status is None or http_status in RETRY_STATUSES or http_status >= 500
    if not retryable:
        return Decision(
            OutboxStatus.FAILED, now, error or f"portal answered {http_status}; not retried"
        )
    attempts = event.attempts + 1
    delay = max(
        backoff(attempts, settings.backoff_base, settings.backoff_max, rng), retry_after_s or 0.0
    )
    if now + delay - event.retry_since > settings.max_age:
        return Decision(OutboxStatus.FAILED, now, f"gave up after {attempts} attempts: {error}")
    return Decision(OutboxStatus.PENDING, now + delay, error)


class CallbackSender:
    """Delivers due outbox events: at most ``concurrency`` in flight, and at most
    ``per_portal`` for one portal, so a slow or dead portal cannot delay another's."""

    def __init__(
        self,
        store: Store,
        settings: CallbacksSettings,
        portals: Iterable[PortalSettings],
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics or Metrics()
        self.settings = settings
        self.portals = {p.name: p for p in portals}
        self.clock = clock
        self.rng = rng or random.Random()
        self._kick = asyncio.Event()
        self._inflight: dict[str, str | None] = {}  # event id -> portal
        # Event id -> attempts made, for events attempted lately (insertion-ordered).
        self._recent: dict[str, int] = {}
        self._backlog = False  # an offered or due event found no free slot
        self._started = 0  # deliveries the last look at the outbox started
        self._retry_at: float | None = None  # the earliest retry this sender scheduled
        self._failing: set[str | None] = set()  # portals whose last attempt was retried
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: WebhookHttp | None = None  # while running
        # Delivered but not marked yet: still 'pending' in the store, so still "due".
        self._unmarked = 0
        self._delivered: WriteBatch[Delivery] = WriteBatch(
            self._record_deliveries, DELIVERED_BATCH, "callback_deliveries"
        )

    def kick(self) -> None:
        """Something may be due now (a commit wrote to the outbox)."""
        self._kick.set()

    def offer(self, events: list[OutboxEvent]) -> None:
        """Events just committed: deliver them now if there is room (the fast path; the
        outbox poll is the safety net for the rest, retries, and after a restart)."""
        if self._http is None:
            return
        if self._dispatch(events):
            self.kick()

    async def run(self) -> None:
        self._http = WebhookHttp(self.settings.timeout, USER_AGENT)
        try:
            while True:
                try:
                    # Cleared before looking, so a kick that comes while we look (a
                    # delivery freeing its slot) is not lost.
                    self._kick.clear()
                    await self._dispatch_due()
                    await self._sleep()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("callback_loop_failed")
                    await asyncio.sleep(1.0)
        finally:
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.flush_delivered()
            self._http.close()
            self._http = None

    async def _sleep(self) -> None:
        now = self.clock()
        next_at = await self.store.next_event_at()
        # Wake at the next due event, on a kick, or within a second (an operator's
        # `ivr callbacks retry` from another process changes the store behind our back).
        delay = 1.0 if next_at is None else min(max(next_at - now, 0.0), 1.0)
        if delay == 0 and not self._started:
            # The last look found nothing to start: whatever is due is known here (in
            # flight, delivered and waiting to be marked, or waiting for a slot, and a
            # delivery that frees one kicks). Nothing new until our own next retry, a
            # kick, or the look within a second; looking again at once would spin on
            # the outbox (at 250 calls/s it read the outbox twice per call).
            if self._retry_at is not None and self._retry_at <= now:
                self._retry_at, delay = None, 0.0  # our retry is due: look now
            else:
                delay = 1.0 if self._retry_at is None else min(self._retry_at - now, 1.0)
        elif delay == 0 and self._inflight:
            # What the last look started is in flight: look again shortly for the rest.
            delay = IDLE_LOOK
        if delay > 0 and not self._kick.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._kick.wait()

    async def _dispatch_due(self) -> None:
        # What is in flight or delivered and not yet marked is still due in the store:
        # read that many more, or it would hide the events waiting behind it.
        window = self.settings.per_portal + len(self._inflight) + self._unmarked
        due = await self.store.due_events(self.clock(), window)
        # A row read before our last attempt on it was recorded is stale: skip it.
        before = len(self._inflight)
        self._dispatch([e for e in due if e.attempts >= self._recent.get(e.id, 0)])
        self._started = len(self._inflight) - before
        # A portal's window was full: more may be due behind it, so look again as soon
        # as a delivery frees a slot.
        if any(n >= window for n in Counter(e.portal for e in due).values()):
            self._backlog = True

    def _dispatch(self, events: list[OutboxEvent]) -> bool:
        """Start what there is room for; True if something had to wait for a slot."""
        busy = Counter(self._inflight.values())
        for event in events:
            if event.id in self._inflight:
                continue
            if (
                busy[event.portal] >= self.settings.per_portal
                or len(self._inflight) >= self.settings.concurrency
            ):
                self._backlog = True
                continue
            busy[event.portal] += 1
            self._inflight[event.id] = event.portal
            task = asyncio.create_task(self._deliver(event), name=f"callback-{event.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return self._backlog

    async def _deliver(self, event: OutboxEvent) -> None:
        retry = True
        try:
            status = await self._attempt(event)
            retry = status is OutboxStatus.PENDING
            if retry:
                self._failing.add(event.portal)
            elif status is OutboxStatus.DELIVERED and event.portal in self._failing:
                # The portal is back: what waits out its backoff for it goes now (at
                # most per_portal at a time), not each at its own next attempt.
                self._failing.discard(event.portal)
                released = await self.store.release_backlog(event.portal, self.clock())
                if released:
                    log.info("callback_backlog_released", portal=event.portal, events=released)
                    retry = True  # wake the poll to take them
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("callback_attempt_crashed", event_id=event.id)
            # Never leave it due and untried: the loop would find it again at once.
            with contextlib.suppress(Exception):
                await self.store.record_attempt(
                    event.id,
                    OutboxStatus.PENDING,
                    event.attempts + 1,
                    self.clock() + self.settings.backoff_max,
                    "internal error in the callback sender; see the gateway log",
                )
        finally:
            self._inflight.pop(event.id, None)
            self._recent[event.id] = event.attempts + 1
            if len(self._recent) > 10000:
                self._recent.pop(next(iter(self._recent)))
            # Wake the poll only when it has work: a retry to schedule, or events that
            # waited for this slot. A delivered event needs no store read at all.
            if retry or self._backlog:
                self._backlog = False
                self.kick()

    async def _record_deliveries(self, done: list[Delivery]) -> None:
        try:
            await self.store.record_deliveries(done)
        finally:
            self._unmarked -= len(done)

    def _mark_delivered(self, delivery: Delivery) -> None:
        """Delivered events are marked in one write per ``DELIVERED_BATCH`` seconds. Until
        then ``_recent`` keeps the poll from sending one again; a crash in between sends
        it again after the restart (at least once, deduplicated by webhook-id)."""
        self._unmarked += 1
        self._delivered.add(delivery)

    async def flush_delivered(self) -> None:
        await self._delivered.flush()

    def _target(self, event: OutboxEvent) -> tuple[str | None, PortalSettings | None]:
        portal = self.portals.get(event.portal or "")
        url = event.callback_url or (portal.callback_url if portal else "") or None
        return url, portal

    async def _attempt(self, event: OutboxEvent) -> OutboxStatus:
        """One delivery attempt; returns the event's new status."""
        assert self._http is not None
        url, portal = self._target(event)
        now = self.clock()
        if url is None or portal is None:
            await self.store.record_attempt(
                event.id,
                OutboxStatus.NO_URL,
                event.attempts,
                now,
                "no callback_url and no portal default",
            )
            self.metrics.callbacks.labels(
                event.portal or "-", _RESULT_LABELS[OutboxStatus.NO_URL]
            ).inc()
            return OutboxStatus.NO_URL
        problem, host = _destination(url)
        if problem or host not in portal.callback_hosts:
            # Permanent: the URL can never be delivered to (or the allow-list changed).
            reason = (
                f"callback_url {problem}" if problem else f"host {host} is not in callback_hosts"
            )
            await self.store.record_attempt(
                event.id,
                OutboxStatus.FAILED,
                event.attempts,
                now,
                reason,
            )
            self.metrics.callbacks.labels(portal.name, "refused").inc()
            return OutboxStatus.FAILED
        body = event.payload.encode()
        timestamp = int(now)
        headers = {
            "Content-Type": "application/json",
            "webhook-id": event.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(portal.callback_secrets, event.id, timestamp, body),
        }
        started = time.monotonic()
        http_status: int | None = None
        error: str | None = None
        wait_hint: float | None = None
        try:
            answer = await self._http.post(url, body, headers)
            http_status = answer.status
            wait_hint = retry_after(answer.headers.get("retry-after"), now)
            if not 200 <= answer.status < 300:
                error = f"HTTP {answer.status}"
        except TimeoutError:
            error = f"timed out after {self.settings.timeout:.1f} s"
        except (HttpError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        latency_ms = (time.monotonic() - started) * 1000
        decision = decide(
            event, http_status, error, wait_hint, self.clock(), self.settings, self.rng
        )
        attempts = event.attempts + 1
        if decision.status is OutboxStatus.DELIVERED and http_status is not None:
            self._mark_delivered(Delivery(event.id, attempts, http_status, self.clock()))
        else:
            await self.store.record_attempt(
                event.id,
                decision.status,
                attempts,
                decision.next_attempt_at,
                decision.error,
                http_status,
            )
            if decision.status is OutboxStatus.PENDING and (
                self._retry_at is None or decision.next_attempt_at < self._retry_at
            ):
                self._retry_at = decision.next_attempt_at
        result = _RESULT_LABELS[decision.status]
        self.metrics.callbacks.labels(portal.name, result).inc()
        self.metrics.callback_latency.labels(portal.name).observe(latency_ms / 1000)
        # A first attempt that delivered is the common case: debug, so a verified call
        # logs one info line (call_decided); retries and failures stay at info.
        emit = (
            log.debug if decision.status is OutboxStatus.DELIVERED and attempts == 1 else log.info
        )
        emit(
            "callback_attempt",
            event_id=event.id,
            verification_id=event.verification_id,
            type=event.type,
            portal=portal.name,
            host=host,
            http_status=http_status,
            error=error,
            attempt=attempts,
            result=result,
            latency_ms=round(latency_ms, 1),
            retry_in=round(decision.next_attempt_at - self.clock(), 2)
            if decision.status is OutboxStatus.PENDING
            else None,
        )
        return decision.status
