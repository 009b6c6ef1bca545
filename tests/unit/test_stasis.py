"""Call handling without Asterisk: the router with a fake ARI, the call flow end to end
on an in-memory store. The real Asterisk is exercised in tests/integration."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog

import ivr.log
from ivr.asterisk.ari import AriError
from ivr.config import CallsSettings, VerificationSettings
from ivr.numbers import NumberPolicy
from ivr.stasis import CallFlow, CallPolicy, CallRouter
from ivr.store.sqlite import SqliteStore
from ivr.trunks import Did, Inventory, Trunk
from ivr.verification.service import END_BATCH, VerificationService
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
        """Deliver a StasisStart and wait until the call's task is done and its end is
        written."""
        self.ari.channels.add(event["channel"]["id"])
        self.ari.emit(event)
        for _ in range(200):
            await asyncio.sleep(0.005)
            if self.router.active_calls == 0:
                await self.service.flush_ends()
                return
        raise AssertionError("the call did not finish")


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    store = SqliteStore(":memory:")
    await store.open()
    yield Harness(store)
    await store.close()


async def test_a_verified_call_commits_then_hands_the_prompt_and_release_to_the_dialplan(
    harness: Harness,
) -> None:
    created = await harness.service.create("090-1234-5678", ttl=180)
    did = created.verification.dial_number
    mode = INVENTORY.dids[did][1].answer_mode
    with structlog.testing.capture_logs([ivr.log.merge_context]) as logs:
        await harness.call(stasis_start("c1", did))
    v = await harness.service.get(created.verification.id)
    assert v.status == "verified" and v.channel_id == "c1" and v.trunk == "carrier"
    expected = {
        AnswerMode.EARLY_MEDIA: [
            (
                "continue",
                "c1",
                {"context": "ivr-release", "extension": "early_media-ja-verified-17"},
            )
        ],
        AnswerMode.ANSWER: [
            ("continue", "c1", {"context": "ivr-release", "extension": "answer-en-verified-17"})
        ],
        AnswerMode.REJECT: [("hangup", "c1", {"reason": "busy"})],
    }[mode]
    assert harness.ari.requests == expected
    decided = next(e for e in logs if e["event"] == "call_decided")
    # Bound once per call through contextvars, not passed by hand.
    assert decided["channel_id"] == "c1" and decided["did"] == did
    assert decided["outcome"] == "verified"
    [record] = await harness.service.list_calls()
    assert record.outcome is Outcome.VERIFIED and record.ended_at is not None


@pytest.mark.parametrize(
    ("did", "caller", "trunk", "vars", "outcome", "extension"),
    [
        (EARLY, "anonymous", "carrier", {}, Outcome.WITHHELD, "early_media-ja-withheld-17"),
        # The DID's language; the dialplan ends an answered call with a BYE (cause 16).
        (ANSWER, "05012345678", "carrier", {}, Outcome.NOT_ELIGIBLE, "answer-en-not_eligible-17"),
        (REJECT, "09012345678", "carrier", {}, Outcome.NO_PENDING, None),
        (
            EARLY,
            "09012345678",
            "untrusted",
            {},
            Outcome.REJECTED_SOURCE,
            "early_media-ja-rejected_source-17",
        ),
        (
            EARLY,
            "09012345678",
            "carrier",
            {"SIP_PRIVACY": "id"},
            Outcome.WITHHELD,
            "early_media-ja-withheld-17",
        ),
    ],
)
async def test_outcomes_and_answer_modes(
    harness: Harness,
    did: str,
    caller: str,
    trunk: str,
    vars: dict[str, str],
    outcome: Outcome,
    extension: str | None,
) -> None:
    await harness.call(stasis_start("c2", did, caller, trunk, **vars))
    [record] = await harness.service.list_calls()
    assert record.outcome is outcome
    if extension is None:  # reject mode: a final response at once, no prompt
        assert harness.ari.requests == [("hangup", "c2", {"reason": "busy"})]
    else:
        assert harness.ari.requests == [
            ("continue", "c2", {"context": "ivr-release", "extension": extension})
        ]


async def test_a_caller_who_hung_up_first_is_not_an_error(harness: Harness) -> None:
    harness.ari.fail["continue"] = AriError(404, "POST", "/channels/c3/continue", "not found")
    with structlog.testing.capture_logs() as logs:
        await harness.call(stasis_start("c3", EARLY))
    assert not [e for e in logs if e["log_level"] == "error"]
    [record] = await harness.service.list_calls()
    assert record.ended_at is not None


async def test_a_store_failure_releases_the_call_with_the_failed_cause(harness: Harness) -> None:
    await harness.service.store.close()  # every store call now fails
    await harness.call(stasis_start("c4", EARLY))
    # The failed prompt, released with the failed cause (congestion: Q.850 34).
    assert harness.ari.requests == [
        ("continue", "c4", {"context": "ivr-release", "extension": "early_media-ja-failed-34"})
    ]
    await harness.service.store.open()


async def test_on_connect_releases_orphans_only(harness: Harness) -> None:
    await harness.call(stasis_start("mine", EARLY))  # handed to the dialplan, done
    harness.ari.channels.update({"orphan"})  # in the app, no task for it here
    await harness.ari.reconnect()
    assert harness.ari.requests[-1] == ("hangup", "orphan", {"reason": "congestion"})
    assert [c for m, c, _ in harness.ari.requests if m == "hangup"] == ["orphan"]


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"type": "SomethingNew", "channel": {"id": "1.1"}},
        {"type": "StasisStart", "channel": None},
        {"type": "StasisEnd"},
        {"type": "StasisEnd", "channel": None},
        {"type": "PlaybackFinished", "playback": {"id": "x", "target_uri": "channel:9.9"}},
        {"type": "ChannelDestroyed", "channel": {"id": "nope"}},
        {"type": "ApplicationReplaced", "application": "phone-auth"},
    ],
)
async def test_unknown_and_odd_events_are_ignored(harness: Harness, event: dict[str, Any]) -> None:
    harness.router.on_event(event)
    assert harness.router.active_calls == 0


async def test_call_ends_are_written_together_in_one_store_write(harness: Harness) -> None:
    writes: list[list[str]] = []
    real = harness.service.store.finish_calls

    async def spy(ends: Any) -> None:
        await real(ends)  # committed (with the next write, or on its own a moment later)
        writes.append([e.channel_id for e in ends])

    harness.service.store.finish_calls = spy  # type: ignore[method-assign]
    for channel in ("e1", "e2", "e3"):
        harness.ari.channels.add(channel)
        harness.ari.emit(stasis_start(channel, REJECT))
    for _ in range(100):
        await asyncio.sleep(END_BATCH)
        if writes:
            break
    assert writes == [["e1", "e2", "e3"]]
    calls = await harness.service.list_calls()
    assert len(calls) == 3 and all(c.ended_at is not None for c in calls)


async def test_identity_passed_as_stasis_arguments_decides_the_call(harness: Harness) -> None:
    """The minimal dialplan's form (ivr.stasis.handoff): a second Privacy header of
    ``id`` withholds, though the first says none."""
    import base64

    from ivr.stasis import handoff

    def b64(text: str) -> str:
        return base64.b64encode(b"x" + text.encode()).decode()

    headers = ["none", "id", "", "", "<sip:0398765432@carrier>", "<sip:09012345678@carrier>"]
    event = stasis_start("c9", EARLY)
    event["channel"]["channelvars"] = {}
    event["args"] += [handoff.MARKER, "allowed", *map(b64, headers), handoff.END]
    await harness.call(event)
    [record] = await harness.service.list_calls()
    assert record.outcome is Outcome.WITHHELD and record.absence == "user_withheld"
