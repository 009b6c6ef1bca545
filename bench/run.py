"""`make bench`: calls per second and call-to-verified latency against Asterisk's ceiling.

One invocation, on loopback only, every load bounded by a call count:

1. ceiling: sipp at rising rates against a minimal ARI app (bench/ceiling_app.py) doing
   the gateway's call shape (answer, 1 s prompt, hang up), on the stock and the minimal
   Asterisk profiles;
2. gateway: the same search against `ivr serve`, every call matching a pending
   verification created through the API just before (match, commit, outbox, signed
   callback to a local portal, prompt, hang-up). The three searches run side by side,
   each rate on an Asterisk started afresh (``CallPhases.searches``);
3. per rate: calls/s, failed calls, INVITE-at-Asterisk -> committed and -> callback
   received (p50/p95/p99/max), CPU of Asterisk and of the app;
4. API: creates per second; 1,000 and 10,000 concurrent long polls woken by their calls;
5. memory: the gateway's peak RSS with 100,000 pending verifications and 10,000 open
   long polls.

Prints a table (ratios against the ceiling measured in the same run) and writes the
results with machine details to bench-results/<timestamp>.json.
Needs root and the local Asterisk's rootfs (it builds one like `ivr pbx up`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench.api_phases import ApiPhases
from bench.call_phases import DID, CallPhases
from bench.common import (
    PORTAL_PORT,
    TOKEN,
    Portal,
    Run,
    held_up_to,
    log,
    next_rate,
    pct,
    save_results,
)
from bench.report import handover_bounded, machine, sustains, table
from bench.shared import postgres_runs
from ivr.config import load_settings
from ivr.devtools.pbx import LocalPbx
from ivr.devtools.synth import write_tones
from ivr.trunks import load_inventory

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SECRET = "whsec_YmVuY2gtb25seS1zZWNyZXQta2V5"
# Every port of the benchmark below Linux's ephemeral range (32768-60999): with tens of
# thousands of connections made per run, an outgoing connection's local port could be
# one the next Asterisk or gateway wants to listen on ("already in use", seen once).
API_PORT = 27080


class Bench(CallPhases, ApiPhases):
    def __init__(self, work: Path, seconds: float, rates: list[int], postgres: bool = True) -> None:
        self.postgres = postgres
        self.work = work
        self.seconds = seconds
        self.rates = rates
        self.next_caller = 1
        self.portal = Portal()
        self.gateways: list[tuple[subprocess.Popen[bytes], int]] = []  # (process, API port)
        self.logs: list[Any] = []
        self.store_path = work / "bench.sqlite3"
        self.pg_url: str | None = None  # set for the PostgreSQL runs (bench/shared.py)
        self.pg_pid: int | None = None
        self._write_config()
        self.settings = load_settings(self.config, environ={})
        self.pbx = LocalPbx(self.settings, load_inventory(self.settings.inventory))

    # -- set-up ---------------------------------------------------------------------

    def _write_config(self) -> None:
        # 1.0 s, like the ceiling in LAB-NOTES.
        prompts = write_tones(self.work / "prompts", 1.0)
        (self.work / "trunks.toml").write_text(
            '[[trunks]]\nname = "carrier"\nmatch = ["127.0.0.1"]\ntrusted = true\n'
            f'[[trunks.dids]]\nnumber = "{DID}"\nanswer_mode = "answer"\n'
        )
        self.config = self.work / "bench.toml"
        self.config.write_text(f"""
