"""Inputs found by fuzzing the API: each deserves a 4xx with the JSON error, never a
500, and nothing is stored for it (regressions of issue 14's defects 2-4)."""

from __future__ import annotations

from typing import Any

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


async def test_a_read_only_store_answers_503_and_saves_nothing(api_gateway: Gateway) -> None:
    gw = api_gateway
    kept = await gw.create("09012345678")
    store: Any = gw.parts.store
    # The file refuses writes from now on (as root, chmod would not stop us).
    await store._run(lambda: store.db.execute("PRAGMA query_only = ON"))
    resp = await gw.client.post(URL, json={"phone_number": "08011112222"}, headers=AUTH)
    assert resp.status == 503 and resp.headers["Retry-After"] == "1"
    assert (await resp.json())["error"]["code"] == "store_unavailable"
    cancel = await gw.client.post(f"{URL}/{kept['id']}/cancel", headers=AUTH)
    assert cancel.status == 503
    assert (await gw.get(kept["id"]))["status"] == "pending"  # reads go on; nothing changed
    # A call now is not told it verified: nothing could be committed.
    did = kept["dial_number"]["e164"]
    from ivr.vocabulary import Outcome

    with pytest.raises(Exception):  # noqa: B017 - whatever the engine raises
        await gw.parts.service.match_call(_call(did), "+819012345678", "09012345678")
    await store._run(lambda: store.db.execute("PRAGMA query_only = OFF"))
    record, verified = await gw.parts.service.match_call(_call(did), "+819012345678", "09012345678")
    assert record.outcome is Outcome.VERIFIED and verified is not None  # and then it does


def _call(did: str) -> Any:
    import time

    from ivr.verification.ports import CallRecord
    from ivr.vocabulary import AnswerMode, Outcome

    now = time.time()
    return CallRecord(
        "ch-ro", did, "carrier", "090****5678", "allowed", None, Outcome.NO_PENDING, None,
        AnswerMode.EARLY_MEDIA, now, now,
    )  # fmt: skip


async def test_openapi_says_what_the_service_does(api_gateway: Gateway) -> None:
    """Defect 5: the allow-list rule for callback_url, the ops routes' 401, and the
    answer to retrying a delivered callback are in the document, and match the service."""
    import re

    spec = await (await api_gateway.client.get("/openapi.json")).json()
    create = spec["paths"]["/v1/verifications"]["post"]
    url_schema = spec["components"]["schemas"]["CreateVerification"]["properties"]["callback_url"]
    pattern = url_schema["pattern"]
    assert re.match(pattern, "http://127.0.0.1:8080/hook")
    assert not re.match(pattern, "http://evil.example/hook")  # not on the allow-list
    assert not re.match(pattern, "http://127.0.0.1:99999/hook")
    assert "callback_url_not_allowed" in create["responses"]["422"]["description"]
    for path, ops in spec["paths"].items():
        if path.startswith("/admin"):
            for op in ops.values():
                assert "401" in op["responses"], path
    retry = spec["paths"]["/admin/callbacks/{id}/retry"]["post"]["responses"]
    assert "409" in retry and "already_delivered" in retry["409"]["description"]
    # The service answers what the document says.
    refused = await api_gateway.client.post(
        URL,
        json={"phone_number": "09012345678", "callback_url": "http://evil.example/hook"},
        headers=AUTH,
    )
    assert refused.status == 422
    anonymous = await api_gateway.client.get("/admin/callbacks")
    assert anonymous.status == 401
