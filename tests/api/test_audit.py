"""Audit: operators read every call (callers masked); a portal reads the calls that
tried its own verification, and nothing of another portal's."""

from __future__ import annotations

import dataclasses
import time

from ivr.verification.ports import CallRecord
from ivr.vocabulary import AnswerMode, Outcome
from tests.conftest import AUTH, Gateway

OPS = {"Authorization": "Bearer test-ops-token"}
B = {"Authorization": "Bearer test-token-portal-b"}


def _call(channel: str, did: str, **kw: object) -> CallRecord:
    now = time.time()
    base = CallRecord(
        channel, did, "carrier", "090****5678", "allowed", None, Outcome.NO_PENDING,
        "no_pending_verification", AnswerMode.EARLY_MEDIA, now, now,
    )  # fmt: skip
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


async def test_operators_list_calls_with_filters(api_gateway: Gateway) -> None:
    gw = api_gateway
    store = gw.parts.store
    await store.record_call(_call("c1", "+81355550001", outcome=Outcome.WITHHELD))
    await store.record_call(_call("c2", "+81355550001", trunk="other"))
    c = gw.client
    assert (await c.get("/admin/calls", headers=AUTH)).status == 401  # a portal token
    every = await (await c.get("/admin/calls", headers=OPS)).json()
    assert [x["call_id"] for x in every["calls"]] == ["c2", "c1"]
    assert every["calls"][0]["caller"] == "090****5678"
    withheld = await (await c.get("/admin/calls?outcome=withheld", headers=OPS)).json()
    assert [x["call_id"] for x in withheld["calls"]] == ["c1"]
    other = await (await c.get("/admin/calls?trunk=other&since=1577836800", headers=OPS)).json()
    assert [x["call_id"] for x in other["calls"]] == ["c2"]
    future = await (await c.get(f"/admin/calls?since={time.time() + 60}", headers=OPS)).json()
    assert future["calls"] == []
    bad = await c.get("/admin/calls?outcome=nope", headers=OPS)
    assert bad.status == 422 and (await bad.json())["error"]["field"] == "outcome"


async def test_a_portal_reads_its_own_verifications_attempts_only(api_gateway: Gateway) -> None:
    gw = api_gateway
    v = await gw.create("09012345678")
    did = v["dial_number"]["e164"]
    record, _ = await gw.parts.service.match_call(_call("c1", did), "+819012345678", "09012345678")
    assert record.outcome is Outcome.VERIFIED
    await gw.parts.store.record_call(
        _call("c2", did, caller_masked="080****1111")
    )  # another holder
    resp = await gw.client.get(f"/v1/verifications/{v['id']}/attempts", headers=AUTH)
    assert resp.status == 200
    attempts = (await resp.json())["attempts"]
    assert [(a["call_id"], a["outcome"], a["caller"]) for a in attempts] == [
        ("c1", "verified", "090****5678")
    ]
    other_portal = await gw.client.get(f"/v1/verifications/{v['id']}/attempts", headers=B)
    assert other_portal.status == 404


async def test_another_portals_verification_is_not_found(api_gateway: Gateway) -> None:
    v = await api_gateway.create("09012345678")
    c = api_gateway.client
    url = f"/v1/verifications/{v['id']}"
    for resp in (
        await c.get(url, headers=B),
        await c.get(url, params={"wait": "1"}, headers=B),
        await c.post(f"{url}/cancel", headers=B),
    ):
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    assert (await api_gateway.get(v["id"]))["status"] == "pending"  # untouched
    assert (await c.post(f"{url}/cancel", headers=AUTH)).status == 200
