"""Callbacks around real calls and a real gateway process: after a SIGKILL, and before
the caller's prompt has ended."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.api.test_callbacks import SECRET_A
from tests.conftest import AUTH, Call, MakeGateway
from tests.integration.test_process import ServeProcess
from tests.portal import StartPortal, free_port, verify_signature


async def test_sigkill_before_delivery_then_delivered_after_restart(
    pbx: object, tmp_path: Path, start_portal: StartPortal
) -> None:
    import aiohttp

    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks/ivr"
    serve = ServeProcess(tmp_path)
    try:
        await serve.start()
        async with aiohttp.ClientSession(headers=AUTH) as http:
            base = f"{serve.url}/v1/verifications"
            async with http.post(
                base, json={"phone_number": "09012345678", "callback_url": url}
            ) as resp:
                v = await resp.json()
            async with http.post(f"{base}/{v['id']}/cancel") as resp:
                assert resp.status == 200
            await asyncio.sleep(0.3)  # the portal is down: the first attempt fails
            serve.kill()
            portal, _ = await start_portal(port=port)
            await serve.start()
            await portal.wait_for(1, timeout=10)
        payload = verify_signature(SECRET_A, portal.received[0])
        assert payload["type"] == "verification.cancelled"
        assert payload["data"]["id"] == v["id"]
    finally:
        serve.stop()


async def test_real_call_callback_arrives_before_the_prompt_ends(
    pbx: object, make_gateway: MakeGateway, start_portal: StartPortal, call: Call
) -> None:
    portal, url = await start_portal()
    gw = await make_gateway(dids=["0355550011"])  # early media, the real prompt
    v = await gw.create("09012345678", callback_url=url)
    result = await call("0355550011", caller="09012345678")
    await portal.wait_for(1)
    payload = verify_signature(SECRET_A, portal.received[0])
    assert payload["type"] == "verification.verified"
    assert payload["data"]["id"] == v["id"]
    assert payload["data"]["verified"]["trunk"] == "carrier"
    final = next(r.at for r in result.responses if r.status >= 200)
    assert result.invite_at is not None
    # The callback arrived within moments of the INVITE, seconds before the prompt ended.
    assert portal.received[0]["at"] - result.invite_at < 0.5
    assert portal.received[0]["at"] < final - 2.0
