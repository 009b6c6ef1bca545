"""Kamailio at the edge, two Asterisk nodes, two gateways, one PostgreSQL: real calls.

The cluster is started once for the module (``ivr cluster up``'s code, on test ports):
sipp sends to Kamailio, which identifies the trunk by source address, enforces the trust
boundary and spreads the calls over both nodes; each gateway holds a WebSocket to each
node. The fault test SIGKILLs a node under load; the flood test floods from one source
while the carrier's calls go on.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ivr.config import load_settings
from ivr.devtools.cluster import LocalCluster
from ivr.devtools.postgres import LocalPostgres
from ivr.devtools.sipcall import CallResult, CallSpec, place_call
from ivr.devtools.sipload import run_load
from ivr.devtools.synth import write_tones
from ivr.trunks import load_inventory
from tests.conftest import AUTH, DATA, LOG_FILES

EDGE_PORT = 25070
NODE_PORTS = {"a": 25160, "b": 25260}
API_PORT = 28481  # the second gateway: 28482
NO_PENDING_DID = "0355550011"  # early media: a short tone, then 486
FLOOD_DID = "0355550098"
IVR = [sys.executable, "-m", "ivr"]

CONFIG = """
inventory = "{inventory}"

[asterisk]
app = "edge-test-1"
apps = ["edge-test-1", "edge-test-2"]
heartbeat = 1.0

[[nodes]]
name = "a"
sip_port = 25160
http_port = 28188
ami_port = 25138
rtp_start = 21000
rtp_end = 21999
instance = "tnode-a"

[[nodes]]
name = "b"
sip_port = 25260
http_port = 28288
ami_port = 25238
rtp_start = 22000
rtp_end = 22999
instance = "tnode-b"

[edge]
enabled = true
sip_port = {edge_port}
node_port = {node_port}
run_dir = "{run_dir}"
final_timeout = 10

[calls]
prompts_dir = "{tones}"
asterisk_prompts_dir = "/ivr/tcluster/sounds"

[api]
port = {api_port}
ops_tokens = ["test-ops-token"]

[[portals]]
name = "portal-a"
tokens = ["test-token-portal-a"]
callback_secrets = ["whsec_cG9ydGFsLWEtc2VjcmV0LWtleS0x"]
callback_hosts = ["127.0.0.1"]

[verification]
min_ttl = 1

