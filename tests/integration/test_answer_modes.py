"""Answer modes, prompts and no-number cases, as the caller sees them through sipp."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from ivr import prompts
from ivr.devtools.sipcall import CallResult
from tests.conftest import Call, Gateway, MakeGateway

CALLER = "09012345678"
PROMPTS = prompts.load(prompts.DEFAULT_DIR)
EARLY, REJECT, ANSWER, EARLY_EN = "0355550011", "0355550012", "0355550001", "0355550013"


def prompt_seconds(outcome: str, language: str = "ja") -> float:
    return PROMPTS[(outcome, language)].seconds


def final_at(result: CallResult) -> float:
    return next(r.at for r in result.responses if r.status >= 200)


async def verify_with_poll(
    gw: Gateway, call: Call, did: str, **spec: Any
) -> tuple[CallResult, dict[str, Any], float]:
    """Create, long-poll, call; returns the call, the polled verification, poll wake time."""
    v = await gw.create(CALLER)
    assert v["dial_number"]["national"].replace("-", "") == did

    async def poll() -> tuple[dict[str, Any], float]:
        got = await gw.get(v["id"], wait=30)
        return got, time.time()

    polling = asyncio.create_task(poll())
    await asyncio.sleep(0.1)
    result = await call(did, caller=CALLER, **spec)
    got, woke = await polling
    return result, got, woke


def assert_real_time(result: CallResult, length: float) -> None:
    """The prompt arrives at the pace it was recorded, neither in bursts a phone's jitter
    buffer would drop nor slowed down (Asterisk paces it without a timing module)."""
    assert result.rtp_first_at is not None and result.rtp_last_at is not None
    spread = result.rtp_last_at - result.rtp_first_at
    assert abs(spread - length) <= 0.1 * length, (spread, length)


async def test_early_media_never_answers(
    pbx: object, make_gateway: MakeGateway, call: Call
) -> None:
    gw = await make_gateway(dids=[EARLY])
    result, got, woke = await verify_with_poll(gw, call, EARLY)
    assert got["status"] == "verified"
    assert 200 not in result.statuses
    early = [r for r in result.responses if r.status == 183]
    assert early and early[0].has_sdp
    assert result.final == 486  # busy: the default release cause
    assert result.rtp_packets > 0
    length = prompt_seconds("verified")
    assert abs(result.audio_seconds - length) <= 0.2 * length
    assert_real_time(result, length)
    assert result.invite_at is not None
    assert final_at(result) - result.invite_at >= 0.8 * length
    # Committed before the prompt: the long poll returned while the prompt was playing.
    assert woke < final_at(result) - 0.5 * length


async def test_reject_answers_at_once_with_the_configured_cause(
    pbx: object, make_gateway: MakeGateway, call: Call
) -> None:
    gw = await make_gateway(dids=[REJECT], calls={"cause_verified": "normal"})
    result, got, _ = await verify_with_poll(gw, call, REJECT)
    assert got["status"] == "verified"
    assert result.final == 603  # normal -> 603 Decline, as configured for "verified"
    assert 200 not in result.statuses and 183 not in result.statuses
    assert result.invite_at is not None
    assert final_at(result) - result.invite_at < 0.1
    assert result.rtp_packets == 0
    # Any other outcome keeps the default, busy (486).
    other = await call(REJECT, caller="09000000000")
    assert other.final == 486 and other.invite_at is not None
    assert final_at(other) - other.invite_at < 0.1


async def test_answer_mode_answers_plays_and_hangs_up(
    pbx: object, make_gateway: MakeGateway, call: Call
) -> None:
    gw = await make_gateway(dids=[ANSWER])
    result, got, woke = await verify_with_poll(gw, call, ANSWER)
    assert got["status"] == "verified"
    assert 200 in result.statuses and result.bye_received
    length = prompt_seconds("verified")
    assert abs(result.audio_seconds - length) <= 0.2 * length
    assert_real_time(result, length)
    assert result.bye_at is not None
    assert woke < result.bye_at - 0.5 * length


@pytest.mark.parametrize(
    ("spec", "outcome"),
    [
        ({"caller": "09087654321"}, "no_pending"),
        ({"anonymous": True}, "withheld"),
        ({"caller": "05012345678"}, "not_eligible"),
    ],
)
async def test_the_caller_hears_the_prompt_for_the_outcome(
    pbx: object, make_gateway: MakeGateway, call: Call, spec: dict[str, Any], outcome: str
) -> None:
    gw = await make_gateway(dids=[EARLY])
    result = await call(EARLY, **spec)
    record = await gw.call_for("+81355550011")
    assert record.outcome == outcome
    length = prompt_seconds(outcome)
    assert abs(result.audio_seconds - length) <= 0.2 * length, (result.audio_seconds, length)


async def test_english_prompt_on_an_english_did(
    pbx: object, make_gateway: MakeGateway, call: Call
) -> None:
    gw = await make_gateway(dids=[EARLY_EN])
    await gw.create(CALLER)
    result = await call(EARLY_EN, caller=CALLER)
    length = prompt_seconds("verified", "en")
    assert abs(result.audio_seconds - length) <= 0.2 * length
    assert abs(result.audio_seconds - prompt_seconds("verified", "ja")) > 0.1 * length


NO_NUMBER = [
    ({"anonymous": True}, "user_withheld"),  # 非通知: anonymous From
    ({"caller": CALLER, "privacy": "id"}, "user_withheld"),  # Privacy: id, no PAI
    ({"caller": "0312345678", "pai": f"tel:+81{CALLER[1:]}", "privacy": "id"}, "user_withheld"),
    ({"caller": CALLER, "rpid": f"<sip:{CALLER}@127.0.0.1>;privacy=full"}, "user_withheld"),
    ({"anonymous": True, "display": "Coin line/payphone"}, "payphone"),  # 公衆電話
    ({"anonymous": True, "display": "Unavailable"}, "unavailable"),  # 表示圏外
    ({"caller": "unknown-caller"}, "unknown"),
    # Identity edge cases (docs/identity.md), each of which verified before:
    ({"caller": CALLER, "headers": ("Privacy: none", "Privacy: id")}, "user_withheld"),
    ({"caller": f"184{CALLER}"}, "user_withheld"),  # the withhold prefix
    ({"caller": CALLER, "rpid": f"<sip:{CALLER}@127.0.0.1>;privacy=uri"}, "user_withheld"),
    ({"caller": "anonymous", "pai": f"tel:+81{CALLER[1:]}"}, "user_withheld"),
    ({"caller": f"{CALLER}%00999"}, "unknown"),  # Asterisk cuts the number at the NUL
    ({"caller": f"{CALLER[:7]}%00{CALLER[7:]}"}, "unknown"),
]


@pytest.mark.parametrize(("spec", "reason"), NO_NUMBER)
async def test_no_number_cases(
    pbx: object, make_gateway: MakeGateway, call: Call, spec: dict[str, Any], reason: str
) -> None:
    gw = await make_gateway(dids=[REJECT])
    v = await gw.create(CALLER)
    result = await call(REJECT, **spec)
    assert result.final == 486
    record = await gw.call_for("+81355550012")
    assert (record.outcome, record.reason, record.absence) == ("withheld", reason, reason)
    assert (await gw.get(v["id"]))["status"] == "pending"


async def test_number_asserted_by_an_untrusted_source_is_rejected(
    pbx: object, make_gateway: MakeGateway, call: Call
) -> None:
    gw = await make_gateway(dids=[ANSWER, "0355550099"], short=True)
    v = await gw.create(CALLER)
    await call("0355550099", caller=CALLER, pai=f"tel:+81{CALLER[1:]}", source_ip="127.0.0.2")
    record = await gw.call_for("+81355550099")
    assert (record.outcome, record.trunk) == ("rejected_source", "peer")
    assert (await gw.get(v["id"]))["status"] == "pending"
