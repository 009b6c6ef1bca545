"""Two gateway processes on one PostgreSQL and one Asterisk.

The dialplan hands a call to the first Stasis app that is connected (test.toml lists
``phone-auth-test`` then ``phone-auth-test-b``): gateway B holds the first, A the second,
so calls go to B while it lives and to A when it is gone.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from ivr.devtools.pbx import LocalPbx
from tests.conftest import AUTH, Call
from tests.integration.test_process import ServeProcess
from tests.portal import Portal, StartPortal

HERE = Path(__file__).resolve().parent
SCENARIO = HERE.parents[1] / "bench" / "load.xml"  # the benchmark's answered call


DID = "+81355550001"


def gateway(tmp_path: Path, name: str, app: str, pg_url: str) -> ServeProcess:
    """A gateway on the shared store with one answer-mode DID (so sipp calls one number)."""
    inventory = tmp_path / "one-did.toml"
    inventory.write_text(
        '[[trunks]]\nname = "carrier"\nmatch = ["127.0.0.1"]\ntrusted = true\n'
        f'[[trunks.dids]]\nnumber = "{DID}"\nanswer_mode = "answer"\n'
    )
    return ServeProcess(
        tmp_path,
        name,
        {
            "IVR_INVENTORY": str(inventory),
            "IVR_ASTERISK_APP": app,
            "IVR_STORE_URL": pg_url,
            "IVR_STORE_LEASE_SECONDS": "5",
            "IVR_CALLBACKS_BACKOFF_BASE": "0.2",
            "IVR_CALLBACKS_BACKOFF_MAX": "1",
        },
    )


@pytest.fixture
async def pair(
    pbx: LocalPbx, tmp_path: Path, pg_url: str
) -> AsyncIterator[tuple[ServeProcess, ServeProcess]]:
    a = gateway(tmp_path, "gateway-a", "phone-auth-test-b", pg_url)
    b = gateway(tmp_path, "gateway-b", "phone-auth-test", pg_url)
    try:
        await asyncio.gather(a.start(), b.start())
        yield a, b
    finally:
        a.stop()
        b.stop()


def decided(log: Path) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    return [x for x in lines if x.get("event") == "call_decided"]


async def test_created_on_a_verified_by_a_call_on_b_and_as_long_poll_wakes(
    pair: tuple[ServeProcess, ServeProcess], call: Call, start_portal: StartPortal
) -> None:
    a, b = pair
    portal, hook = await start_portal()
    async with aiohttp.ClientSession(headers=AUTH) as http:
        async with http.post(
            f"{a.url}/v1/verifications",
            json={"phone_number": "090-1234-5678", "callback_url": hook},
        ) as resp:
            assert resp.status == 201
            v = await resp.json()

        async def long_poll() -> tuple[dict[str, Any], float]:
            url = f"{a.url}/v1/verifications/{v['id']}"
            async with http.get(url, params={"wait": "25"}) as resp:
                return await resp.json(), time.time()

        poll = asyncio.create_task(long_poll())
        await asyncio.sleep(0.2)
        await call(v["dial_number"]["e164"], caller="09012345678")
        done, returned = await poll
    assert done["status"] == "verified"
    verified_at = datetime.fromisoformat(done["verified"]["at"]).timestamp()
    # The call is answered and hears its prompt after the commit; the poll on A must
    # not wait for that: it returns within a second of B's commit.
    assert returned - verified_at < 1.0
    assert [c["verification_id"] for c in decided(b.log)] == [v["id"]]
    assert decided(a.log) == []
    await portal.wait_for(1)
    await asyncio.sleep(2.0)  # no second delivery from the other gateway
    ids = [r["headers"]["webhook-id"] for r in portal.received]
    assert len(ids) == 1
    assert json.loads(portal.received[0]["body"])["data"]["id"] == v["id"]


async def _sipp(
    pbx: LocalPbx, tmp_path: Path, callers: list[str], rate: int
) -> tuple[float, asyncio.Task[int]]:
    """Calls from ``callers`` in order at ``rate`` per second to the DID; when it
    started, and the task that ends with sipp."""
    inf = tmp_path / "callers.csv"
    inf.write_text("SEQUENTIAL\n" + "".join(f"{c};\n" for c in callers))
    a = pbx.settings.asterisk
    proc = await asyncio.create_subprocess_exec(
        "sipp", f"{a.host}:{a.sip_port}", "-sf", str(SCENARIO), "-inf", str(inf),
        "-s", DID, "-r", str(rate), "-m", str(len(callers)), "-l", str(rate * 10),
        "-i", "127.0.0.1", "-p", "45090", "-nostdin", "-recv_timeout", "15000",
        "-timeout", f"{len(callers) // rate + 60}s", "-timeout_error",
        cwd=tmp_path, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    return time.time(), asyncio.create_task(proc.wait())


async def test_sigkill_of_one_gateway_mid_load_loses_no_login(
    pair: tuple[ServeProcess, ServeProcess],
    pbx: LocalPbx,
    tmp_path: Path,
    pg_url: str,
    start_portal: StartPortal,
) -> None:
    a, b = pair
    rate, seconds = 5, 20
    callers = [f"0901{i:07d}" for i in range(1, rate * seconds + 1)]
    portal: Portal
    portal, hook = await start_portal(delay=0.3)  # a slow portal: deliveries in flight
    # Every call matches a pending verification: one per caller, created on A and B.
    created: dict[str, dict[str, Any]] = {}
    async with aiohttp.ClientSession(headers=AUTH) as http:
        for i, caller in enumerate(callers):
            gw = (a, b)[i % 2]
            async with http.post(
                f"{gw.url}/v1/verifications",
                json={"phone_number": caller, "callback_url": hook, "ttl_seconds": 600},
            ) as resp:
                assert resp.status == 201, await resp.text()
                created[caller] = await resp.json()
    assert {v["dial_number"]["e164"] for v in created.values()} == {DID}
    started, sipp = await _sipp(pbx, tmp_path, callers, rate)
    await asyncio.sleep(seconds / 2)
    b.kill()  # B holds the first app: it was taking every call
    killed = time.time()
    await asyncio.wait_for(sipp, seconds + 90)

    conn = await asyncpg.connect(pg_url)
    try:
        rows = await conn.fetch("SELECT id, status, verified_at FROM verifications")
        status = {r["id"]: r["status"] for r in rows}
        twice = await conn.fetch(
            "SELECT verification_id FROM calls WHERE outcome = 'verified'"
            " GROUP BY 1 HAVING count(*) > 1"
        )
        events = await conn.fetch("SELECT id, verification_id, status FROM outbox")
    finally:
        await conn.close()
    assert twice == []  # none verified twice
    assert decided(b.log) and decided(a.log)  # B took calls until the kill, A after it
    per_verification = Counter(e["verification_id"] for e in events)
    assert max(per_verification.values()) == 1  # one callback event per verification
    late = [
        caller
        for i, caller in enumerate(callers)
        if started + i / rate >= killed + 2.0  # placed 2 s or more after the kill
    ]
    assert late and all(status[created[c]["id"]] == "verified" for c in late)
    verified = {vid for vid, s in status.items() if s == "verified"}
    assert len(verified) >= len(late)
    # Every verified one's callback is delivered, B's in-flight ones by A once their
    # lease ends; deliveries beyond one per verification are retries of one webhook-id.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = {json.loads(r["body"])["data"]["id"] for r in portal.received}
        if verified <= got:
            break
        await asyncio.sleep(0.5)
    got_ids: dict[str, set[str]] = {}
    for r in portal.received:
        got_ids.setdefault(json.loads(r["body"])["data"]["id"], set()).add(
            r["headers"]["webhook-id"]
        )
    assert verified <= set(got_ids), f"{len(verified - set(got_ids))} callbacks missing"
    assert all(len(ids) == 1 for ids in got_ids.values())
