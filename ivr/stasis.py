"""Call handling: ARI events for the Stasis app -> outcome -> commit -> prompt -> release.

The order matters and is the product's promise: the outcome is committed (and the
portal's long poll woken) before the caller hears anything; the prompt and the release
come after, and a failure there can no longer undo a verification.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ivr import numbers, prompts
from ivr.asterisk.ari import AriClient, AriError
from ivr.asterisk.pbx import local_sounds_dir
from ivr.calls import Outcome, precheck, read_identity
from ivr.config import CallsSettings, ConfigError, Settings
from ivr.log import get_logger
from ivr.metrics import Metrics
from ivr.store import CallRecord, Store
from ivr.trunks import Inventory
from ivr.verification.service import VerificationService

log = get_logger("ivr.stasis")


@dataclass(frozen=True)
class CallPolicy:
    """How calls end: the prompt per outcome and language, the cause for unanswered calls."""

    media: Mapping[tuple[str, str], str]  # (outcome, language) -> ARI media URI
    durations: Mapping[tuple[str, str], float]
    calls: CallsSettings

    @classmethod
    def from_settings(cls, settings: Settings) -> CallPolicy:
        """Check every prompt file now (``play`` would only fail at the call)."""
        calls = settings.calls
        try:
            loaded = prompts.load(Path(calls.prompts_dir))
        except prompts.PromptError as exc:
            raise ConfigError("calls.prompts_dir", str(exc)) from None
        base = calls.asterisk_prompts_dir or local_sounds_dir(settings.pbx.instance)
        media = {key: f"sound:{base}/{p.language}/{p.outcome}" for key, p in loaded.items()}
        return cls(media, {k: p.seconds for k, p in loaded.items()}, calls)

    def prompt(self, outcome: str, language: str) -> str:
        return self.media[(outcome, language)]

    def cause(self, outcome: str) -> str:
        return self.calls.cause(outcome)


@dataclass
class _Call:
    channel_id: str
    received_at: float = field(default_factory=time.time)  # StasisStart read off the socket
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    playbacks: dict[str, asyncio.Future[str]] = field(default_factory=dict)


def _parse_time(stamp: object) -> float | None:
    if isinstance(stamp, str):
        with contextlib.suppress(ValueError):
            return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
    return None


def _event_time(event: Mapping[str, Any]) -> float:
    return _parse_time(event.get("timestamp")) or time.time()


class CallController:
    """Owns the calls of one Stasis app: one task per call, events routed to it."""

    def __init__(
        self,
        service: VerificationService,
        store: Store,
        inventory: Inventory,
        policy: numbers.NumberPolicy,
        call_policy: CallPolicy,
        metrics: Metrics | None = None,
    ) -> None:
        self.service = service
        self.store = store
        self.inventory = inventory
        self.number_policy = policy
        self.call_policy = call_policy
        self.ari: AriClient | None = None
        self._calls: dict[str, _Call] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._dids = inventory.dids
        self.metrics = metrics or Metrics()

    def reload_inventory(self, inventory: Inventory) -> None:
        """Take a new trunk inventory (after ``ivr trunks apply`` and SIGHUP)."""
        self.inventory = inventory
        self._dids = inventory.dids

    # -- ARI events -------------------------------------------------------------------

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        channel = event.get("channel") or {}
        channel_id = channel.get("id", "")
        if kind == "StasisStart":
            if channel_id in self._calls:
                return
            call = _Call(channel_id)
            self._calls[channel_id] = call
            task = asyncio.create_task(self._handle(call, event), name=f"call-{channel_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif kind in ("StasisEnd", "ChannelDestroyed"):
            ended = self._calls.get(channel_id)
            if ended is not None:
                ended.gone.set()
        elif kind == "PlaybackFinished":
            playback = event.get("playback") or {}
            target = str(playback.get("target_uri", ""))
            playing = self._calls.get(target.removeprefix("channel:"))
            if playing is not None:
                fut = playing.playbacks.pop(str(playback.get("id")), None)
                if fut is not None and not fut.done():
                    fut.set_result(str(playback.get("state", "done")))
        elif kind == "ApplicationReplaced":
            log.error(
                "ari_application_replaced",
                app=event.get("application"),
                hint="another client took this Stasis app; give each gateway its own app",
            )
        # Everything else (ChannelVarset, ChannelStateChange, ...) is of no use here.

    async def on_connect(self) -> None:
        """After a (re)connect: finish what the gap left behind (nothing is replayed)."""
        assert self.ari is not None
        in_app = set(await self.ari.application_channels())
        for channel_id, call in list(self._calls.items()):
            if channel_id not in in_app:
                call.gone.set()  # ended while we were away
        for channel_id in in_app - set(self._calls):
            # A channel we hold no task for (this process restarted mid-call): its
            # caller is waiting for nothing; release it rather than leave it ringing.
            log.warning("orphan_channel_released", channel_id=channel_id)
            with contextlib.suppress(AriError):
                await self.ari.hangup(channel_id, self.call_policy.cause(Outcome.FAILED))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    # -- one call ---------------------------------------------------------------------

    async def _handle(self, call: _Call, event: dict[str, Any]) -> None:
        channel = event.get("channel") or {}
        args = [str(a) for a in event.get("args") or []]
        did = args[0] if args else ""
        trunk_name = args[1] if len(args) > 1 else ""
        # The channel's creation is when the INVITE reached Asterisk; StasisStart comes
        # after the dialplan ran.
        started_at = _parse_time(channel.get("creationtime")) or _event_time(event)
        structlog_ctx = {"channel_id": call.channel_id, "did": did, "trunk": trunk_name}
        mode = "reject"
        committed_at: float | None = None
        language = self.call_policy.calls.language
        outcome: str = Outcome.FAILED
        try:
            trunk = self.inventory.trunk(trunk_name)
            entry = self._dids.get(did)
            if entry is not None:
                mode = entry[1].answer_mode
                language = entry[1].language or language
            caller = channel.get("caller") or {}
            identity = read_identity(
                str(caller.get("number") or ""),
                str(caller.get("name") or ""),
                channel.get("channelvars") or {},
            )
            check = precheck(identity, trunk, did in self.service.pool, self.number_policy)
            record = CallRecord(
                channel_id=call.channel_id,
                did=did,
                trunk=trunk_name or None,
                caller_masked=numbers.mask(identity.raw_number) if identity.raw_number else "",
                presentation=identity.presentation,
                absence=str(identity.absence) if identity.absence else None,
                outcome=str(check.outcome or Outcome.NO_PENDING),
                reason=check.reason,
                answer_mode=mode,
                started_at=started_at,
                decided_at=time.time(),
            )
            if check.outcome is None and identity.number is not None:
                record, _ = await self.service.match_call(
                    record, identity.number, identity.raw_number
                )
            else:
                await self.store.record_call(record)
            committed_at = time.time()
            outcome = record.outcome
            self.metrics.calls.labels(outcome, trunk_name or "-").inc()
            if outcome == Outcome.VERIFIED:
                self.metrics.verified.inc()
                self.metrics.call_to_verified.observe(max(0.0, committed_at - started_at))
            log.info(
                "call_decided",
                outcome=outcome,
                reason=record.reason,
                verification_id=record.verification_id,
                caller=record.caller_masked,
                absence=record.absence,
                answer_mode=mode,
                # From the INVITE at Asterisk to StasisStart read here (Asterisk's part),
                # and from there to the outcome durably stored (ours).
                stasis_ms=round((call.received_at - started_at) * 1000, 1),
                commit_ms=round((committed_at - call.received_at) * 1000, 1),
                **structlog_ctx,
            )
        except Exception:
            log.exception("call_failed", **structlog_ctx)
            outcome = Outcome.FAILED
        try:
            await self._release(call, outcome, mode, language)
        except Exception:
            log.exception("call_release_failed", **structlog_ctx)
        finally:
            self._calls.pop(call.channel_id, None)
            with contextlib.suppress(Exception):
                await self.store.finish_call(call.channel_id, time.time(), committed_at)

    async def _release(self, call: _Call, outcome: str, mode: str, language: str) -> None:
        """Tell the caller, then end the call, the way the DID's answer mode says."""
        ari = self.ari
        assert ari is not None
        cause = self.call_policy.cause(outcome)
        try:
            if mode == "reject":
                await ari.hangup(call.channel_id, cause)
                return
            if mode == "answer":
                await ari.answer(call.channel_id)
            else:  # early_media: 183 with the prompt, never a 200 OK
                await ari.progress(call.channel_id)
            await self._play(call, self.call_policy.prompt(outcome, language), language)
            await ari.hangup(call.channel_id, "normal" if mode == "answer" else cause)
        except AriError as exc:
            if exc.status != 404:  # 404: the caller already hung up
                raise

    async def _play(self, call: _Call, media: str, language: str) -> None:
        assert self.ari is not None
        playback_id = f"pb-{call.channel_id}"
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        call.playbacks[playback_id] = fut
        await self.ari.play(call.channel_id, media, playback_id, language)
        gone: asyncio.Future[Any] = asyncio.ensure_future(call.gone.wait())
        try:
            waiting: set[asyncio.Future[Any]] = {fut, gone}
            done, _ = await asyncio.wait(
                waiting,
                timeout=self.call_policy.calls.prompt_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if fut in done and fut.result() == "failed":
                log.error("prompt_failed", channel_id=call.channel_id, media=media)
        finally:
            gone.cancel()
            call.playbacks.pop(playback_id, None)
