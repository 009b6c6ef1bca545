"""Inputs found by fuzzing the API: each deserves a 4xx with the JSON error, never a
500, and nothing is stored for it (regressions of issue 14's defects 2-4)."""

from __future__ import annotations

import pytest

from ivr.urls import callback_url_problem
from tests.conftest import AUTH, Gateway

URL = "/v1/verifications"


async def _error(gw: Gateway, resp_status: int, code: str, **kw: object) -> None:
    resp = await gw.client.post(URL, headers={**AUTH, **kw.pop("headers", {})}, **kw)  # type: ignore[arg-type]
    assert resp.status == resp_status, await resp.text()
    assert resp.content_type == "application/json"
    assert (await resp.json())["error"]["code"] == code


async def test_json_nested_too_deep_is_a_400(api_gateway: Gateway) -> None:
    body = '{"phone_number": "09012345678", "reference": ' + "[" * 5000 + "]" * 5000 + "}"
    assert len(body) < 16384
    await _error(
        api_gateway, 400, "invalid_json", data=body,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip


async def test_a_lone_surrogate_is_a_400(api_gateway: Gateway) -> None:
    body = '{"phone_number": "09012345678", "reference": "\\ud800"}'
    await _error(
        api_gateway, 400, "invalid_json", data=body,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://[127.0.0.1]/",
        "http://127.0.0.1:99999/hook",
        "http://127.0.0.1:-1/",
        "http://127.0.0.1:0/",
        "http://evil.example\\@127.0.0.1/",
        "http://user:pw@127.0.0.1/hook",
        "http://127.0.0.1 /hook",
        "http://exa_mple.com/",
        "ftp://127.0.0.1/",
        "http:///nohost",
    ],
)
async def test_undeliverable_callback_urls_are_refused(api_gateway: Gateway, url: str) -> None:
    await _error(
        api_gateway,
        422,
        "invalid_request",
        json={"phone_number": "09012345678", "callback_url": url},
    )


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/hook", "https://portal.example.jp/cb?x=1", "http://[::1]:80/"]
)
def test_good_callback_urls_pass(url: str) -> None:
    assert callback_url_problem(url) is None


async def test_an_8kb_idempotency_key_gets_the_json_error(api_gateway: Gateway) -> None:
    await _error(
        api_gateway,
        422,
        "invalid_request",
        json={"phone_number": "09012345678"},
        headers={"Idempotency-Key": "k" * 8200},
    )
    listed = await api_gateway.client.get(f"{URL}/vrf_none", headers=AUTH)
    assert listed.status == 404  # the connection and the API are fine afterwards