inventory = "trunks.toml"
[asterisk]
sip_port = 27060
http_port = 27088
ami_port = 27038
rtp_start = 21000
rtp_end = 24999
app = "phone-auth-bench"
[pbx]
instance = "bench"
[api]
port = {API_PORT}
max_wait = 300
ops_tokens = ["bench-ops-token"]
[[portals]]
name = "bench"
tokens = ["{TOKEN}"]
callback_url = "http://127.0.0.1:{PORTAL_PORT}/hook"
callback_secrets = ["{SECRET}"]
callback_hosts = ["127.0.0.1"]
[store]
path = "{self.store_path}"
[verification]
default_ttl = 3600
max_ttl = 3600
[calls]
prompts_dir = "{prompts}"
[log]
level = "info"
format = "json"
[limits]  # the benchmark is one client creating thousands a second on purpose
creates_per_second = 0
creates_per_number_per_hour = 0
checks_per_second = 0
calls_per_caller_per_minute = 0
""")

    def callers(self, n: int) -> list[str]:
        first = self.next_caller
        self.next_caller += n
        return [f"0901{i:07d}" for i in range(first, first + n)]

    def start_gateway(
        self,
        fresh: bool = True,
        name: str = "gateway",
        port: int = API_PORT,
        env: dict[str, str] | None = None,
        cwd: Path = ROOT,
    ) -> None:
        """``cwd`` is the source tree the gateway runs from (``python -m`` imports from
        it first)."""
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.store_path}{suffix}").unlink(missing_ok=True)
        full = {**os.environ, "IVR_CONFIG": str(self.config), "IVR_API_PORT": str(port)}
        if self.pg_url:
            full["IVR_STORE_URL"] = self.pg_url
        log_file = open(self.work / f"{name}.log", "ab")
        self.logs.append(log_file)
        proc = subprocess.Popen(
            [sys.executable, "-m", "ivr", "serve"],
            env={**full, **(env or {})},
            cwd=cwd,
            stdout=log_file,
            stderr=log_file,
        )
        self.gateways.append((proc, port))

    def stop_gateway(self) -> None:
        for proc, _ in self.gateways:
            proc.send_signal(signal.SIGTERM)
        for proc, _ in self.gateways:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.gateways = []
        for f in self.logs:
            f.close()
        self.logs = []

    @property
    def gateway_pid(self) -> int:
        return self.gateways[0][0].pid

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.gateways[0][1]}"

    async def wait_ready(self, http: aiohttp.ClientSession) -> None:
        for _, port in self.gateways:
            for _ in range(300):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                        if resp.status == 200:
                            break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"the gateway on port {port} did not become ready; see its log")

    async def create(
        self, http: aiohttp.ClientSession, callers: list[str]
    ) -> tuple[list[str], float]:
        """Create a verification per caller (16 at a time); ids and creates per second."""
        ids: list[str] = [""] * len(callers)
        queue = list(enumerate(callers))
        started = time.monotonic()

        ports = [port for _, port in self.gateways]  # spread over every gateway

        async def worker() -> None:
            while queue:
                i, phone = queue.pop()
                url = f"http://127.0.0.1:{ports[i % len(ports)]}/v1/verifications"
                async with http.post(url, json={"phone_number": phone}) as resp:
                    assert resp.status == 201, await resp.text()
                    ids[i] = (await resp.json())["id"]

        await asyncio.gather(*(worker() for _ in range(16)))
        return ids, len(callers) / (time.monotonic() - started)

    async def timings(self, since: float) -> dict[str, tuple[float, float]]:
        """verification id -> (call started at Asterisk, committed), from the store."""
        query = (
            "SELECT verification_id, started_at, committed_at FROM calls"
            " WHERE outcome = 'verified' AND started_at >= {} AND committed_at IS NOT NULL"
        )
        if self.pg_url:
            conn = await asyncpg.connect(self.pg_url)
            try:
                rows = await conn.fetch(query.format("$1"), since)
            finally:
                await conn.close()
            return {r[0]: (r[1], r[2]) for r in rows}
        db = sqlite3.connect(f"file:{self.store_path}?mode=ro", uri=True)
        try:
            found = db.execute(query.format("?"), (since,)).fetchall()
        finally:
            db.close()
        return {r[0]: (r[1], r[2]) for r in found}

    def split_latency(self, ids: set[str]) -> dict[str, Any]:
        stasis, commit = [], []
        with contextlib.suppress(OSError):
            lines = [x for f in self.work.glob("gateway*.log") for x in f.read_text().splitlines()]
            for line in lines:
                if '"call_decided"' not in line:
                    continue
                entry = json.loads(line)
                if entry.get("verification_id") in ids:
                    stasis.append(entry["stasis_ms"] / 1000)
                    commit.append(entry["commit_ms"] / 1000)
        return {"asterisk_to_gateway": pct(stasis), "gateway_to_commit": pct(commit)}

    async def gateway_runs(
        self,
        http: aiohttp.ClientSession,
        rates: list[int],
        label: str = "gateway",
        search: bool = True,
    ) -> list[Run]:
        """Calls at ``rates`` rising; with ``search``, then between the highest rate
        sustained (under 0.5 % failed, callback p99 under 500 ms) and the lowest not."""
        runs: list[Run] = []
        held: dict[int, bool] = {}
        while (
            rate := next_rate(rates, held) if search else next(iter(rates[len(runs) :]), None)
        ) is not None:
            run = await self.gateway_run(http, label, rate)
            runs.append(run)
            held[rate] = sustains(asdict(run))
        return runs

    async def gateway_run(self, http: aiohttp.ClientSession, label: str, rate: int) -> Run:
        """Calls at ``rate`` against the running gateway(s), every caller with a pending
        verification created just before: latency to committed and to the callback."""
        calls = int(rate * self.seconds)
        callers = self.callers(calls)
        ids, creates = await self.create(http, callers)
        run = Run(label, rate, calls, creates_per_s=round(creates, 1))
        since = time.time()
        await self.measured_sipp(run, [p.pid for p, _ in self.gateways], callers)
        await asyncio.sleep(3)  # last calls end, last callbacks arrive
        timings = await self.timings(since - 1)
        got = await self.portal.fetch()
        run.committed = pct([c - s for s, c in timings.values()])
        run.callback = pct([got[v] - s for v, (s, _) in timings.items() if v in got])
        run.callback["missing"] = sum(1 for v in ids if v not in got)
        run.split = self.split_latency(set(ids))
        log(
            f"{label} {rate}/s: {run.ok} ok, {run.failed} failed, asterisk "
            f"{run.asterisk_cpu}%, gateway {run.app_cpu}%, committed p99 "
            f"{run.committed['p99']} ms (asterisk->gateway p99 "
            f"{run.split['asterisk_to_gateway']['p99']} ms, gateway->commit p99 "
            f"{run.split['gateway_to_commit']['p99']} ms), callback p99 "
            f"{run.callback['p99']} ms, creates {run.creates_per_s}/s"
            + (f", postgresql {run.store_cpu}%" if run.store_cpu is not None else "")
        )
        return run

    # -- all --------------------------------------------------------------------------

    async def run(self, quick: bool) -> dict[str, Any]:
        await asyncio.to_thread(self.pbx.up)
        await self.portal.start()
        results: dict[str, Any] = {"machine": machine(self.pbx)}
        try:
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
                stock, ceiling, gateway = await self.searches(http)
            # The ceiling the gateway is compared with is the minimal app held to the
            # gateway's own bound: under 0.5 % failed *and* its hand-over p99 under
            # 500 ms, as the gateway's callbacks are. Under failures alone, 10 s of calls
            # at a rate Asterisk cannot keep up with still "hold" (they queue for
            # seconds, they do not fail yet): a burst, not a rate. Both are reported.
            loose = held_up_to(ceiling, lambda r: r.failed_pct < 0.5)
            best = held_up_to(ceiling, lambda r: handover_bounded(asdict(r))) or loose or ceiling[0]
            await asyncio.to_thread(self.pbx.up)  # afresh, on the minimal profile
            self.start_gateway()
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
                await self.wait_ready(http)
                half = max(10, best.rate // 2)
                half_run = next((r for r in gateway if r.rate == half), None)
                if half_run is None:
                    half_run = (await self.gateway_runs(http, [half], search=False))[0]
                    gateway.append(half_run)
                creates = await self.creates(http)
                # Woken by calls at half the ceiling rate, like the latency targets.
                polls = [await self.long_polls(http, 1000, half)]
                if not quick:
                    polls.append(await self.long_polls(http, 10000, half))
                memory = await self.memory(
                    http, 10000 if quick else 100000, 1000 if quick else 10000
                )
                self.stop_gateway()
                postgres: list[Run] = []
                if self.postgres:
                    try:
                        postgres = await postgres_runs(self, http, self.rates)
                    except Exception as exc:  # keep the SQLite results; say what failed
                        log(f"the PostgreSQL runs failed: {exc}")
        finally:
            self.stop_gateway()
            await self.portal.stop()
            await asyncio.to_thread(self.pbx.down)
        results.update(
            {
                "ceiling": [asdict(r) | {"cps": round(r.cps, 1)} for r in ceiling],
                "ceiling_stock": [asdict(r) | {"cps": round(r.cps, 1)} for r in stock],
                "gateway": [asdict(r) | {"cps": round(r.cps, 1)} for r in gateway],
                "postgres": [asdict(r) | {"cps": round(r.cps, 1)} for r in postgres],
                "ceiling_rate": best.rate,  # held to the hand-over bound
                "ceiling_rate_failures_only": loose.rate if loose else None,
                "half_rate": half_run.rate,
                "long_polls": polls,
                "creates": creates,
                "memory": memory,
            }
        )
        return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rates",
        default="100,200,300,400,500",
        help="call rates to try, rising (default: %(default)s)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=15.0,
        help="seconds of calls at each rate (default: %(default)s)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="skip the 10,000 long polls; 10,000 pending in the memory run",
    )
    parser.add_argument(
        "--no-postgres", action="store_true", help="skip the PostgreSQL runs (one and two gateways)"
    )
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    args = parser.parse_args()
    for tool in ("sipp", "wrk"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} is missing (make deps)", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp:
        rates = [int(r) for r in args.rates.split(",")]
        bench = Bench(Path(tmp), args.seconds, rates, postgres=not args.no_postgres)
        results = asyncio.run(bench.run(args.quick))
    path = save_results(args.out, "", results)
    print(table(results))
    print(f"bench: results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
