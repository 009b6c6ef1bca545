"""The gateway's CPU per call and latency: this tree against another commit, in one run.

``python -m bench.ab --baseline REV``: the bench's Asterisk and one gateway (SQLite);
three rounds, each placing the same number of calls at the same rate once with the
gateway of commit ``REV`` (checked out in a temporary git worktree, run with it first on
``PYTHONPATH``) and once with this tree's, alternating so drift in the machine hits both
(and which of the two goes first alternates too).
Every caller has a pending verification, so every call does the whole work. Prints each
round's CPU ms per call, committed and callback p99, and the ratios this/baseline, then
min / median / max of the ratios. ``--env KEY=VALUE`` (repeatable) sets a variable for
this tree's gateway only, to compare a setting instead of a commit (``--baseline HEAD``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import TOKEN, Run, log, pct, save_results, spread
from bench.run import ROOT, Bench


async def one(
    bench: Bench,
    http: aiohttp.ClientSession,
    label: str,
    calls: int,
    rate: int,
    env: dict[str, str] | None = None,
    tree: Path = ROOT,
) -> dict[str, Any]:
    """``calls`` calls at ``rate`` against a fresh gateway of ``tree`` started with ``env``."""
    bench.start_gateway(env=env, cwd=tree)
    try:
        await bench.wait_ready(http)
        callers = bench.callers(calls)
        _, creates = await bench.create(http, callers)
        run = Run(label, rate, calls, creates_per_s=round(creates, 1))
        since = time.time()
        await bench.measured_sipp(run, [bench.gateway_pid], callers)
        await asyncio.sleep(3)
        timings = await bench.timings(since - 1)
        got = await bench.portal.fetch()
        out = {
            "label": label,
            "ok": run.ok,
            "failed": run.failed,
            "creates_per_s": run.creates_per_s,
            "gateway_cpu_pct": run.app_cpu,
            "asterisk_cpu_pct": run.asterisk_cpu,
            "portal_cpu_pct": run.portal_cpu,
            # CPU share of one core over the run, per completed call per second.
            "gateway_cpu_ms_per_call": round(10 * run.app_cpu / rate, 3),
            "committed": pct([c - s for s, c in timings.values()]),
            "callback": pct([got[v] - s for v, (s, _) in timings.items() if v in got]),
        }
        log(
            f"{label}: {run.ok} ok, {run.failed} failed, gateway {run.app_cpu}% "
            f"({out['gateway_cpu_ms_per_call']} ms/call), asterisk {run.asterisk_cpu}%, "
            f"creates {run.creates_per_s}/s, committed p99 {out['committed']['p99']} ms, "
            f"callback p99 {out['callback']['p99']} ms"
        )
        return out
    finally:
        bench.stop_gateway()


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


async def main_async(
    bench: Bench,
    rounds: int,
    calls: int,
    rate: int,
    base_tree: Path,
    new_env: dict[str, str],
) -> dict[str, Any]:
    await asyncio.to_thread(bench.pbx.up)
    await bench.portal.start()
    results: list[dict[str, Any]] = []
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            for n in range(rounds):
                # Which goes first alternates: the second of a pair meets an Asterisk that
                # has just taken the first one's calls.
                for label in ("baseline", "this") if n % 2 == 0 else ("this", "baseline"):
                    if label == "baseline":
                        env = {"PYTHONPATH": str(base_tree)}
                        base = await one(bench, http, label, calls, rate, env, base_tree)
                    else:
                        new = await one(bench, http, label, calls, rate, new_env)
                results.append(
                    {
                        "baseline": base,
                        "this": new,
                        "cpu_ratio": ratio(
                            new["gateway_cpu_ms_per_call"], base["gateway_cpu_ms_per_call"]
                        ),
                        "creates_ratio": ratio(new["creates_per_s"], base["creates_per_s"]),
                        "committed_p99_ratio": ratio(
                            new["committed"]["p99"], base["committed"]["p99"]
                        ),
                        "callback_p99_ratio": ratio(
                            new["callback"]["p99"], base["callback"]["p99"]
                        ),
                    }
                )
    finally:
        await bench.portal.stop()
        await asyncio.to_thread(bench.pbx.down)
    summary = {}
    for key in ("cpu_ratio", "creates_ratio", "committed_p99_ratio", "callback_p99_ratio"):
        xs = [r[key] for r in results if r[key] is not None]
        if xs:
            summary[key] = spread(xs, 3)
    return {"rate": rate, "calls": calls, "rounds": results, "summary": summary}


def worktree(rev: str, where: Path) -> Path:
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "-f", "--detach", str(where), rev],
        check=True,
        capture_output=True,
    )
    return where


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", required=True, help="a commit to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=4500)
    parser.add_argument("--rate", type=int, default=150)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE, this tree only")
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    args = parser.parse_args()
    new_env = dict(e.split("=", 1) for e in args.env)
    with tempfile.TemporaryDirectory(prefix="ivr-ab-") as tmp:
        tree = worktree(args.baseline, Path(tmp) / "baseline")
        try:
            bench = Bench(Path(tmp), args.calls / args.rate, [args.rate], postgres=False)
            results = asyncio.run(
                main_async(bench, args.rounds, args.calls, args.rate, tree, new_env)
            )
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                check=False,
                capture_output=True,
            )
    results["baseline"] = args.baseline
    results["env"] = new_env
    path = save_results(args.out, "ab-", results)
    print(json.dumps(results["summary"], indent=2))
    print(f"ab: results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
