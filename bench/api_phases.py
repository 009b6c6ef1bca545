"""The benchmark's API phases: creates per second, long polls woken by calls, memory.

A mixin of :class:`bench.run.Bench`, which provides the gateway, sipp and the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import TOKEN, log, pct, poll_session, rss_kib
from ivr.store.sqlite import SqliteStore

HERE = Path(__file__).resolve().parent


class ApiPhases:
    async def creates(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        """Creates per second on their own (no calls running): 1,000 to warm up, then
        three rounds of 3 s from wrk (16 connections; a load generator in C, so the
        client's CPU does not come off the gateway's two cores), each round's rate and
        their median; then, for comparison with earlier runs, three rounds of 5,000 from
        the benchmark's own 16 aiohttp clients."""
        await self.create(http, self.callers(1000))
        rounds = [await self.wrk_creates(3) for _ in range(3)]
        python = [round((await self.create(http, self.callers(5000)))[1], 1) for _ in range(3)]
        log(f"creates: {rounds} per second (wrk), {python} (the benchmark's aiohttp clients)")
        return {
            "rounds": rounds,
            "median": statistics.median(rounds),
            "clients": 16,
            "tool": "wrk",
            "rounds_aiohttp": python,
            "median_aiohttp": statistics.median(python),
        }

    async def wrk_creates(self, seconds: int) -> float:
        """One round of creates from wrk; every answer must be 201."""
        first = self.next_caller
        self.next_caller += 200_000  # more than a round can create
        proc = await asyncio.create_subprocess_exec(
            "wrk", "-t1", "-c16", f"-d{seconds}s", "-s", str(HERE / "creates.lua"),
            f"{self.api}/v1/verifications", "--", TOKEN, str(first - 1),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out = (await proc.communicate())[0].decode()
        counts = next((line.split() for line in out.splitlines() if line.startswith("created")), [])
        took = next((line for line in out.splitlines() if " requests in " in line), "")
        if proc.returncode != 0 or len(counts) != 4 or not took:
            raise RuntimeError(f"wrk failed: {out.strip()}")
        created, other = int(counts[1]), int(counts[3])
        if other:
            raise RuntimeError(f"wrk: {other} creates were not answered 201")
        elapsed = float(took.split(" requests in ")[1].split("s")[0].rstrip("m"))
        return round(created / elapsed, 1)

    async def wait_for_polls(self, http: aiohttp.ClientSession, n: int) -> None:
        """Until the gateway holds ``n`` long polls (its ivr_long_polls gauge)."""
        for _ in range(600):
            async with http.get(f"{self.api}/metrics") as resp:
                text = await resp.text()
            waiting = next(
                (
                    float(line.split()[1])
                    for line in text.splitlines()
                    if line.startswith("ivr_long_polls ")
                ),
                0.0,
            )
            if waiting >= n:
                return
            await asyncio.sleep(0.1)

    async def long_polls(self, http: aiohttp.ClientSession, n: int, rate: int) -> dict[str, Any]:
        callers = self.callers(n)
        ids, _ = await self.create(http, callers)
        woke: dict[str, float] = {}
        async with poll_session(400) as polls:

            async def poll(vid: str) -> None:
                async with polls.get(
                    f"{self.api}/v1/verifications/{vid}", params={"wait": "300"}
                ) as resp:
                    body = await resp.json()
                    woke[vid] = time.time()
                    assert body["status"] == "verified", body

            tasks = [asyncio.create_task(poll(v)) for v in ids]
            await self.wait_for_polls(http, n)
            # This process holds the other end of every poll (about 900,000 objects with
            # 10,000): a full collection of them took it 0.7 s, in the middle of the
            # wake-ups it measures. Frozen, a collection looks at new objects only.
            gc.freeze()
            try:
                since = time.time()
                ok, failed, _ = await self.sipp(rate, callers)
                _, pending = await asyncio.wait(tasks, timeout=30)
            finally:
                gc.unfreeze()
            for t in pending:
                t.cancel()
            timings = await self.timings(since - 1)
        wake = [woke[v] - c for v, (_, c) in timings.items() if v in woke]
        # When the slow wake-ups happened (commit time, seconds into the calls): one
        # stall of the machine or of a process shows as one short span.
        slow = sorted(c - since for v, (_, c) in timings.items() if v in woke and woke[v] - c > 0.1)
        result = {
            "polls": n,
            "rate": rate,
            "calls_ok": ok,
            "calls_failed": failed,
            "woken": len(woke),
            "wake": pct(wake),
            "over_100ms": {
                "n": len(slow),
                "from_s": round(slow[0], 2) if slow else None,
                "to_s": round(slow[-1], 2) if slow else None,
            },
        }
        log(
            f"{n} long polls: {len(woke)} woken, wake-up p99 {result['wake']['p99']} ms, "
            f"over 100 ms: {result['over_100ms']}"
        )
        return result

    async def memory(self, http: aiohttp.ClientSession, pending: int, polls: int) -> dict[str, Any]:
        self.stop_gateway()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.store_path}{suffix}").unlink(missing_ok=True)
        store = SqliteStore(self.store_path)
        await store.open()
        await store.close()
        now = time.time()
        db = sqlite3.connect(self.store_path)
        db.executemany(
            "INSERT INTO verifications (id, phone_number, dial_number, status, created_at,"
            " expires_at, portal) VALUES (?, ?, '+81355559001', 'pending', ?, ?, 'bench')",
            ((f"vrf_mem{i:07d}", f"+8190{i:08d}", now, now + 3600) for i in range(pending)),
        )
        db.commit()
        db.close()
        self.start_gateway(fresh=False)
        await self.wait_ready(http)
        idle = rss_kib(self.gateway_pid, "VmRSS")
        async with poll_session(120) as s:

            async def poll(i: int) -> None:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with s.get(
                        f"{self.api}/v1/verifications/vrf_mem{i:07d}",
                        params={"wait": "60"},
                    ) as resp:
                        await resp.read()

            tasks = [asyncio.create_task(poll(i)) for i in range(polls)]
            await self.wait_for_polls(http, polls)
            await asyncio.sleep(1)
            peak = rss_kib(self.gateway_pid, "VmHWM")
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        result = {
            "pending": pending,
            "long_polls": polls,
            "idle_rss_mib": round(idle / 1024, 1),
            "peak_rss_mib": round(peak / 1024, 1),
        }
        log(
            f"memory: {pending} pending, {polls} long polls: peak RSS "
            f"{result['peak_rss_mib']} MiB (idle {result['idle_rss_mib']} MiB)"
        )
        return result
