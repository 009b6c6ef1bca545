"""The PostgreSQL part of ``make bench``: one gateway on PostgreSQL, then two sharing
the load (the dialplan spreads calls over both Stasis apps), at the same rates as the
SQLite runs, against the same ceiling.

On two cores the gateways, Asterisk, PostgreSQL, sipp and the portal all compete: each
run reports every one's CPU.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from bench.common import Run, log
from ivr.asterisk.ami import AmiClient
from ivr.config import Settings, replace
from ivr.devtools.postgres import LocalPostgres
from ivr.trunks import apply, load_inventory

if TYPE_CHECKING:
    from bench.run import Bench

# Below the ephemeral port range (32768-60999): the runs before this one leave
# thousands of client sockets behind, and one of them may hold a port up there.
PG_PORT = 25442


async def _reload_dialplan(settings: Settings, bench: Bench) -> None:
    """Render the config for ``settings`` into the bench Asterisk and reload it."""
    ami = AmiClient(settings.asterisk)
    await ami.connect()
    try:
        inventory = load_inventory(settings.inventory)
        await apply.apply(settings, inventory, bench.pbx.base / "etc", bench.pbx.inside, ami)
    finally:
        ami.close()


async def postgres_runs(bench: Bench, http: aiohttp.ClientSession, rates: list[int]) -> list[Run]:
    directory = Path(tempfile.mkdtemp(prefix="ivr-bench-pg-", dir="/var/tmp"))
    pg = LocalPostgres(directory, PG_PORT)  # durable: fsync on, as in production
    bench.pg_url = pg.up()
    bench.pg_pid = int((pg.data / "postmaster.pid").read_text().split()[0])
    app = bench.settings.asterisk.app
    apps = f"{app},{app}-b"
    two: Settings = replace(
        bench.settings, asterisk={"apps": (app, f"{app}-b"), "spread_calls": True}
    )
    runs: list[Run] = []
    try:
        log(f"postgresql {pg.url}: one gateway")
        bench.start_gateway(name="gateway-pg")
        await bench.wait_ready(http)
        runs += await bench.gateway_runs(http, rates, label="postgres x1")
        bench.stop_gateway()

        log("postgresql: two gateways sharing the calls")
        await _reload_dialplan(two, bench)
        env = {"IVR_ASTERISK_APPS": apps}
        bench.start_gateway(name="gateway-pg-a", env=env)
        bench.start_gateway(
            name="gateway-pg-b", port=bench.gateways[0][1] + 1,
            env={**env, "IVR_ASTERISK_APP": f"{app}-b"},
        )  # fmt: skip
        await bench.wait_ready(http)
        runs += await bench.gateway_runs(http, rates, label="postgres x2")
    finally:
        bench.stop_gateway()
        await _reload_dialplan(bench.settings, bench)
        bench.pg_url = bench.pg_pid = None
        pg.destroy()
    return runs
