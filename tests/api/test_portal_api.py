"""The portal API contract: shapes, errors, idempotency. No Asterisk needed here."""

from __future__ import annotations

import io
from typing import Any

import pytest

from tests.conftest import AUTH, Gateway

URL = "/v1/verifications"


async def count_verifications(gw: Gateway) -> int:
    store: Any = gw.parts.store
    return int(
        await store._run(
            lambda: store.db.execute("SELECT count(*) FROM verifications").fetchone()[0]
        )
    )


async def test_create_shape(api_gateway: Gateway) -> None:
    resp = await api_gateway.client.post(
        URL, json={"phone_number": "090-1234-5678", "reference": "r-1"}, headers=AUTH
    )
    assert resp.status == 201
    body = await resp.json()
    assert body["status"] == "pending"
    assert body["phone_number"] == "+819012345678"
    assert body["dial_number"]["e164"].startswith("+81")
    assert body["dial_number"]["national"].startswith("03-")
    assert body["reference"] == "r-1"
    assert body["id"].startswith("vrf_")
    assert resp.headers["Location"] == f"{URL}/{body['id']}"


async def test_idempotency_key(api_gateway: Gateway) -> None:
    c = api_gateway.client
    headers = {**AUTH, "Idempotency-Key": "login-777"}
    first = await c.post(URL, json={"phone_number": "09012345678"}, headers=headers)
    again = await c.post(URL, json={"phone_number": "09012345678"}, headers=headers)
    assert first.status == again.status == 201
    assert (await first.json())["id"] == (await again.json())["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = await c.post(URL, json={"phone_number": "08012345678"}, headers=headers)
    assert other.status == 422
    assert (await other.json())["error"]["code"] == "idempotency_key_reused"
    # Another client's same key is its own.
    other_client = {"Authorization": "Bearer test-token-portal-b", "Idempotency-Key": "login-777"}
    third = await c.post(URL, json={"phone_number": "09012345678"}, headers=other_client)
    assert third.status == 201 and (await third.json())["id"] != (await first.json())["id"]
    assert await count_verifications(api_gateway) == 2


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        (
            {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
            "invalid_json",
        ),
        ({"data": b"[1, 2]", "headers": {"Content-Type": "application/json"}}, 400, "invalid_json"),
        (
            {"data": b"\xff\xfe", "headers": {"Content-Type": "application/json"}},
            400,
            "invalid_json",
        ),
        ({"json": {"phone_number": "09012345678", "colour": "blue"}}, 422, "invalid_request"),
        ({"json": {}}, 422, "invalid_request"),
        ({"json": {"phone_number": 9012345678}}, 422, "invalid_request"),
        ({"json": {"phone_number": "09012345678", "ttl_seconds": 0}}, 422, "invalid_request"),
        ({"json": {"phone_number": "09012345678", "ttl_seconds": 100000}}, 422, "invalid_request"),
        ({"json": {"phone_number": "09012345678", "ttl_seconds": "60"}}, 422, "invalid_request"),
        ({"json": {"phone_number": "09012345678", "ttl_seconds": True}}, 422, "invalid_request"),
        ({"json": {"phone_number": "09012345678", "reference": "x" * 300}}, 422, "invalid_request"),
        (
            {"json": {"phone_number": "09012345678", "callback_url": "ftp://portal/x"}},
            422,
            "invalid_request",
        ),
        ({"json": {"phone_number": "05012345678"}}, 422, "number_not_eligible"),
        (
            {"data": b"phone_number=0901", "headers": {"Content-Type": "text/plain"}},
            415,
            "unsupported_media_type",
        ),
        (
            {
                "data": io.BytesIO(b"{" + b" " * (10 * 1024 * 1024) + b"}"),
                "headers": {"Content-Type": "application/json"},
            },
            413,
            "payload_too_large",
        ),
    ],
)
async def test_bad_create_requests(
    api_gateway: Gateway, kwargs: dict[str, Any], status: int, code: str
) -> None:
    headers = {**AUTH, **kwargs.pop("headers", {})}
    resp = await api_gateway.client.post(URL, headers=headers, **kwargs)
    assert resp.status == status
    body = await resp.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert await count_verifications(api_gateway) == 0


