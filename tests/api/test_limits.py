"""Rate limits through the API: 429 with Retry-After and the JSON error, per portal,
per phone number, counted in /metrics; other portals unaffected."""

from __future__ import annotations

import asyncio

from tests.conftest import AUTH, MakeGateway

B = {"Authorization": "Bearer test-token-portal-b"}
URL = "/v1/verifications"


async def test_creates_per_portal_and_retry_after_honoured(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(connect=False, fake=True, limits={"creates_per_second": 1})
    c = gw.client
    for i in range(2):  # the burst: twice the rate
        assert (
            await c.post(URL, json={"phone_number": f"0901111000{i}"}, headers=AUTH)
        ).status == 201
    limited = await c.post(URL, json={"phone_number": "09011110009"}, headers=AUTH)
    assert limited.status == 429
    body = await limited.json()
    assert body["error"]["code"] == "rate_limited"
    assert body["error"]["limit"] == "creates_per_second"
    retry_after = int(limited.headers["Retry-After"])
    assert 1 <= retry_after <= 2
    other = await c.post(URL, json={"phone_number": "09011110009"}, headers=B)
    assert other.status == 201  # another portal is not affected
    await asyncio.sleep(retry_after)
    again = await c.post(URL, json={"phone_number": "09011110009"}, headers=AUTH)
    assert again.status == 201  # honouring Retry-After is enough
    metrics = await (await c.get("/metrics")).text()
    assert 'ivr_rate_limited_total{limit="creates_per_second"} 1.0' in metrics


async def test_creates_per_phone_number(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(connect=False, fake=True, limits={"creates_per_number_per_hour": 2})
    c = gw.client
    for headers in (AUTH, B):
        assert (
            await c.post(URL, json={"phone_number": "090-2222-3333"}, headers=headers)
        ).status == 201
    limited = await c.post(URL, json={"phone_number": "09022223333"}, headers=AUTH)
    assert limited.status == 429
    assert (await limited.json())["error"]["limit"] == "creates_per_number_per_hour"
    assert int(limited.headers["Retry-After"]) > 60  # a token comes back every 30 min
    ok = await c.post(URL, json={"phone_number": "09022224444"}, headers=AUTH)
    assert ok.status == 201


async def test_number_checks_per_portal(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(connect=False, fake=True, limits={"checks_per_second": 1})
    check = "/v1/phone-numbers/check"
    statuses = [
        (await gw.client.post(check, json={"phone_number": "0312345678"}, headers=AUTH)).status
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    other = await gw.client.post(check, json={"phone_number": "0312345678"}, headers=B)
    assert other.status == 200


async def test_did_pool_headroom_in_metrics(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(connect=False, fake=True)
    pool = len(gw.parts.service.pool)
    await gw.create("09012345678")
    text = await (await gw.client.get("/metrics")).text()
    assert f"ivr_did_pool_headroom {float(pool - 1)}" in text