[limits]
calls_per_caller_per_minute = 0
"""


@pytest.fixture(scope="module")
def cluster(
    postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    tmp = tmp_path_factory.mktemp("cluster")
    inventory = tmp / "trunks.toml"
    # The test trunks, and one more untrusted source that the flood test floods from
    # (pike remembers a flooder for a while: no other test uses it).
    inventory.write_text(
        (DATA / "trunks.test.toml").read_text()
        + '\n[[trunks]]\nname = "flooder"\nmatch = ["127.0.0.4"]\ntrusted = false\n'
        f'  [[trunks.dids]]\n  number = "{FLOOD_DID}"\n  answer_mode = "reject"\n'
    )
    config = tmp / "cluster.toml"
    config.write_text(
        CONFIG.format(
            inventory=inventory,
            edge_port=EDGE_PORT,
            node_port=EDGE_PORT + 1,
            run_dir=tmp / "edge",
            tones=write_tones(tmp / "tones", 0.5),
            api_port=API_PORT,
        )
    )
    settings = load_settings(config, environ={})
    url = postgres.create_database("cluster")
    local = LocalCluster(
        settings, load_inventory(settings.inventory), config, {"IVR_STORE_URL": url}
    )
    LOG_FILES.extend(gw.log for gw in local.gateways)
    try:
        local.up()
        yield local
    finally:
        local.down()


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def decided(cluster: LocalCluster, since: str = "") -> list[dict[str, Any]]:
    """The call_decided lines both gateways wrote (since a time), oldest first."""
    out = []
    for gw in cluster.gateways:
        for line in gw.log.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"call_decided"' in line:
                entry = json.loads(line)
                if entry["timestamp"] >= since:
                    out.append(entry)
    return sorted(out, key=lambda e: str(e["timestamp"]))


async def edge_call(did: str, **spec: Any) -> CallResult:
    return await place_call(
        CallSpec(did=did, target_host="127.0.0.1", target_port=EDGE_PORT, **spec)
    )


async def create(http: aiohttp.ClientSession, number: str) -> dict[str, Any]:
    async with http.post(
        f"http://127.0.0.1:{API_PORT}/v1/verifications", json={"phone_number": number}
    ) as resp:
        assert resp.status == 201, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body


async def status(http: aiohttp.ClientSession, vid: str, port: int = API_PORT) -> str:
    async with http.get(f"http://127.0.0.1:{port}/v1/verifications/{vid}") as resp:
        body = await resp.json()
        return str(body["status"])


async def test_calls_through_the_edge_reach_both_nodes_and_verify(cluster: LocalCluster) -> None:
    since = now()
    holders = [f"0901000{i:04d}" for i in range(6)]
    async with aiohttp.ClientSession(headers=AUTH) as http:
        created = [await create(http, h) for h in holders]
        results = await asyncio.gather(
            *(
                edge_call(v["dial_number"]["national"].replace("-", ""), caller=h)
                for h, v in zip(holders, created, strict=True)
            )
        )
        lost = [r.sipp_output[-1500:] for r in results if r.final is None]
        assert lost == [], lost
        # Verified, and seen so by the other gateway too (one PostgreSQL).
        for v in created:
            assert await status(http, v["id"]) == "verified"
            assert await status(http, v["id"], API_PORT + 1) == "verified"
    calls = decided(cluster, since)
    assert [c["outcome"] for c in calls] == ["verified"] * 6
    assert {c["trunk"] for c in calls} == {"carrier"}
    assert {c["node"] for c in calls} == {"a", "b"}  # the dispatcher spreads them
    assert all(c["channel_id"].startswith(c["node"] + "-") for c in calls)  # unique ids


async def test_untrusted_source_cannot_assert_a_pending_number(cluster: LocalCluster) -> None:
    """From the untrusted peer, with the pending holder's number as P-Asserted-Identity
    and as From, and a forged trunk header: the edge names the real trunk."""
    holder = "09020000001"
    async with aiohttp.ClientSession(headers=AUTH) as http:
        v = await create(http, holder)
        result = await edge_call(
            "0355550099",
            caller=holder,
            pai=f"tel:+81{holder[1:]}",
            headers=("X-Ivr-Trunk: carrier",),
            source_ip="127.0.0.2",
        )
        assert result.final is not None
        assert await status(http, v["id"]) == "pending"
    last = decided(cluster)[-1]
    assert (last["trunk"], last["outcome"]) == ("peer", "rejected_source")


async def test_untrusted_call_to_a_carrier_number_is_refused(cluster: LocalCluster) -> None:
    """The peer cannot reach the carrier trunk's numbers through the edge either."""
    holder = "09020000002"
    async with aiohttp.ClientSession(headers=AUTH) as http:
        v = await create(http, holder)
        dial = v["dial_number"]["national"].replace("-", "")
        result = await edge_call(
            dial, caller=holder, pai=f"tel:+81{holder[1:]}", source_ip="127.0.0.2"
        )
        assert result.final == 404
        assert await status(http, v["id"]) == "pending"


async def test_privacy_id_through_the_edge_is_withheld(cluster: LocalCluster) -> None:
    holder = "09020000003"
    async with aiohttp.ClientSession(headers=AUTH) as http:
        v = await create(http, holder)
        dial = v["dial_number"]["national"].replace("-", "")
        result = await edge_call(dial, caller=holder, pai=f"tel:+81{holder[1:]}", privacy="id")
        assert result.final is not None
        assert await status(http, v["id"]) == "pending"
    assert decided(cluster)[-1]["outcome"] == "withheld"


async def test_unknown_source_is_refused_at_the_edge(cluster: LocalCluster) -> None:
    since = now()
    result = await edge_call(NO_PENDING_DID, source_ip="127.0.0.3")
    assert result.statuses == [403]
    assert decided(cluster, since) == []


