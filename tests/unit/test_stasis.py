"""Call handling without Asterisk: the router with a fake ARI, the call flow end to end
on an in-memory store. The real Asterisk is exercised in tests/integration."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog

from ivr.asterisk.ari import AriError
from ivr.config import CallsSettings, VerificationSettings
from ivr.numbers import NumberPolicy
from ivr.stasis import CallFlow, CallPolicy, CallRouter
from ivr.store.sqlite import SqliteStore
from ivr.trunks import Did, Inventory, Trunk
from ivr.verification.service import VerificationService
from ivr.vocabulary import AnswerMode, Outcome
from tests.fakes import FakeAri

EARLY, ANSWER, REJECT = "+81355550001", "+81355550002", "+81355550003"
INVENTORY = Inventory(
    (
        Trunk(
            "carrier",
            ("127.0.0.1",),
            trusted=True,
            dids=(
                Did(EARLY, AnswerMode.EARLY_MEDIA),
                Did(ANSWER, AnswerMode.ANSWER, "en"),
                Did(REJECT, AnswerMode.REJECT),
            ),
        ),
        Trunk("untrusted", ("127.0.0.2",), trusted=False),
    )
)
POLICY = CallPolicy(
    media={(str(o), lang): f"sound:test/{lang}/{o}" for o in Outcome for lang in ("ja", "en")},
    durations={},
    calls=CallsSettings(release_cause="busy", cause_failed="congestion"),
)


def stasis_start(
    channel_id: str, did: str, caller: str = "09012345678", trunk: str = "carrier", **vars: str
) -> dict[str, Any]:
    return {
        "type": "StasisStart",
        "args": [did, trunk],
        "timestamp": "2026-11-27T10:00:00.100+0000",
        "channel": {
            "id": channel_id,
            "creationtime": "2026-11-27T10:00:00.050+0000",
            "caller": {"number": caller, "name": ""},
            "channelvars": {"CID_NUMPRES": "allowed", **vars},
        },
    }


class Harness:
    def __init__(self, store: SqliteStore) -> None:
        self.ari = FakeAri()
        self.service = VerificationService(
            store, [EARLY, ANSWER, REJECT], VerificationSettings(), NumberPolicy()
        )
        self.flow = CallFlow(self.ari, self.service, INVENTORY, NumberPolicy(), POLICY)
        self.router = CallRouter(self.ari, self.flow)

    async def call(self, event: dict[str, Any]) -> None:
        """Deliver a StasisStart and wait until the call's task is done."""
        self.ari.channels.add(event["channel"]["id"])
        self.ari.emit(event)
        for _ in range(200):
            await asyncio.sleep(0.005)
            if self.router.active_calls == 0:
                return
        raise AssertionError("the call did not finish")


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    store = SqliteStore(":memory:")
    await store.open()
    yield Harness(store)
    await store.close()


async def test_a_verified_call_commits_then_plays_early_media_then_releases(
    harness: Harness,
) -> None:
    created = await harness.service.create("090-1234-5678", ttl=180)
    did = created.verification.dial_number
    mode = INVENTORY.dids[did][1].answer_mode
    with structlog.testing.capture_logs([structlog.contextvars.merge_contextvars]) as logs:
        await harness.call(stasis_start("c1", did))
    v = await harness.service.get(created.verification.id)
    assert v.status == "verified" and v.channel_id == "c1" and v.trunk == "carrier"
    expected = {
        AnswerMode.EARLY_MEDIA: ["progress", "play", "hangup"],
        AnswerMode.ANSWER: ["answer", "play", "hangup"],
        AnswerMode.REJECT: ["hangup"],
    }[mode]
    assert harness.ari.methods("c1") == expected
    decided = next(e for e in logs if e["event"] == "call_decided")
    # Bound once per call through contextvars, not passed by hand.
    assert decided["channel_id"] == "c1" and decided["did"] == did
    assert decided["outcome"] == "verified"
    [record] = await harness.service.list_calls()
    assert record.outcome is Outcome.VERIFIED and record.ended_at is not None


