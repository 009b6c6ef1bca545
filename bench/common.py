"""What the benchmark's parts share: timing and process figures, the local portal."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

PORTAL_PORT = 27090  # below the ephemeral range, like bench/run.py's
TOKEN = "bench-portal-token"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"bench: {msg}", flush=True)


def save_results(out_dir: str, prefix: str, results: dict[str, Any]) -> Path:
    """Write one run's results as ``<out_dir>/<prefix><timestamp>.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / time.strftime(f"{prefix}%Y%m%d-%H%M%S.json")
    path.write_text(json.dumps(results, indent=2))
    return path


def pct(values: list[float]) -> dict[str, float | None]:
    """p50/p95/p99/max in milliseconds."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None, "n": 0}
    xs = sorted(v * 1000 for v in values)

    def q(p: float) -> float:
        return round(xs[min(len(xs) - 1, max(0, math.ceil(p * len(xs)) - 1))], 2)

    return {"p50": q(0.50), "p95": q(0.95), "p99": q(0.99), "max": round(xs[-1], 2), "n": len(xs)}


def spread(xs: list[float], digits: int | None = None) -> dict[str, float]:
    """min / median / max of a figure over rounds (rounded to ``digits`` if given)."""
    out = {"min": min(xs), "median": statistics.median(xs), "max": max(xs)}
    return out if digits is None else {k: round(v, digits) for k, v in out.items()}


BISECT_STEP = 25  # calls/s: how close the search for the highest sustained rate gets


def next_rate(rates: list[int], held: dict[int, bool]) -> int | None:
    """The next rate to try: ``rates`` rising until one does not hold, then halving the
    gap between the highest that held and the lowest that did not, down to
    ``BISECT_STEP``, so a ceiling between two listed rates is found (None: done)."""
    failed = [r for r, ok in held.items() if not ok]
    if not failed:
        return next((r for r in rates if r not in held), None)
    low_fail = min(failed)
    best = max((r for r, ok in held.items() if ok and r < low_fail), default=0)
    if low_fail - best <= BISECT_STEP:
        return None
    mid = best + max(BISECT_STEP, (low_fail - best) // 2 // BISECT_STEP * BISECT_STEP)
    return mid if mid < low_fail and mid not in held else None


R = TypeVar("R")


def rate_of(run: Any) -> int:
    """A run's rate: a :class:`Run`'s, or a run as saved in the results (a dict)."""
    return int(run["rate"] if isinstance(run, dict) else run.rate)


def held_up_to(
    runs: Sequence[R], ok: Callable[[R], bool], rate: Callable[[R], int] = rate_of
) -> R | None:
    """The run at the highest rate that held (``ok``) with no rate under it failing: a
    rate is sustained only if every rate tried below it held too. On a loaded machine a
    rate above a failed one sometimes holds by luck (a ceiling of 375/s over a failed
    350/s); :func:`next_rate` already searches below the lowest failure, and every
    report reads the runs the same way, the ceiling's and the gateway's alike."""
    lowest_failed = min((rate(r) for r in runs if not ok(r)), default=None)
    held = [r for r in runs if ok(r) and (lowest_failed is None or rate(r) < lowest_failed)]
    return max(held, key=rate, default=None)


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid: int, key: str = "VmHWM") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


@dataclass
class Run:
    target: str  # ceiling | gateway
    rate: int
    calls: int
    ok: int = 0
    failed: int = 0
    seconds: float = 0.0
    asterisk_cpu: float = 0.0  # percent of one core
    app_cpu: float = 0.0  # every gateway process together
    app_cpu_each: list[float] = field(default_factory=list)
    store_cpu: float | None = None  # PostgreSQL's processes, when it is the store
    portal_cpu: float | None = None  # the portal receiving callbacks (its own process)
    committed: dict[str, Any] = field(default_factory=dict)
    # committed latency split: INVITE -> StasisStart read by the gateway (Asterisk and
    # the socket), StasisStart -> committed (the gateway), from the gateway's log.
    split: dict[str, Any] = field(default_factory=dict)
    callback: dict[str, Any] = field(default_factory=dict)
    creates_per_s: float | None = None
    asterisk_rss_mib: float | None = None  # after the run's calls ended

    @property
    def failed_pct(self) -> float:
        return 100.0 * self.failed / max(1, self.calls)

    @property
    def cps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def poll_session(total_timeout: float) -> aiohttp.ClientSession:
    """A client for thousands of concurrent long polls (no connection limit)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=aiohttp.ClientTimeout(total=total_timeout),
    )


class Portal:
    """The portal receiving callbacks (``bench.portal_app``), in a process of its own so
    its CPU is its own (``pid``); ``fetch`` reads when each verification's arrived."""

    def __init__(self) -> None:
        self.received: dict[str, float] = {}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the portal is not started"
        return self.proc.pid

    async def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.portal_app", str(PORTAL_PORT)],
            cwd=Path(__file__).resolve().parent.parent,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = await asyncio.to_thread(self.proc.stdout.readline)
        if line.strip() != b"ready":
            raise RuntimeError("the benchmark's portal did not start")

    async def fetch(self) -> dict[str, float]:
        """Verification id -> when its verified callback arrived (all so far)."""
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{PORTAL_PORT}/received") as resp,
        ):
            self.received = await resp.json()
        return self.received

    async def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(self.proc.wait, 10)
            self.proc = None


def children_cpu(parent: int) -> float:
    """CPU seconds of a process and its direct children (a PostgreSQL postmaster and
    its backends)."""
    total = cpu_seconds(parent)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total