async def test_a_node_takes_sip_from_the_edge_only(cluster: LocalCluster) -> None:
    since = now()
    direct = await place_call(
        CallSpec(did=NO_PENDING_DID, target_host="127.0.0.1", target_port=NODE_PORTS["a"])
    )
    assert direct.final is not None and direct.final >= 400 and direct.final != 486
    assert decided(cluster, since) == []


def _sip(method: str, user_agent: str = "ivr-test", port: int = EDGE_PORT) -> str | None:
    """One request over a plain UDP socket; the status line of the answer, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(1.0)
        local = s.getsockname()[1]
        msg = (
            f"{method} sip:127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{time.monotonic_ns()}\r\n"
            f"From: <sip:probe@127.0.0.1:{local}>;tag=t{local}\r\n"
            f"To: <sip:127.0.0.1:{port}>\r\n"
            f"Call-ID: {time.monotonic_ns()}@127.0.0.1\r\n"
            f"CSeq: 1 {method}\r\nContact: <sip:probe@127.0.0.1:{local}>\r\n"
            f"User-Agent: {user_agent}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        s.sendto(msg.encode(), ("127.0.0.1", port))
        try:
            data = s.recv(4096).decode(errors="replace")
        except TimeoutError:
            return None
        return data.splitlines()[0] + ("|allow" if "\nAllow: INVITE" in data else "")


async def test_scanners_get_nothing_and_unserved_methods_405(cluster: LocalCluster) -> None:
    assert _sip("OPTIONS") == "SIP/2.0 200 OK"
    assert _sip("REGISTER") == "SIP/2.0 405 Method Not Allowed|allow"
    assert _sip("SUBSCRIBE") == "SIP/2.0 405 Method Not Allowed|allow"
    assert _sip("OPTIONS", user_agent="friendly-scanner") is None
    assert _sip("INVITE", user_agent="sipvicious 0.3.4") is None


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


async def test_trunks_apply_reloads_the_edge_without_a_restart(cluster: LocalCluster) -> None:
    """A new carrier in the inventory: `ivr trunks apply` rewrites the nodes' config and
    the edge's trunk table and Kamailio reloads it (same pid); SIGHUP for the gateways."""
    unknown = await edge_call("0355550077", source_ip="127.0.0.5")
    assert unknown.statuses == [403]
    edge_pid = cluster.edge.pid()
    _append(
        Path(cluster.settings.inventory),
        '\n[[trunks]]\nname = "newcarrier"\nmatch = ["127.0.0.5"]\ntrusted = true\n'
        '  [[trunks.dids]]\n  number = "03-5555-0077"\n  answer_mode = "reject"\n',
    )
    done = await asyncio.to_thread(
        subprocess.run,
        [*IVR, "--config", str(cluster.config_path), "trunks", "apply"],
        capture_output=True,
        text=True,
        env={**os.environ, "IVR_STORE_URL": cluster.env["IVR_STORE_URL"]},
    )
    assert done.returncode == 0, done.stderr
    assert "edge: db/address reloaded" in done.stdout
    for gw in cluster.gateways:
        pid = gw.pid()
        assert pid is not None
        os.kill(pid, signal.SIGHUP)
    await asyncio.sleep(0.5)
    since = now()
    result = await edge_call("0355550077", source_ip="127.0.0.5")
    assert result.final is not None and result.final != 403
    assert [(c["trunk"], c["outcome"]) for c in decided(cluster, since)] == [
        ("newcarrier", "no_pending")
    ]
    assert cluster.edge.pid() == edge_pid


async def _ready_nodes(url: str) -> dict[str, bool]:
    async with aiohttp.ClientSession() as s, s.get(f"{url}/readyz") as resp:
        body = await resp.json()
        return dict(body.get("nodes", {}))


async def _wait(predicate: Any, timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await predicate():
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} not within {timeout} s")


