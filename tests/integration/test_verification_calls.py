"""Real calls: sipp -> the local Asterisk -> ARI -> the gateway -> the store and the API."""

from __future__ import annotations

import asyncio
import time

from tests.conftest import AUTH, Call, Gateway, MakeGateway

CALLER = "09012345678"


async def test_call_reaches_the_stasis_app_with_caller_and_did(
    gateway: Gateway, call: Call
) -> None:
    result = await call("0355550002", caller="0312340000")
    assert result.final is not None  # the caller saw a final response or the call was answered
    record = await gateway.call_for("+81355550002")
    # What the app saw: the DID the caller dialled, the trunk, the caller number.
    assert record.did == "+81355550002"
    assert record.trunk == "carrier"
    assert record.caller_masked == "031***0000"
    assert record.outcome == "no_pending"
    assert record.channel_id
    assert record.ended_at is not None and record.ended_at >= record.started_at
    # started_at is the channel's creation (the INVITE reaching Asterisk), before commit.
    assert record.committed_at is not None
    assert 0 < record.committed_at - record.started_at < 1.0


async def test_right_number_on_right_did_verifies_and_wakes_long_poll(
    gateway: Gateway, call: Call
) -> None:
    v = await gateway.create("090-1234-5678", reference="login-42")
    assert v["status"] == "pending"
    did = v["dial_number"]["national"].replace("-", "")
    poll = asyncio.create_task(gateway.get(v["id"], wait=20))
    await asyncio.sleep(0.2)
    assert not poll.done()
    result = await call(did, caller=CALLER)
    done = await poll
    assert done["status"] == "verified"
    assert done["verified"]["caller_number"] == CALLER
    assert done["verified"]["trunk"] == "carrier"
    assert done["verified"]["call_id"]
    assert done["reference"] == "login-42"
    assert result.answered and result.bye_received and result.rtp_packets > 10
    record = await gateway.call_for(v["dial_number"]["e164"])
    assert (record.outcome, record.verification_id) == ("verified", v["id"])


async def test_long_poll_returns_within_a_second_of_the_call(gateway: Gateway, call: Call) -> None:
    v = await gateway.create("09011112222")
    did = v["dial_number"]["e164"]

    async def poll() -> float:
        got = await gateway.get(v["id"], wait=20)
        assert got["status"] == "verified"
        return time.time()

    poll_task = asyncio.create_task(poll())
    await asyncio.sleep(0.1)
    result = await call(did, caller="09011112222")
    woke = await poll_task
    assert result.invite_at is not None
    assert 0 < woke - result.invite_at < 1.0
    # ... and before the caller's call was over.
    assert result.bye_at is not None and woke < result.bye_at + 0.05


async def test_withheld_call_leaves_it_pending(gateway: Gateway, call: Call) -> None:
    v = await gateway.create(CALLER)
    await call(v["dial_number"]["e164"], anonymous=True)
    assert (await gateway.get(v["id"]))["status"] == "pending"
    record = await gateway.call_for(v["dial_number"]["e164"])
    assert (record.outcome, record.reason) == ("withheld", "user_withheld")
    assert record.verification_id is None


async def test_wrong_number_leaves_it_pending(gateway: Gateway, call: Call) -> None:
    v = await gateway.create(CALLER)
    await call(v["dial_number"]["e164"], caller="09087654321")
    assert (await gateway.get(v["id"]))["status"] == "pending"
    record = await gateway.call_for(v["dial_number"]["e164"])
    assert record.outcome == "no_pending"


async def test_call_to_another_did_leaves_it_pending(gateway: Gateway, call: Call) -> None:
    v = await gateway.create(CALLER)
    other = next(d for d in gateway.parts.service.pool if d != v["dial_number"]["e164"])
    await call(other, caller=CALLER)
    assert (await gateway.get(v["id"]))["status"] == "pending"
    assert (await gateway.call_for(other)).outcome == "no_pending"


async def test_call_after_expiry(gateway: Gateway, call: Call) -> None:
    v = await gateway.create(CALLER, ttl_seconds=1)
    expired = await gateway.get(v["id"], wait=5)  # nobody calls: the expiry task ends it
    assert expired["status"] == "expired"
    await call(v["dial_number"]["e164"], caller=CALLER)
    assert (await gateway.get(v["id"]))["status"] == "expired"
    assert (await gateway.call_for(v["dial_number"]["e164"])).outcome == "no_pending"


async def test_call_after_cancel(gateway: Gateway, call: Call) -> None:
    v = await gateway.create(CALLER)
    resp = await gateway.client.post(f"/v1/verifications/{v['id']}/cancel", headers=AUTH)
    assert resp.status == 200
    await call(v["dial_number"]["e164"], caller=CALLER)
    got = await gateway.get(v["id"])
    assert (got["status"], got["cancel_reason"]) == ("cancelled", "cancelled")
    assert (await gateway.call_for(v["dial_number"]["e164"])).outcome == "no_pending"


