"""One gateway, two Asterisk nodes (fake ARI): each on its own, /readyz and /metrics per node."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path
from typing import Any

from ivr.app import components, create_app
from ivr.config import NodeSettings, Settings, replace
from ivr.trunks import Inventory
from tests.fakes import FakeAmi, FakeAri
from tests.unit.test_stasis import stasis_start


async def test_calls_on_either_node_and_one_node_down_leaves_the_other(
    aiohttp_client: Any, tmp_path: Path, test_settings: Settings, test_inventory: Inventory
) -> None:
    settings = dataclasses.replace(
        replace(test_settings, store={"path": str(tmp_path / "ivr.sqlite3")}),
        nodes=(
            NodeSettings(name="a", sip_port=25161, http_port=28189, ami_port=25139),
            NodeSettings(name="b", sip_port=25261, http_port=28289, ami_port=25239),
        ),
    )
    a, b = FakeAri(connected=True), FakeAri(connected=False)
    app = create_app(settings, test_inventory, aris={"a": a, "b": b}, ami=FakeAmi())
    client = await aiohttp_client(app)
    parts = components(app)
    assert set(parts.nodes) == {"a", "b"}

    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 200  # a node is enough for calls to flow
    assert body["nodes"] == {"a": True, "b": False}

    await b.reconnect()
    for ari, channel in ((a, "a-1.1"), (b, "b-1.1")):
        ari.channels.add(channel)
        ari.emit(stasis_start(channel, "+81355550001", caller="09011112222"))
    for _ in range(100):
        if a.methods("a-1.1") == ["continue"] and b.methods("b-1.1") == ["continue"]:
            break
        await asyncio.sleep(0.02)
    # Each node's calls are controlled on that node only.
    assert a.methods("b-1.1") == [] and b.methods("a-1.1") == []
    assert a.methods("a-1.1") == ["continue"] and b.methods("b-1.1") == ["continue"]

    await a.close()  # node a gone: b untouched
    resp = await client.get("/readyz")
    assert resp.status == 200 and (await resp.json())["nodes"] == {"a": False, "b": True}
    metrics = await (await client.get("/metrics")).text()
    assert re.search(r'ivr_ari_connected\{node="a"\} 0\.0', metrics)
    assert re.search(r'ivr_ari_connected\{node="b"\} 1\.0', metrics)
    for node in ("a", "b"):
        assert re.search(
            rf'ivr_calls_total\{{node="{node}",outcome="no_pending",trunk="carrier"\}} 1\.0',
            metrics,
        )

    await b.close()
    resp = await client.get("/readyz")
    assert resp.status == 503
