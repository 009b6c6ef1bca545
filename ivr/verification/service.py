"""The verification service: creation, long polls, cancel, call matching and expiry.

Long polls wait on in-process futures that every change of a verification resolves
(``notify``), so a waiting portal is answered the moment a call commits, without
polling the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from random import Random

from ivr import numbers
from ivr.batching import WriteBatch
from ivr.config import RetentionSettings, VerificationSettings
from ivr.log import get_logger
from ivr.metrics import Metrics
from ivr.verification.client_view import CallHint, hint_of, latest_hint
from ivr.verification.errors import (
    InvalidRequest,
    NoDialNumbers,
    NotFound,
    NotPending,
    NumberNotEligible,
)
from ivr.verification.models import Status, Verification, iso
from ivr.verification.ports import (
    RECENT_CALLS,
    CallEnd,
    CallFilter,
    CallRecord,
    Created,
    NewVerification,
    Store,
)

log = get_logger("ivr.verification")
END_BATCH = 0.05  # seconds a call's end waits to be written with others


def _time_up(fut: asyncio.Future[Verification | None]) -> None:
    if not fut.done():
        fut.set_result(None)  # the waiter reads the verification as it is


class VerificationService:
    def __init__(
        self,
        store: Store,
        pool: Sequence[str],
        settings: VerificationSettings,
        policy: numbers.NumberPolicy,
        clock: Callable[[], float] = time.time,
        rng: Random | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics or Metrics()
        self.store = store
        self.pool = tuple(pool)
        self.settings = settings
        self.policy = policy
        self.clock = clock
        self.rng = rng or Random()
        # Long polls waiting per verification; woken with the changed verification (or
        # None when the caller must read it), so 10,000 woken polls cost no store reads.
        self._waiters: dict[str, list[asyncio.Future[Verification | None]]] = {}
        # Login pages waiting for a call to their dial number that verified nothing.
        self._did_waiters: dict[str, list[asyncio.Future[Verification | None]]] = {}
        self._kick = asyncio.Event()
        self._next_due: float | None = None
        self._rechecks: set[asyncio.Task[None]] = set()
        self._ends: WriteBatch[CallEnd] = WriteBatch(
            lambda ends: self.store.finish_calls(ends), END_BATCH, "call_ends"
        )

    # -- portal operations ------------------------------------------------------------

    async def create(
        self,
        phone_number: str,
        reference: str | None = None,
        callback_url: str | None = None,
        ttl: int | None = None,
        idempotency_key: str | None = None,
        portal: str | None = None,
        fingerprint: str = "",
    ) -> Created:
        verdict = numbers.check(phone_number, self.policy)
        if not verdict.eligible or verdict.e164 is None:
            raise NumberNotEligible(
                verdict.messages.get("en", "number not eligible"),
                reason=verdict.reason,
                messages=verdict.messages,
            )
        ttl = self.settings.default_ttl if ttl is None else ttl
        if not self.settings.min_ttl <= ttl <= self.settings.max_ttl:
            raise InvalidRequest(
                f"ttl_seconds must be between {self.settings.min_ttl} and {self.settings.max_ttl}",
                field="ttl_seconds",
            )
        if not self.pool:
            raise NoDialNumbers("no authentication numbers are configured")
        req = NewVerification(
            verdict.e164,
            reference,
            callback_url,
            float(ttl),
            idempotency_key,
            idempotency_scope=portal or "",
            fingerprint=fingerprint,
            portal=portal,
        )
        created = await self.store.create_verification(req, self.pool, self.clock(), self.rng)
        for old in created.superseded + created.expired:
            self.notify(old.id, old)
        if not created.replayed:
            self.metrics.created.inc()
            v = created.verification
            log.info(
                "verification_created",
                verification_id=v.id,
                dial_number=v.dial_number,
                superseded=[o.id for o in created.superseded],
            )
            if self._next_due is None or v.expires_at < self._next_due:
                self._kick.set()
        return created

    async def get(self, verification_id: str, portal: str | None = None) -> Verification:
        """The verification; with ``portal``, only if that portal created it (another
        portal's is not found, as if it did not exist)."""
        v = await self.store.get_verification(verification_id)
        if v is None or (portal is not None and v.portal not in (None, portal)):
            raise NotFound(f"no verification {verification_id}")
        return v

    async def wait(
        self, verification_id: str, timeout: float, portal: str | None = None
    ) -> Verification:
        """The verification once it is no longer pending, or as it is after ``timeout``."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Verification | None] = loop.create_future()
        waiters = self._waiters.setdefault(verification_id, [])
        waiters.append(fut)  # registered before reading: a change in between still wakes us
        try:
            v = await self.get(verification_id, portal)
            if v.status.terminal or timeout <= 0:
                return v
            del v  # thousands of waiting polls need not each hold a copy
            # A timer on the future itself rather than asyncio.timeout: a waiting poll
            # holds one future and one timer handle, no second future and frame.
            timer = loop.call_later(timeout, _time_up, fut)
            try:
                changed = await fut
            finally:
                timer.cancel()
            return changed if changed is not None else await self.get(verification_id)
        finally:
            with contextlib.suppress(ValueError):
                waiters.remove(fut)
            if not waiters:
                self._waiters.pop(verification_id, None)

    async def cancel(self, verification_id: str, portal: str | None = None) -> Verification:
        if portal is not None:
            await self.get(verification_id, portal)  # another portal's: not found
        v = await self.store.cancel_verification(verification_id, self.clock(), "cancelled")
        self.notify(verification_id, v)
        if v.status is Status.EXPIRED:  # committed as expired; the cancel itself fails
            raise NotPending(
                f"verification {verification_id} has expired", current_status="expired"
            )
        log.info("verification_cancelled", verification_id=v.id)
        return v

    async def client_view(
        self, verification_id: str, timeout: float, seen_hint: str | None = None
    ) -> tuple[Verification, CallHint | None]:
        """A login page's long poll: the verification and its hint, once it is no longer
        pending or a hint newer than ``seen_hint`` (its ``at``) is there, or after
        ``timeout``. Calls on this gateway wake it at once; another gateway's are seen
        when the poll ends."""

        def news(v: Verification, hint: CallHint | None) -> bool:
            return v.status.terminal or (hint is not None and iso(hint.at) != seen_hint)

        fut: asyncio.Future[Verification | None] = asyncio.get_running_loop().create_future()
        # Registered before each read, so a change in between still wakes the poll: by
        # id before reading the verification, by dial number before reading the calls.
        by_id = self._waiters.setdefault(verification_id, [])
        by_id.append(fut)
        by_did: list[asyncio.Future[Verification | None]] = []
        did = ""
        try:
            v = await self.get(verification_id)
            did = v.dial_number
            by_did = self._did_waiters.setdefault(did, [])
            by_did.append(fut)
            hint = await self._hint(v)
            if timeout <= 0 or news(v, hint):
                return v, hint
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await fut
            v = await self.get(verification_id)
            return v, await self._hint(v)
        finally:
            for waiters, key, table in (
                (by_id, verification_id, self._waiters),
                (by_did, did, self._did_waiters),
            ):
                with contextlib.suppress(ValueError):
                    waiters.remove(fut)
                if not waiters and table.get(key) is waiters:
                    table.pop(key, None)

    async def _hint(self, v: Verification) -> CallHint | None:
        if v.status.terminal:
            return None
        calls = await self.store.list_calls(
            CallFilter(did=v.dial_number, since=v.created_at, limit=20)
        )
        return latest_hint(v, calls)

    def _notify_did(self, did: str) -> None:
        for fut in self._did_waiters.pop(did, ()):
            if not fut.done():
                fut.set_result(None)

    def notify(self, verification_id: str, changed: Verification | None = None) -> None:
        for fut in self._waiters.pop(verification_id, ()):
            if not fut.done():
                fut.set_result(changed)

    def release_waiters(self) -> None:
        """At shutdown: every waiting long poll answers now with what it has, instead of
        holding the gateway's stop for up to ``api.max_wait`` (the portal polls again,
        on a gateway that stays up)."""
        for table in (self._waiters, self._did_waiters):
            for futs in list(table.values()):
                for fut in futs:
                    if not fut.done():
                        fut.set_result(None)

    def on_store_change(self, verification_id: str) -> None:
        """Another gateway made this verification terminal: its waiters re-read it."""
        if verification_id in self._waiters:
            self.notify(verification_id)

    def recheck_waiters(self) -> None:
        """News from other gateways may have been missed: re-read every waited-for
        verification and wake the waiters of those no longer pending."""
        if self._waiters:
            task = asyncio.create_task(self._recheck(list(self._waiters)), name="recheck")
            self._rechecks.add(task)
            task.add_done_callback(self._rechecks.discard)

    async def _recheck(self, ids: list[str]) -> None:
        for verification_id in ids:
            with contextlib.suppress(Exception):
                v = await self.store.get_verification(verification_id)
                if v is not None and v.status.terminal:
                    self.notify(verification_id, v)

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())

    # -- calls ------------------------------------------------------------------------

    async def match_call(
        self, call: CallRecord, caller_e164: str, caller_raw: str
    ) -> tuple[CallRecord, Verification | None]:
        record, verified = await self.store.match_call(call, caller_e164, caller_raw, self.clock())
        if record.verification_id is not None:
            self.notify(record.verification_id, verified)
        elif hint_of(record) is not None:
            self._notify_did(record.did)
        return record, verified

    async def record_call(self, call: CallRecord) -> None:
        """A call decided without a verification (withheld, not eligible, ...)."""
        await self.store.record_call(call)
        if hint_of(call) is not None:
            self._notify_did(call.did)

    def finish_call(self, channel_id: str, committed_at: float | None) -> None:
        """The call was let go now. Written with the others of the next ``END_BATCH``
        seconds in one store write: a call's end is bookkeeping (the outcome and any
        verification were committed before), so one write per call is not worth it."""
        self._ends.add(CallEnd(channel_id, self.clock(), committed_at))

    async def flush_ends(self) -> None:
        """Write the call ends waiting for their batch (on a timer, and at shutdown)."""
        await self._ends.flush()

    async def list_calls(self, query: CallFilter = RECENT_CALLS) -> list[CallRecord]:
        return await self.store.list_calls(query)

    async def attempts(self, verification_id: str, portal: str | None) -> list[CallRecord]:
        """The calls that tried one verification, for the portal that owns it only."""
        await self.get(verification_id, portal)
        return await self.store.list_calls(CallFilter(verification_id=verification_id, limit=1000))

    # -- expiry -----------------------------------------------------------------------

    async def run_expiry(self) -> None:
        """Turn pending verifications ``expired`` at their expiry time, polled or not."""
        while True:
            try:
                now = self.clock()
                due = await self.store.next_expiry()
                if due is not None and due <= now:
                    expired = await self.store.expire_due(now)
                    for v in expired:
                        log.info("verification_expired", verification_id=v.id)
                        self.notify(v.id, v)
                    if expired:
                        continue
                    # Nothing expired though something is due: another gateway sweeps
                    # (a shared store), or it was settled meanwhile. Look again soon.
                    delay = 1.0
                else:
                    delay = 30.0 if due is None else min(max(due - now, 0.0), 30.0)
                self._next_due = due
                self._kick.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay + 0.005):
                        await self._kick.wait()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("expiry_failed")
                await asyncio.sleep(1.0)

    # -- retention --------------------------------------------------------------------

    async def purge(self, retention: RetentionSettings) -> tuple[int, int]:
        """Delete what is older than the retention settings say; (calls, verifications)."""
        now = self.clock()
        calls, verifications = await self.store.purge(
            now - retention.calls_days * 86400, now - retention.verifications_days * 86400
        )
        if calls or verifications:
            log.info("retention_purged", calls=calls, verifications=verifications)
        return calls, verifications

    async def run_retention(self, retention: RetentionSettings) -> None:
        while True:
            try:
                await self.purge(retention)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("retention_failed")
            await asyncio.sleep(retention.interval)
