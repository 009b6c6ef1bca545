"""Soak: 100,000 calls at half the ceiling, memory and latency over the whole run.

``python -m bench.soak`` (``make soak``): the bench's own Asterisk instance and one gateway
on SQLite; calls in chunks of 10,000 (a verification created for each caller, then sipp
at a steady rate); every 10 s the RSS of Asterisk and the gateway and the store's size;
per chunk the call-to-committed and call-to-callback percentiles, and the committed
latency split into Asterisk's hand-over and the gateway's own share (from its
``call_decided`` lines), so that a machine slowing down is told from a gateway that does.
At the end, Asterisk's own object counts (channels, bridges, apps, taskprocessors), to
see what grows.

Verdicts printed: RSS of each process flat within 10 % between the end of the second
chunk (20,000 calls) and the end; p99 of the last chunk within 20 % of the first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import TOKEN, Run, log, pct, rss_kib, save_results
from bench.run import ROOT, Bench


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)


class Soak:
    def __init__(self, bench: Bench, total: int, chunk: int, rate: int) -> None:
        self.bench = bench
        self.total = total
        self.chunk = chunk
        self.rate = rate
        self.done = 0
        self.samples: list[dict[str, float]] = []

    def store_mib(self) -> float:
        path = self.bench.store_path
        size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.exists())
        return round(size / 2**20, 1)

    def sample(self, t0: float) -> dict[str, float]:
        ast = self.bench.pbx.pid() or 0
        return {
            "t": round(time.monotonic() - t0, 1),
            "calls": self.done,
            "asterisk_rss_mib": _mib(rss_kib(ast, "VmRSS")) if ast else 0.0,
            "gateway_rss_mib": _mib(rss_kib(self.bench.gateway_pid, "VmRSS")),
            "store_mib": self.store_mib(),
        }

    async def sampler(self, t0: float) -> None:
        while True:
            self.samples.append(self.sample(t0))
            await asyncio.sleep(10)

    def asterisk_objects(self) -> dict[str, int]:
        """How many of each object Asterisk holds: what would grow if we leaked."""
        pbx = self.bench.pbx
        out: dict[str, int] = {}
        text = pbx.cli("core show channels count")
        m = re.search(r"(\d+) active channels?", text)
        out["channels"] = int(m.group(1)) if m else -1
        m = re.search(r"(\d+) calls? processed", text)
        out["calls_processed"] = int(m.group(1)) if m else -1
        bridges = pbx.cli("bridge show all")
        out["bridges"] = sum(
            1 for line in bridges.splitlines() if re.match(r"^[0-9a-f-]{36}", line)
        )
        out["ari_apps"] = len([x for x in pbx.cli("ari show apps").splitlines()[2:] if x.strip()])
        tps = pbx.cli("core show taskprocessors").splitlines()
        out["taskprocessors"] = sum(1 for line in tps if re.match(r"^\S+\s+\d+\s+\d+", line))
        return out

    async def run(self) -> dict[str, Any]:
        b = self.bench
        await asyncio.to_thread(b.pbx.up)
        await b.portal.start()
        b.start_gateway()
        chunks: list[dict[str, Any]] = []
        t0 = time.monotonic()
        sampler: asyncio.Task[None] | None = None
        try:
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
                await b.wait_ready(http)
                sampler = asyncio.create_task(self.sampler(t0))
                before = await asyncio.to_thread(self.asterisk_objects)
                for i in range(self.total // self.chunk):
                    callers = b.callers(self.chunk)
                    ids, creates = await b.create(http, callers)
                    run = Run("soak", self.rate, self.chunk, creates_per_s=round(creates, 1))
                    since = time.time()
                    await b.measured_sipp(run, [b.gateway_pid], callers)
                    await asyncio.sleep(3)
                    timings = await b.timings(since - 1)
                    received = await b.portal.fetch()
                    self.done += self.chunk
                    row = {
                        "chunk": i + 1,
                        "calls": self.done,
                        "ok": run.ok,
                        "failed": run.failed,
                        "committed": pct([c - s for s, c in timings.values()]),
                        "callback": pct(
                            [received[v] - s for v, (s, _) in timings.items() if v in received]
                        ),
                        # The same calls split: Asterisk's hand-over (INVITE to
                        # StasisStart read) and the gateway's own share (to committed),
                        # to tell a gateway that slows from a machine that does.
                        "split": b.split_latency(set(ids)),
                        "missing_callbacks": sum(1 for v in ids if v not in received),
                        "asterisk_cpu": run.asterisk_cpu,
                        "gateway_cpu": run.app_cpu,
                        **self.sample(t0),
                    }
                    chunks.append(row)
                    log(
                        f"soak {self.done} calls: {run.ok} ok, {run.failed} failed; committed "
                        f"p99 {row['committed']['p99']} ms (hand-over "
                        f"{row['split']['asterisk_to_gateway']['p99']}, gateway "
                        f"{row['split']['gateway_to_commit']['p99']}), callback p99 "
                        f"{row['callback']['p99']} ms; RSS asterisk "
                        f"{row['asterisk_rss_mib']} MiB, gateway {row['gateway_rss_mib']} MiB, "
                        f"store {row['store_mib']} MiB"
                    )
                after = await asyncio.to_thread(self.asterisk_objects)
        finally:
            if sampler is not None:
                sampler.cancel()
            b.stop_gateway()
            await b.portal.stop()
            await asyncio.to_thread(b.pbx.down)
        return {
            "rate": self.rate,
            "chunks": chunks,
            "samples": self.samples,
            "asterisk_objects": {"before": before, "after": after},
            "verdict": verdict(chunks),
        }


def verdict(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    if len(chunks) < 3:
        return {}
    base, last = chunks[1], chunks[-1]

    def growth(key: str) -> float:
        return round(100 * (last[key] - base[key]) / base[key], 1) if base[key] else 0.0

    def change(a: float | None, z: float | None) -> float | None:
        return round(100 * (z - a) / a, 1) if a and z is not None else None

    def p99_change(kind: str) -> float | None:
        return change(chunks[0][kind]["p99"], last[kind]["p99"])

    def share_change(part: str, q: str) -> float | None:
        first = chunks[0].get("split", {}).get(part, {})
        return change(first.get(q), last.get("split", {}).get(part, {}).get(q))

    out = {
        "asterisk_rss_growth_pct": growth("asterisk_rss_mib"),
        "gateway_rss_growth_pct": growth("gateway_rss_mib"),
        "committed_p99_change_pct": p99_change("committed"),
        "callback_p99_change_pct": p99_change("callback"),
    }
    # Not part of the verdict: where a change in the committed latency came from.
    diagnosis = {
        f"{part}_{q}_change_pct": share_change(part, q)
        for part in ("asterisk_to_gateway", "gateway_to_commit")
        for q in ("p50", "p99")
    }
    out["rss_flat"] = all(abs(out[k]) <= 10 for k in out if k.endswith("rss_growth_pct"))
    out["latency_steady"] = all(
        v is not None and v <= 20 for k, v in out.items() if k.endswith("p99_change_pct")
    )
    return {**out, "split": diagnosis}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument(
        "--rate", type=int, default=150, help="calls/s (default: half the 300/s ceiling)"
    )
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        print("soak: sipp is missing (make deps)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ivr-soak-") as tmp:
        bench = Bench(Path(tmp), args.chunk / args.rate, [args.rate], postgres=False)
        results = asyncio.run(Soak(bench, args.calls, args.chunk, args.rate).run())
    path = save_results(args.out, "soak-", results)
    print(json.dumps(results["verdict"], indent=2))
    print(f"soak: Asterisk objects {results['asterisk_objects']}")
    print(f"soak: results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