async def test_not_eligible_says_why(api_gateway: Gateway) -> None:
    resp = await api_gateway.client.post(URL, json={"phone_number": "0570-012-345"}, headers=AUTH)
    err = (await resp.json())["error"]
    assert (resp.status, err["code"], err["reason"]) == (422, "number_not_eligible", "navi_dial")
    assert "ナビダイヤル" in err["messages"]["ja"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-here"},
        {"Authorization": "Basic dGVzdA=="},
        {"Authorization": "Bearer"},
    ],
)
async def test_auth_required(api_gateway: Gateway, headers: dict[str, str]) -> None:
    c = api_gateway.client
    for method, path in [
        ("POST", URL),
        ("GET", f"{URL}/vrf_x"),
        ("POST", f"{URL}/vrf_x/cancel"),
        ("POST", "/v1/phone-numbers/check"),
    ]:
        resp = await c.request(method, path, json={"phone_number": "09012345678"}, headers=headers)
        assert resp.status == 401, (method, path)
        assert (await resp.json())["error"]["code"] == "unauthorized"
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert await count_verifications(api_gateway) == 0


async def test_unknown_id(api_gateway: Gateway) -> None:
    c = api_gateway.client
    for resp in [
        await c.get(f"{URL}/vrf_nope", headers=AUTH),
        await c.get(f"{URL}/vrf_nope?wait=1", headers=AUTH),
        await c.post(f"{URL}/vrf_nope/cancel", headers=AUTH),
    ]:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "not_found"


async def test_bad_wait(api_gateway: Gateway) -> None:
    v = await api_gateway.create("09012345678")
    for wait in ("abc", "-1", "nan", "inf"):
        resp = await api_gateway.client.get(f"{URL}/{v['id']}?wait={wait}", headers=AUTH)
        assert resp.status == 422, wait


async def test_long_poll_times_out_pending(api_gateway: Gateway) -> None:
    v = await api_gateway.create("09012345678")
    got = await api_gateway.get(v["id"], wait=0.3)
    assert got["status"] == "pending"


async def test_long_poll_woken_by_cancel(api_gateway: Gateway) -> None:
    import asyncio

    v = await api_gateway.create("09012345678")
    poll = asyncio.create_task(api_gateway.get(v["id"], wait=20))
    await asyncio.sleep(0.1)
    resp = await api_gateway.client.post(f"{URL}/{v['id']}/cancel", headers=AUTH)
    assert resp.status == 200
    got = await asyncio.wait_for(poll, 2)
    assert got["status"] == "cancelled"


async def test_cancel_twice_conflicts(api_gateway: Gateway) -> None:
    v = await api_gateway.create("09012345678")
    c = api_gateway.client
    assert (await c.post(f"{URL}/{v['id']}/cancel", headers=AUTH)).status == 200
    again = await c.post(f"{URL}/{v['id']}/cancel", headers=AUTH)
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "not_pending"


async def test_check_number(api_gateway: Gateway) -> None:
    c = api_gateway.client
    resp = await c.post(
        "/v1/phone-numbers/check", json={"phone_number": "０９０－１２３４－５６７８"}, headers=AUTH
    )
    body = await resp.json()
    assert resp.status == 200
    assert body == {
        "eligible": True,
        "e164": "+819012345678",
        "national": "090-1234-5678",
        "type": "mobile",
        "reason": None,
        "message": None,
    }
    resp = await c.post(
        "/v1/phone-numbers/check", json={"phone_number": "050-1234-5678"}, headers=AUTH
    )
    body = await resp.json()
    assert (body["eligible"], body["reason"], body["type"]) == (False, "voip", "voip")
    assert body["message"]["ja"].startswith("050")


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"null",
        b"{}",
        b'{"phone_number": null}',
        b'{"phone_number": ["090"]}',
        b'{"phone_number": "x", "extra": 1}',
        b'{"phone_number": "' + b"9" * 100 + b'"}',
        b"\x00\x01",
    ],
)
async def test_check_number_malformed_is_4xx(api_gateway: Gateway, payload: bytes) -> None:
    resp = await api_gateway.client.post(
        "/v1/phone-numbers/check",
        data=payload,
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert 400 <= resp.status < 500
    assert (await resp.json())["error"]["message"]


async def test_ops_routes(api_gateway: Gateway) -> None:
    c = api_gateway.client
    assert (await c.get("/healthz")).status == 200
    ready = await c.get("/readyz")
    assert ready.status == 503  # ARI is not connected in this test
    assert (await ready.json())["checks"] == {"store": True, "asterisk": False}
    spec = await (await c.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    for path in (
        "/v1/verifications",
        "/v1/verifications/{id}",
        "/v1/verifications/{id}/cancel",
        "/v1/phone-numbers/check",
    ):
        assert path in spec["paths"]
    assert (await c.get("/nope")).status == 404
    assert (await (await c.get("/nope")).json())["error"]["code"] == "not_found"