async def test_call_before_any_verification(gateway: Gateway, call: Call) -> None:
    result = await call("0355550003", caller=CALLER)
    assert result.answered and result.bye_received
    record = await gateway.call_for("+81355550003")
    assert (record.outcome, record.reason) == ("no_pending", "no_pending_verification")


async def test_second_verification_supersedes_on_one_did(
    pbx: object, make_gateway: MakeGateway, call: Call
) -> None:
    gw = await make_gateway(dids=["0355550001"], short=True)
    first = await gw.create(CALLER)
    second = await gw.create("+81 90 1234 5678")
    assert first["dial_number"] == second["dial_number"]
    old = await gw.get(first["id"])
    assert (old["status"], old["cancel_reason"]) == ("cancelled", "superseded")
    await call("0355550001", caller=CALLER)
    assert (await gw.get(second["id"]))["status"] == "verified"
    assert (await gw.get(first["id"]))["status"] == "cancelled"


async def test_pool_gives_each_pending_session_its_own_did(gateway: Gateway) -> None:
    made = [await gateway.create(CALLER) for _ in range(3)]
    assert len({m["dial_number"]["e164"] for m in made}) == 3
    fourth = await gateway.create(CALLER)  # every DID is held: the oldest is superseded
    oldest = await gateway.get(made[0]["id"])
    assert oldest["status"] == "cancelled" and oldest["cancel_reason"] == "superseded"
    assert fourth["dial_number"] == made[0]["dial_number"]


async def test_every_common_way_of_writing_the_number_matches(gateway: Gateway, call: Call) -> None:
    portal_forms = ["090-{a}-{b}", "090{a}{b}", "+81 90 {a} {b}"]
    carrier_forms = ["090{a}{b}", "+8190{a}{b}", "8190{a}{b}"]
    cases = []
    for i, portal in enumerate(portal_forms):
        for j, carrier in enumerate(carrier_forms):
            a, b = "55" + str(i) + str(j), "0000"
            v = await gateway.create(portal.format(a=a, b=b))
            cases.append((v, carrier.format(a=a, b=b)))
    await asyncio.gather(*(call(v["dial_number"]["e164"], caller=c) for v, c in cases))
    for v, carrier in cases:
        got = await gateway.get(v["id"])
        assert got["status"] == "verified", (v["phone_number"], carrier)
        assert got["verified"]["caller_number"] == carrier


async def test_trusted_trunk_asserts_caller_through_pai(gateway: Gateway, call: Call) -> None:
    v = await gateway.create(CALLER)
    # The From says one thing, the carrier's P-Asserted-Identity another: PAI wins.
    await call(v["dial_number"]["e164"], caller="0312345678", pai="tel:+819012345678")
    got = await gateway.get(v["id"])
    assert got["status"] == "verified"
    assert got["verified"]["caller_number"] == "+819012345678"


async def test_untrusted_trunk_cannot_verify(gateway: Gateway, call: Call) -> None:
    v = await gateway.create(CALLER)
    await call("0355550099", caller=CALLER, source_ip="127.0.0.2")
    assert (await gateway.get(v["id"]))["status"] == "pending"
    record = await gateway.call_for("+81355550099")
    assert (record.outcome, record.trunk) == ("rejected_source", "peer")


async def test_not_eligible_caller(gateway: Gateway, call: Call) -> None:
    await call("0355550002", caller="05012345678")
    await call("0355550003", caller="0120123456")
    calls = {c.did: c for c in await gateway.calls()}
    assert (calls["+81355550002"].outcome, calls["+81355550002"].reason) == ("not_eligible", "voip")
    assert (calls["+81355550003"].outcome, calls["+81355550003"].reason) == (
        "not_eligible",
        "toll_free",
    )


async def test_without_a_gateway_the_caller_is_released_at_once(pbx: object, call: Call) -> None:
    # No gateway holds the Stasis app: the dialplan's guard releases the call (503, cause
    # 34) instead of leaving the caller ringing.
    result = await call("0355550001", caller=CALLER)
    assert result.final == 503 and not result.answered
    assert result.invite_at is not None
    assert result.responses[-1].at - result.invite_at < 1.0


async def test_a_caller_in_a_loop_is_released_at_once(
    pbx: object, make_gateway: MakeGateway, call: Call
) -> None:
    gw = await make_gateway(
        dids=["0355550001"], short=True, limits={"calls_per_caller_per_minute": 2}
    )
    for _ in range(2):
        result = await call("0355550001", caller="09077778888")
        assert result.answered  # answer mode: the prompt, as usual
    looping = await call("0355550001", caller="09077778888")
    assert not looping.answered and looping.final == 486  # released at once, no prompt
    assert looping.audio_seconds == 0
    records = [c for c in await gw.calls() if c.caller_masked.endswith("8888")]
    assert len(records) == 2  # no store work for the refused call
    other = await call("0355550001", caller="09012340000")
    assert other.answered  # another caller is not affected
