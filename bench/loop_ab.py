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
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from bench.ab import one
from bench.common import TOKEN, save_results, spread
from bench.run import ROOT, Bench


async def main_async(bench: Bench, rounds: int, calls: int, rate: int) -> dict[str, Any]:
    await asyncio.to_thread(bench.pbx.up)
    await bench.portal.start()
    results: list[dict[str, Any]] = []
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            for _ in range(rounds):
                base = await one(
                    bench, http, "asyncio", calls, rate, {"IVR_API_EVENT_LOOP": "asyncio"}
                )
                fast = await one(
                    bench, http, "uvloop", calls, rate, {"IVR_API_EVENT_LOOP": "uvloop"}
                )
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
        summary[key] = spread([r[key] for r in results])
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
