"""One call, from StasisStart to release: identity -> outcome -> commit -> prompt -> release.

The order is the product's promise: the outcome is committed (and the portal's long poll
woken) before the caller hears anything; the prompt and the release come after, and a
failure there can no longer undo a verification. The prompt and the release are the
dialplan's (:mod:`ivr.stasis.release`): one ARI request hands the call over.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ivr import numbers
from ivr.asterisk.ari import AriError
from ivr.calls import CallerIdentity, precheck, read_identity
from ivr.log import bind, get_logger
from ivr.metrics import Metrics
from ivr.ratelimit import Limits
from ivr.stasis import handoff, release
from ivr.stasis.policy import CallPolicy
from ivr.stasis.ports import AriPort
from ivr.trunks import Inventory
from ivr.verification.ports import CallRecord
from ivr.verification.service import VerificationService
from ivr.vocabulary import AnswerMode, Outcome

log = get_logger("ivr.stasis")


@dataclass
class ActiveCall:
    """A channel in the app, as the router tracks it while the flow runs."""

    channel_id: str
    received_at: float = field(default_factory=time.time)  # StasisStart read off the socket


def parse_time(stamp: object) -> float | None:
    """An ARI timestamp (``2026-11-27T14:54:35.123+0000``) as POSIX seconds."""
    if isinstance(stamp, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(stamp).timestamp()  # 3.11: +0000 too, 5x strptime
    return None


@dataclass(frozen=True, slots=True)
class CallStart:
    """What a StasisStart event says about a call."""

    channel_id: str
    did: str  # the dialled DID (the dialplan's first Stasis argument)
    trunk: str  # the endpoint it came in on (the second)
    started_at: float  # the channel's creation: the INVITE reaching Asterisk
    identity: CallerIdentity

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> CallStart:
        channel = event.get("channel") or {}
        args = [str(a) for a in event.get("args") or []]
        caller = channel.get("caller") or {}
        started = parse_time(channel.get("creationtime")) or parse_time(event.get("timestamp"))
        # The headers as Stasis() arguments; a dialplan rendered before them (not applied
        # again since the upgrade) passes them as channel variables.
        passed = handoff.read_args(args[2:]) or handoff.Identity(channel.get("channelvars") or {})
        return cls(
            channel_id=str(channel.get("id", "")),
            did=args[0] if args else "",
            trunk=args[1] if len(args) > 1 else "",
            started_at=started or time.time(),
            identity=read_identity(
                str(caller.get("number") or ""),
                str(caller.get("name") or ""),
                passed.vars,
                passed.complete,
            ),
        )


class CallFlow:
    """Runs one call at a time per task; shares nothing between calls but its inputs."""

    def __init__(
        self,
        ari: AriPort,
        service: VerificationService,
        inventory: Inventory,
        number_policy: numbers.NumberPolicy,
        call_policy: CallPolicy,
        metrics: Metrics | None = None,
        limits: Limits | None = None,
        node: str = "main",
    ) -> None:
        self.ari = ari
        self.node = node  # the Asterisk node this flow's calls arrive on
        self.limits = limits
        self.service = service
        self.number_policy = number_policy
        self.call_policy = call_policy
        self.metrics = metrics or Metrics()
        self.inventory = inventory
        self._dids = inventory.dids

    def reload_inventory(self, inventory: Inventory) -> None:
        """Take a new trunk inventory (after ``ivr trunks apply`` and SIGHUP)."""
        self.inventory = inventory
        self._dids = inventory.dids

    async def run(self, call: ActiveCall, event: Mapping[str, Any]) -> None:
        bind(channel_id=call.channel_id, node=self.node)
        mode = AnswerMode.REJECT
        language = self.call_policy.calls.language
        outcome = Outcome.FAILED
        committed_at: float | None = None
        try:
            start = CallStart.from_event(event)
            bind(did=start.did, trunk=start.trunk)
            if await self._refused(call, start):
                return
            entry = self._dids.get(start.did)
            if entry is not None:
                mode = AnswerMode(entry[1].answer_mode)  # a str from a hand-made Did too
                language = entry[1].language or language
            record = await self._decide(start, mode)
            committed_at = time.time()
            if record.verification_id is not None:  # every later line of this call has it
                bind(verification_id=record.verification_id)
            outcome = record.outcome
            self._observe(call, start, record, committed_at)
        except Exception:
            log.exception("call_failed")
            outcome = Outcome.FAILED
        try:
            await self._release(call, outcome, mode, language)
        except Exception:
            log.exception("call_release_failed")
        finally:
            self.service.finish_call(call.channel_id, committed_at)

    async def _refused(self, call: ActiveCall, start: CallStart) -> bool:
        """A blocked caller, or one calling in a loop: released at once with the
        configured cause, before any store work and without a prompt."""
        number = start.identity.number
        if self.limits is None or number is None:
            return False
        limit = self.limits.call(number, time.time())
        if limit is None:
            return False
        self.metrics.rate_limited.labels(limit).inc()
        log.info("call_refused", limit=limit, caller=numbers.mask(number))
        with contextlib.suppress(AriError):
            await self.ari.hangup(call.channel_id, self.limits.release_cause)
        return True

    async def _decide(self, start: CallStart, mode: AnswerMode) -> CallRecord:
        """The call's outcome, durably recorded (and the verification, if it verified)."""
        identity = start.identity
        check = precheck(
            identity,
            self.inventory.trunk(start.trunk),
            start.did in self.service.pool,
            self.number_policy,
        )
        record = CallRecord(
            channel_id=start.channel_id,
            did=start.did,
            trunk=start.trunk or None,
            caller_masked=numbers.mask(identity.raw_number) if identity.raw_number else "",
            presentation=identity.presentation,
            absence=str(identity.absence) if identity.absence else None,
            outcome=check.outcome or Outcome.NO_PENDING,
            reason=check.reason,
            answer_mode=mode,
            started_at=start.started_at,
            decided_at=time.time(),
        )
        if check.outcome is None and identity.number is not None:
            record, _ = await self.service.match_call(record, identity.number, identity.raw_number)
        else:
            await self.service.record_call(record)
        return record

    def _observe(
        self, call: ActiveCall, start: CallStart, record: CallRecord, committed_at: float
    ) -> None:
        self.metrics.calls.labels(str(record.outcome), start.trunk or "-", self.node).inc()
        if record.outcome is Outcome.VERIFIED:
            self.metrics.verified.inc()
            self.metrics.call_to_verified.observe(max(0.0, committed_at - start.started_at))
        log.info(
            "call_decided",
            outcome=str(record.outcome),
            reason=record.reason,
            verification_id=record.verification_id,
            caller=record.caller_masked,
            absence=record.absence,
            answer_mode=str(record.answer_mode),
            # From the INVITE at Asterisk to StasisStart read here (Asterisk's part),
            # and from there to the outcome durably stored (ours).
            stasis_ms=round((call.received_at - start.started_at) * 1000, 1),
            commit_ms=round((committed_at - call.received_at) * 1000, 1),
        )

    async def _release(
        self, call: ActiveCall, outcome: Outcome, mode: AnswerMode, language: str
    ) -> None:
        """Tell the caller, then end the call, the way the DID's answer mode says: a
        final response at once, or the prompt and the release in the dialplan."""
        cause = self.call_policy.cause(outcome)
        try:
            if mode is AnswerMode.REJECT:
                await self.ari.hangup(call.channel_id, cause)
            else:
                ext = release.extension(mode, language, outcome, cause)
                await self.ari.continue_in_dialplan(call.channel_id, release.CONTEXT, ext)
        except AriError as exc:
            if exc.status != 404:  # 404: the caller already hung up
                raise
