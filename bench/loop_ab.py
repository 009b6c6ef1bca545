"""The gateway's CPU per call on asyncio's loop against uvloop, in the same run.

``python -m bench.loop_ab``: the bench's Asterisk and one gateway (SQLite); three rounds,
each placing the same number of calls at the same rate once on each loop (alternating,
so drift in the machine hits both), with a verification created for every caller. Prints
each round's gateway CPU ms per call and the uvloop/asyncio ratio, then min / median /
max of the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import TOKEN, Run, log, pct, save_results
from bench.run import ROOT, Bench


async def one(
    bench: Bench, http: aiohttp.ClientSession, loop: str, calls: int, rate: int
) -> dict[str, Any]:
    bench.start_gateway(env={"IVR_API_EVENT_LOOP": loop})
    try:
        await bench.wait_ready(http)
        callers = bench.callers(calls)
        _, creates = await bench.create(http, callers)
        run = Run(loop, rate, calls, creates_per_s=round(creates, 1))
        since = time.time()
        await bench.measured_sipp(run, [bench.gateway_pid], callers)
        await asyncio.sleep(3)
        timings = await bench.timings(since - 1)
        got = await bench.portal.fetch()
        out = {
            "loop": loop,
            "ok": run.ok,
            "failed": run.failed,
            "creates_per_s": run.creates_per_s,
            "gateway_cpu_pct": run.app_cpu,
            "asterisk_cpu_pct": run.asterisk_cpu,
            # CPU share of one core over the run, per completed call per second.
            "gateway_cpu_ms_per_call": round(10 * run.app_cpu / rate, 3),
            "committed": pct([c - s for s, c in timings.values()]),
            "callback": pct([got[v] - s for v, (s, _) in timings.items() if v in got]),
        }
        log(
            f"{loop}: {run.ok} ok, {run.failed} failed, gateway {run.app_cpu}% "
            f"({out['gateway_cpu_ms_per_call']} ms/call), creates {run.creates_per_s}/s, "
            f"committed p99 {out['committed']['p99']} ms, callback p99 {out['callback']['p99']} ms"
        )
        return out
    finally:
        bench.stop_gateway()


async def main_async(bench: Bench, rounds: int, calls: int, rate: int) -> dict[str, Any]:
    await asyncio.to_thread(bench.pbx.up)
    await bench.portal.start()
    results: list[dict[str, Any]] = []
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            for _ in range(rounds):
                base = await one(bench, http, "asyncio", calls, rate)
                fast = await one(bench, http, "uvloop", calls, rate)
                results.append(
                    {
                        "asyncio": base,
                        "uvloop": fast,
                        "cpu_ratio": round(
                            fast["gateway_cpu_ms_per_call"] / base["gateway_cpu_ms_per_call"], 3
                        ),
                        "creates_ratio": round(fast["creates_per_s"] / base["creates_per_s"], 3),
                    }
                )
    finally:
        await bench.portal.stop()
        await asyncio.to_thread(bench.pbx.down)
    summary = {}
    for key in ("cpu_ratio", "creates_ratio"):
        xs = [r[key] for r in results]
        summary[key] = {"min": min(xs), "median": statistics.median(xs), "max": max(xs)}
    return {"rate": rate, "calls": calls, "rounds": results, "summary": summary}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=6000)
    parser.add_argument("--rate", type=int, default=150)
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ivr-loop-") as tmp:
        bench = Bench(Path(tmp), args.calls / args.rate, [args.rate], postgres=False)
        results = asyncio.run(main_async(bench, args.rounds, args.calls, args.rate))
    path = save_results(args.out, "loop-ab-", results)
    print(json.dumps(results["summary"], indent=2))
    print(f"loop_ab: results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
