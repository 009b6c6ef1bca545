"""Telecom ops against the real Asterisk: apply, status, registration, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ivr.asterisk.ami import AmiClient
from ivr.config import Settings
from ivr.devtools.pbx import LocalPbx
from ivr.trunks import Did, Inventory, Registration, Trunk
from ivr.trunks import apply as trunk_apply
from ivr.trunks import status as trunk_status
from tests.conftest import AUTH, DATA, Call, MakeGateway

OPS = {"Authorization": "Bearer test-ops-token"}


@pytest.fixture
async def ami(pbx: LocalPbx, test_settings: Settings) -> AsyncIterator[AmiClient]:
    client = AmiClient(test_settings.asterisk)
    await client.connect()
    yield client
    client.close()


@pytest.fixture
async def live(
    pbx: LocalPbx, ami: AmiClient, test_settings: Settings, test_inventory: Inventory
) -> AsyncIterator[Any]:
    """Apply an inventory to the session's Asterisk; the test inventory comes back after."""

    async def apply(inventory: Inventory) -> list[trunk_apply.FileChange]:
        return await trunk_apply.apply(test_settings, inventory, pbx.base / "etc", pbx.inside, ami)

    yield apply
    await apply(test_inventory)


def with_trunk(inventory: Inventory, trunk: Trunk) -> Inventory:
    return Inventory((*inventory.trunks, trunk))


def with_did(inventory: Inventory, did: Did) -> Inventory:
    carrier, *rest = inventory.trunks
    return Inventory((dataclasses.replace(carrier, dids=(*carrier.dids, did)), *rest))


async def test_status_shows_both_trunks(ami: AmiClient, test_inventory: Inventory) -> None:
    states = await trunk_status.status(ami, test_inventory)
    assert [s.name for s in states] == ["carrier", "peer"]
    assert all(s.endpoint not in ("Missing", "Unknown") for s in states)
    table = trunk_status.status_table(states)
    assert "carrier" in table and "peer" in table


async def test_apply_adds_and_removes_a_did(
    live: Any, test_inventory: Inventory, make_gateway: MakeGateway, call: Call
) -> None:
    added = with_did(test_inventory, Did("+81355550050", "reject"))
    changed = await live(added)
    assert "extensions.conf" in {c.name for c in changed}
    assert await live(added) == []  # the same inventory again: nothing to do
    gw = await make_gateway(inventory=added, dids=["0355550050"])
    v = await gw.create("09012345678")
    result = await call("0355550050", caller="09012345678")
    assert result.final == 486  # the gateway's reject mode
    assert (await gw.get(v["id"]))["status"] == "verified"
    await live(test_inventory)
    refused = await call("0355550050", caller="09012345678")
    assert refused.final == 404  # Asterisk itself: no such extension any more
    assert len(await gw.calls()) == 1  # the second call never reached the gateway


async def test_apply_loads_a_module_the_new_dialplan_needs(
    live: Any,
    pbx: LocalPbx,
    ami: AmiClient,
    test_inventory: Inventory,
    make_gateway: MakeGateway,
    call: Call,
) -> None:
    """An Asterisk running an older configuration: its dialplan reads the identity with
    BASE64_ENCODE once applied, so apply loads the module before the dialplan reloads
    (without it every caller's identity would arrive empty and nobody could verify)."""
    modules = pbx.base / "etc" / "modules.conf"
    modules.write_text(modules.read_text().replace("load = func_base64.so\n", ""))
    await ami.action("ModuleLoad", Module="func_base64.so", LoadType="unload")
    assert "func_base64" not in await ami.command("module show like func_base64")
    changed = await live(test_inventory)
    assert "modules.conf" in {c.name for c in changed}
    assert "func_base64" in await ami.command("module show like func_base64")
    gw = await make_gateway(dids=["0355550012"])
    v = await gw.create("09012345678")
    await call("0355550012", caller="09012345678")
    assert (await gw.get(v["id"]))["status"] == "verified"