PROMPTED = ["progress", "play", "hangup"]


@pytest.mark.parametrize(
    ("did", "caller", "trunk", "vars", "outcome", "requests"),
    [
        (EARLY, "anonymous", "carrier", {}, Outcome.WITHHELD, PROMPTED),
        (ANSWER, "05012345678", "carrier", {}, Outcome.NOT_ELIGIBLE, ["answer", "play", "hangup"]),
        (REJECT, "09012345678", "carrier", {}, Outcome.NO_PENDING, ["hangup"]),
        (EARLY, "09012345678", "untrusted", {}, Outcome.REJECTED_SOURCE, PROMPTED),
        (EARLY, "09012345678", "carrier", {"SIP_PRIVACY": "id"}, Outcome.WITHHELD, PROMPTED),
    ],
)
async def test_outcomes_and_answer_modes(
    harness: Harness,
    did: str,
    caller: str,
    trunk: str,
    vars: dict[str, str],
    outcome: Outcome,
    requests: list[str],
) -> None:
    await harness.call(stasis_start("c2", did, caller, trunk, **vars))
    assert harness.ari.methods("c2") == requests
    [record] = await harness.service.list_calls()
    assert record.outcome is outcome
    _, _, params = harness.ari.requests[-1]
    if did == ANSWER:
        assert params["reason"] == "normal"  # answered calls end with a BYE
        play = next(p for m, _, p in harness.ari.requests if m == "play")
        assert play["lang"] == "en" and play["media"].endswith(f"/en/{outcome}")
    else:
        assert params["reason"] == "busy"


async def test_a_caller_who_hung_up_first_is_not_an_error(harness: Harness) -> None:
    harness.ari.fail["progress"] = AriError(404, "POST", "/channels/c3/progress", "not found")
    with structlog.testing.capture_logs() as logs:
        await harness.call(stasis_start("c3", EARLY))
    assert not [e for e in logs if e["log_level"] == "error"]
    [record] = await harness.service.list_calls()
    assert record.ended_at is not None


async def test_a_store_failure_releases_the_call_with_the_failed_cause(harness: Harness) -> None:
    await harness.service.store.close()  # every store call now fails
    await harness.call(stasis_start("c4", EARLY))
    assert harness.ari.methods("c4") == ["progress", "play", "hangup"]
    assert harness.ari.requests[-1][2]["reason"] == "congestion"
    assert harness.ari.requests[1][2]["media"].endswith("/ja/failed")
    await harness.service.store.open()


async def test_on_connect_releases_orphans_and_ends_calls_gone_meanwhile(
    harness: Harness,
) -> None:
    harness.ari.finish_playbacks = False  # the call waits in its prompt
    harness.ari.channels.update({"live", "orphan"})
    harness.ari.emit(stasis_start("live", EARLY))
    await asyncio.sleep(0.05)
    assert harness.router.active_calls == 1
    harness.ari.channels = {"orphan"}  # "live" ended while we were disconnected
    await harness.ari.reconnect()
    assert ("hangup", "orphan", {"reason": "congestion"}) in harness.ari.requests
    for _ in range(100):
        await asyncio.sleep(0.01)
        if harness.router.active_calls == 0:
            break
    assert harness.router.active_calls == 0


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"type": "SomethingNew", "channel": {"id": "1.1"}},
        {"type": "StasisStart", "channel": None},
        {"type": "StasisEnd"},
        {"type": "StasisEnd", "channel": None},
        {"type": "PlaybackFinished", "playback": {"id": "x", "target_uri": "channel:9.9"}},
        {"type": "PlaybackFinished"},
        {"type": "ChannelDestroyed", "channel": {"id": "nope"}},
        {"type": "ApplicationReplaced", "application": "phone-auth"},
    ],
)
async def test_unknown_and_odd_events_are_ignored(harness: Harness, event: dict[str, Any]) -> None:
    harness.router.on_event(event)
    assert harness.router.active_calls == 0