async def test_a_node_killed_under_load(cluster: LocalCluster, tmp_path: Path) -> None:
    """sipp at 10 calls/s for 20 s through the edge; node b SIGKILLed after 8 s. Calls
    placed once the dispatcher has marked it down all get their normal answer (486: no
    verification pending for these callers); nothing verifies; every call gets a final
    response; b, restarted, rejoins by itself."""
    rate, seconds, kill_at = 10, 20, 8.0
    holder = "09030000000"  # pending all along: no load call may verify it
    async with aiohttp.ClientSession(headers=AUTH) as http:
        pending = await create(http, holder)
        since = now()
        callers = [f"0903{i:07d}" for i in range(1, rate * seconds + 1)]
        load = asyncio.create_task(
            run_load(tmp_path, ("127.0.0.1", EDGE_PORT), NO_PENDING_DID, callers, rate)
        )
        await asyncio.sleep(kill_at)
        node_b = cluster.nodes["b"]
        pid = node_b.pid()
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        killed = time.monotonic()

        async def marked_down() -> bool:
            nodes = await asyncio.to_thread(cluster.edge.nodes)
            return any(n.get("name") == "b" and n.get("flags", "").startswith("I") for n in nodes)

        detected = await _wait(marked_down, 10, "the dispatcher marking b down")
        result = await load
        assert await status(http, pending["id"]) == "pending"

        after_detection = kill_at + detected
        late = {n: s for n, s in result.finals.items() if result.started_at(n) > after_detection}
        statuses = result.statuses
        print(
            f"\nnode b killed at {kill_at:.0f} s; marked down {detected:.2f} s later; "
            f"finals {dict(statuses)}; lost {len(result.lost)}; "
            f"placed after detection {len(late)}, all 486: {set(late.values()) == {486}}"
        )
        assert detected < 3.0
        assert result.lost == []  # every call got a final response
        assert set(late.values()) == {486}
        assert len(late) >= rate * (seconds - after_detection) - 2
        assert statuses[486] >= result.placed - rate * 2  # only calls in flight on b failed
        calls = decided(cluster, since)
        assert "verified" not in {c["outcome"] for c in calls}

        # b comes back: the dispatcher's probe and the gateways' ARI find it by themselves.
        node_b.up()

        async def rejoined() -> bool:
            nodes = await asyncio.to_thread(cluster.edge.nodes)
            active = any(n.get("name") == "b" and n.get("flags", "").startswith("A") for n in nodes)
            gw = await _ready_nodes(cluster.gateways[0].url)
            return active and gw.get("b") is True

        await _wait(rejoined, 15, "node b rejoining")
        print(f"node b back in {time.monotonic() - killed:.1f} s after the kill")
        mark = now()
        await asyncio.gather(
            *(edge_call(NO_PENDING_DID, caller=f"090400000{i:02d}") for i in range(6))
        )
        assert {c["node"] for c in decided(cluster, mark)} == {"a", "b"}


async def test_a_flood_is_refused_at_the_edge_and_the_carrier_goes_on(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    """One source sends INVITEs at 2,000/s for 2 s while the carrier calls at 20/s."""
    since = now()
    carrier = asyncio.create_task(
        run_load(
            tmp_path / "carrier",
            ("127.0.0.1", EDGE_PORT),
            NO_PENDING_DID,
            [f"0905{i:07d}" for i in range(1, 81)],
            20,
        )
    )
    await asyncio.sleep(0.5)
    flood = await run_load(
        tmp_path / "flood",
        ("127.0.0.1", EDGE_PORT),
        FLOOD_DID,
        [f"0906{i:07d}" for i in range(4000)],
        2000,
        source_ip="127.0.0.4",
        recv_timeout_ms=3000,
    )
    normal = await carrier
    reached = Counter(c["trunk"] for c in decided(cluster, since))["flooder"]
    print(
        f"\nflood: {flood.placed} INVITEs in {flood.seconds:.1f} s, {reached} reached Asterisk "
        f"and the gateway; carrier: {dict(normal.statuses)}, lost {len(normal.lost)}"
    )
    assert normal.statuses == Counter({486: 80})
    assert reached <= flood.placed * 0.05