async def _sipp_registrar() -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        shutil.which("sipp") or "sipp",
        "-sf",
        str(DATA / "sipp" / "registrar.xml"),
        "-i",
        "127.0.0.3",
        "-p",
        "25070",
        "-nostdin",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        cwd="/tmp",
    )


async def _registration(gw: Any, name: str, want: str) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for _ in range(100):
        resp = await gw.client.get("/admin/trunks", headers=OPS)
        if resp.status == 200:
            trunks = {t["name"]: t for t in (await resp.json())["trunks"]}
            state = trunks.get(name, {})
            if state.get("registration") == want:
                return state
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name} never became {want}: {state}")


async def test_registration_trunk_registers_and_is_rejected_with_wrong_credentials(
    live: Any, test_inventory: Inventory, make_gateway: MakeGateway
) -> None:
    registrar = await _sipp_registrar()
    try:

        def reg_trunk(password: str) -> Trunk:
            return Trunk(
                "reg-carrier",
                ("127.0.0.3",),
                trusted=True,
                addresses=(),
                port=25070,
                qualify_frequency=0,
                registration=Registration("trunkuser", password, "127.0.0.3:25070", expiration=600),
            )

        good = with_trunk(test_inventory, reg_trunk("trunkpass"))
        gw = await make_gateway(inventory=good, dids=[])
        await live(good)
        state = await _registration(gw, "reg-carrier", "Registered")
        assert state["up"] is True
        assert (await gw.client.get("/admin/trunks", headers=AUTH)).status == 401
        bad = with_trunk(test_inventory, reg_trunk("wrong-password"))
        await live(bad)
        state = await _registration(gw, "reg-carrier", "Rejected")
        assert state["up"] is False
    finally:
        with contextlib.suppress(ProcessLookupError):
            registrar.kill()
        await registrar.wait()


def _metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_move_with_calls(
    pbx: LocalPbx, make_gateway: MakeGateway, call: Call
) -> None:
    gw = await make_gateway(dids=["0355550012"])
    before = await (await gw.client.get("/metrics")).text()
    v = await gw.create("09012345678")
    await call("0355550012", caller="09012345678")
    await call("0355550012", caller="05012345678")
    assert (await gw.get(v["id"]))["status"] == "verified"
    after = await (await gw.client.get("/metrics")).text()
    for outcome in ("verified", "not_eligible"):
        assert _metric(after, "ivr_calls_total", outcome=outcome, trunk="carrier") == (
            _metric(before, "ivr_calls_total", outcome=outcome, trunk="carrier") + 1
        )
    assert _metric(after, "ivr_verifications_created_total") == 1
    assert _metric(after, "ivr_verifications_verified_total") == 1
    assert _metric(after, "ivr_call_to_verified_seconds_count") == 1
    assert _metric(after, "ivr_ari_connected") == 1
    assert _metric(after, "ivr_pending_verifications") == 0


def test_broken_inventory_renders_nothing(tmp_path: Path) -> None:
    from ivr.cli import main

    broken = tmp_path / "broken.toml"
    broken.write_text(
        '[[trunks]]\nname = "a"\nmatch = ["192.0.2.0/24"]\ntrusted = true\n'
        '[[trunks.dids]]\nnumber = "03-5555-0101"\n'
        '[[trunks]]\nname = "b"\nmatch = ["192.0.2.128/25"]\ncodecs = ["speex"]\n'
        '[trunks.registration]\nusername = "u"\n'
        '[[trunks.dids]]\nnumber = "03-5555-0101"\n'
        '[[trunks.dids]]\nnumber = "+1 212 555 0123"\n'
    )
    out = tmp_path / "out"
    assert main(["trunks", "--inventory", str(broken), "render", "--out", str(out)]) == 2
    assert not out.exists()
    assert main(["trunks", "--inventory", str(broken), "check"]) == 1
