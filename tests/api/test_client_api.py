"""The browser-safe side: client tokens, CORS from configured origins only, the widget
script and QR codes; and the portal API refusing browsers. No Asterisk needed here."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ivr.api import CLIENT_TOKENS
from ivr.verification.ports import CallRecord
from ivr.vocabulary import Absence, AnswerMode, Outcome
from tests.conftest import AUTH, Gateway

PAGE = "https://login.portal-a.example"
OTHER_PORTAL_PAGE = "https://login.portal-b.example"


def client_url(vid: str) -> str:
    return f"/client/v1/verifications/{vid}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_create_hands_out_a_client_token_that_reads_the_public_status(
    api_gateway: Gateway,
) -> None:
    v = await api_gateway.create("090-1234-5678", reference="secret-ref")
    token = v["client_token"]
    assert token.startswith("ct1.")
    assert (await api_gateway.get(v["id"]))["client_token"] == token  # stable
    resp = await api_gateway.client.get(client_url(v["id"]), headers=bearer(token))
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    view = await resp.json()
    assert view["status"] == "pending"
    assert view["dial_number"] == v["dial_number"] | {"tel_uri": "tel:" + v["dial_number"]["e164"]}
    assert view["phone_number_masked"] == "090-****-5678"
    assert 0 < view["expires_in"] <= 300
    text = await resp.text()
    for secret in ("12345678", "9012345678", "secret-ref", "callback"):
        assert secret not in text
    # The token may also come as ?token= (an EventSource or <img> cannot send headers).
    resp = await api_gateway.client.get(client_url(v["id"]), params={"token": token})
    assert resp.status == 200


async def test_client_token_reads_nothing_else(api_gateway: Gateway) -> None:
    c = api_gateway.client
    a = await api_gateway.create("09012345678")
    b = await api_gateway.create("08012345678")
    token = a["client_token"]
    other = await c.get(client_url(b["id"]), headers=bearer(token))
    assert other.status == 401
    assert (await other.json())["error"]["code"] == "invalid_client_token"
    # Not a portal token: it cannot create, cancel, read the portal view or list calls.
    assert (
        await c.post(
            "/v1/verifications", json={"phone_number": "09011112222"}, headers=bearer(token)
        )
    ).status == 401
    assert (
        await c.post(f"/v1/verifications/{a['id']}/cancel", headers=bearer(token))
    ).status == 401
    assert (await c.get(f"/v1/verifications/{a['id']}", headers=bearer(token))).status == 401
    assert (await c.get("/admin/calls", headers=bearer(token))).status == 401
    # The client route is read-only.
    assert (await c.post(client_url(a["id"]), headers=bearer(token))).status == 405
    assert (await c.delete(client_url(a["id"]), headers=bearer(token))).status == 405
    assert (await api_gateway.get(a["id"]))["status"] == "pending"
    # A portal token is no client token either.
    assert (await c.get(client_url(a["id"]), headers=AUTH)).status == 401


async def test_client_token_is_refused_after_expiry(api_gateway: Gateway) -> None:
    v = await api_gateway.create("09012345678")
    tokens = api_gateway.client.app[CLIENT_TOKENS]
    stale = tokens.issue(v["id"], time.time() - 1)
    resp = await api_gateway.client.get(client_url(v["id"]), headers=bearer(stale))
    assert resp.status == 401
    assert (await resp.json())["error"]["reason"] == "expired"


async def test_cors_only_for_the_portals_own_origins(api_gateway: Gateway) -> None:
    c = api_gateway.client
    v = await api_gateway.create("09012345678")
    auth = bearer(v["client_token"])
    ok = await c.get(client_url(v["id"]), headers={**auth, "Origin": PAGE})
    assert ok.status == 200
    assert ok.headers["Access-Control-Allow-Origin"] == PAGE
    assert "Origin" in ok.headers["Vary"]
    for origin in ("https://evil.example", OTHER_PORTAL_PAGE, "null", PAGE + ":8443"):
        bad = await c.get(client_url(v["id"]), headers={**auth, "Origin": origin})
        assert bad.status == 403, origin
        assert (await bad.json())["error"]["code"] == "origin_not_allowed"
        assert "Access-Control-Allow-Origin" not in bad.headers
    pre = {
        "Origin": PAGE,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    resp = await c.options(client_url(v["id"]), headers=pre)
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == PAGE
    assert resp.headers["Access-Control-Allow-Methods"] == "GET"
    assert resp.headers["Access-Control-Allow-Headers"] == "Authorization"
    resp = await c.options(client_url(v["id"]), headers={**pre, "Origin": "https://evil.example"})
    assert resp.status == 403 and "Access-Control-Allow-Origin" not in resp.headers
    resp = await c.options(client_url(v["id"]))  # no Origin: not a preflight (documented)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "bad_request"


async def test_portal_and_admin_apis_refuse_browsers(api_gateway: Gateway) -> None:
    c = api_gateway.client
    for method, path in (("POST", "/v1/verifications"), ("GET", "/admin/calls")):
        headers = (
            {**AUTH, "Origin": PAGE}
            if path.startswith("/v1")
            else {"Authorization": "Bearer test-ops-token", "Origin": PAGE}
        )
        resp = await c.request(method, path, json={"phone_number": "09012345678"}, headers=headers)
        assert resp.status == 403, path
        assert (await resp.json())["error"]["code"] == "browser_origin_refused"
        assert "Access-Control-Allow-Origin" not in resp.headers
        pre = await c.options(
            path, headers={"Origin": PAGE, "Access-Control-Request-Method": method}
        )
        assert "Access-Control-Allow-Origin" not in pre.headers
    # The same requests without an Origin (a server) go through.
    assert (
        await c.get("/admin/calls", headers={"Authorization": "Bearer test-ops-token"})
    ).status == 200


async def test_a_strangers_call_wakes_the_page_with_a_hint(api_gateway: Gateway) -> None:
    v = await api_gateway.create("09012345678")
    auth = bearer(v["client_token"])
    did = v["dial_number"]["e164"]

    async def poll(**params: str) -> dict[str, Any]:
        resp = await api_gateway.client.get(client_url(v["id"]), params=params, headers=auth)
        assert resp.status == 200
        data: dict[str, Any] = await resp.json()
        return data

    waiting = asyncio.create_task(poll(wait="25"))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    now = time.time()
    call = CallRecord(
        channel_id="c-1",
        did=did,
        trunk="carrier",
        caller_masked="",
        presentation="prohib",
        absence=Absence.USER_WITHHELD,
        outcome=Outcome.WITHHELD,
        reason="withheld",
        answer_mode=AnswerMode.ANSWER,
        started_at=now,
        decided_at=now,
    )
    await api_gateway.parts.service.record_call(call)
    view = await asyncio.wait_for(waiting, 10)  # woken: not the 25 s wait
    assert view["status"] == "pending"
    assert view["hint"]["kind"] == "withheld"
    # Told what it has seen, the next poll waits for news instead of repeating it.
    again = asyncio.create_task(poll(wait="25", seen_hint=view["hint"]["at"]))
    await asyncio.sleep(0.3)
    assert not again.done()
    resp = await api_gateway.client.post(f"/v1/verifications/{v['id']}/cancel", headers=AUTH)
    assert resp.status == 200
    done = await asyncio.wait_for(again, 10)
    assert done["status"] == "cancelled" and done["hint"] is None


async def test_widget_script_and_qr_codes(api_gateway: Gateway) -> None:
    c = api_gateway.client
    js = await c.get("/widget/v1/ivr-widget.js")
    assert js.status == 200
    assert js.headers["Content-Type"].startswith("text/javascript")
    assert "IvrWidget" in await js.text()
    did = api_gateway.parts.service.pool[0]
    qr = await c.get(f"/widget/v1/qr/{did}.svg")
    assert qr.status == 200 and qr.headers["Content-Type"] == "image/svg+xml"
    assert (await qr.text()).lstrip().startswith("<svg")
    assert (await c.get("/widget/v1/qr/+819012345678.svg")).status == 404


async def test_openapi_documents_the_client_side(api_gateway: Gateway) -> None:
    spec = await (await api_gateway.client.get("/openapi.json")).json()
    assert "/client/v1/verifications/{id}" in spec["paths"]
    created = spec["components"]["schemas"]["Verification"]["properties"]
    assert "client_token" in created
    assert "clientToken" in spec["components"]["securitySchemes"]
