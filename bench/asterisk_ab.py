"""What each part of the minimal Asterisk profile saves, in one run.

``python -m bench.asterisk_ab``: the ceiling's minimal ARI app (bench/ceiling_app.py) on
the bench's Asterisk, at one call rate, on the ``stock`` profile, the ``minimal``
profile, and the minimal profile with one of its parts put back as stock has it (leave
one out: ICE, the timing module, every AMI event, the dialplan of before, Debian's
modules and CDRs, glibc's allocator instead of jemalloc), or, named with ``--variant``,
with one more thing taken out that the minimal profile keeps (``FURTHER``: AMI, session
timers, ...; measured and not shipped, docs/benchmarks.md) or with the app's
``continue`` sent over HTTP (``OVER_HTTP``). Rounds alternate the order so drift in the
machine hits every variant. Per round: Asterisk's CPU per call, the app's,
hand-over p99 and Asterisk's RSS after the calls; then, per variant, min / median / max
of its CPU per call as a ratio to stock's in the same round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import cpu_seconds, log, pct, rss_kib, save_results, spread
from bench.run import ROOT, Bench
from ivr.config import Settings, replace
from ivr.devtools.pbx import LocalPbx
from ivr.stasis import release
from ivr.trunks import Inventory, load_inventory, render
from ivr.vocabulary import AnswerMode, Outcome

# variant -> the stock profile's files it takes instead of the minimal profile's
GLIBC_MALLOC = "minimal, glibc's malloc"
LEAVE_ONE_OUT: dict[str, tuple[str, ...]] = {
    "minimal, ICE on": ("rtp.conf",),
    "minimal, timing module": (),  # modules.conf plus res_timing_timerfd (below)
    "minimal, every AMI event": ("manager.conf",),
    "minimal, dialplan of before": ("extensions.conf", "ari.conf"),
    "minimal, Debian's modules and CDRs": ("modules.conf", "cdr.conf"),
    GLIBC_MALLOC: (),  # no jemalloc (preload, below)
}


def _edit(name: str, old: str, new: str) -> Callable[[Path], None]:
    def edit(etc: Path) -> None:
        text = (etc / name).read_text()
        if old not in text:
            raise RuntimeError(f"{name} has no {old!r} to change")
        (etc / name).write_text(text.replace(old, new))

    return edit


def _write(name: str, text: str) -> Callable[[Path], None]:
    def write(etc: Path) -> None:
        (etc / name).write_text(text)

    return write


# variant -> what it changes in the minimal profile's files: trims beyond the minimal
# profile, measured (docs/benchmarks.md, twelfth step) and left out for the reason given.
FURTHER: dict[str, Callable[[Path], None]] = {
    # The manager routes every channel snapshot even with the call events disabled; but
    # `ivr trunks` applies and watches the trunks over AMI.
    "minimal, AMI off": _write("manager.conf", "[general]\nenabled = no\n"),
    # A carrier whose INVITE says `Require: timer` would be refused (420).
    "minimal, session timers off": _edit(
        "pjsip.conf", "type = endpoint\n", "type = endpoint\ntimers = no\n"
    ),
    "minimal, multi-domain off": _edit(
        "pjsip.conf", "type = global\n", "type = global\ndisable_multi_domain = yes\n"
    ),
    "minimal, Stasis threads kept": _write(
        "stasis.conf", "[threadpool]\ninitial_size = 10\nidle_timeout_sec = 120\nmax_size = 50\n"
    ),
}


# The minimal profile with the ceiling app sending its `continue` as an HTTP request, as
# it did before 2026-12-08, rather than on the event WebSocket as the gateway does.
OVER_HTTP = "minimal, continue over HTTP"


class VariantPbx(LocalPbx):
    """The bench's Asterisk on the minimal profile with some of stock's files, or with
    one of ``FURTHER``'s edits."""

    def __init__(self, settings: Settings, inventory: Inventory, variant: str) -> None:
        super().__init__(settings, inventory, say=lambda _: None)
        self.variant = variant

    def install_config(self) -> None:
        super().install_config()
        if self.variant in ("stock", "minimal", OVER_HTTP):
            return
        etc = self.base / "etc"
        if self.variant in FURTHER:
            FURTHER[self.variant](etc)
            return
        stock = render.render(
            replace(self.settings, asterisk={"profile": "stock"}), self.inventory, self.inside
        )
        for name in LEAVE_ONE_OUT[self.variant]:
            (etc / name).write_text(stock[name])
        if self.variant == "minimal, timing module":
            with (etc / "modules.conf").open("a") as f:
                f.write("load = res_timing_timerfd.so\n")

    def preload(self) -> list[str]:
        return [] if self.variant == GLIBC_MALLOC else super().preload()


async def one(bench: Bench, variant: str, rate: int, calls: int) -> dict[str, Any]:
    profile = "stock" if variant == "stock" else "minimal"
    settings = replace(bench.settings, asterisk={"profile": profile})
    pbx = VariantPbx(settings, load_inventory(settings.inventory), variant)
    await asyncio.to_thread(pbx.up)
    bench.pbx = pbx  # bench.sipp places the calls on it
    a = settings.asterisk
    extension = release.extension(
        AnswerMode.ANSWER, "ja", Outcome.VERIFIED, settings.calls.cause(Outcome.VERIFIED)
    )
    latencies = bench.work / "asterisk-ab-handover.json"
    app = subprocess.Popen(
        [sys.executable, "-m", "bench.ceiling_app", a.ari_url, a.ari_user, a.ari_password,
         a.app, extension, str(latencies), "http" if variant == OVER_HTTP else "ws"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert app.stdout is not None
        app.stdout.readline()  # "ready"
        await bench.sipp(rate, bench.callers(rate))  # one second of calls to warm up
        await asyncio.sleep(2)
        pid = pbx.pid() or 0
        a0, p0, started = cpu_seconds(pid), cpu_seconds(app.pid), time.time()
        ok, failed, _ = await bench.sipp(rate, bench.callers(calls))
        await asyncio.sleep(2)  # the last prompts end
        a1, p1 = cpu_seconds(pid), cpu_seconds(app.pid)
        rss = rss_kib(pid, "VmRSS") / 1024
        app.send_signal(signal.SIGUSR1)
        await asyncio.sleep(0.5)
        pairs = json.loads(latencies.read_text()) if latencies.exists() else []
    finally:
        app.send_signal(signal.SIGTERM)
        app.wait(10)
        await asyncio.to_thread(pbx.down)
    out = {
        "variant": variant,
        "ok": ok,
        "failed": failed,
        "asterisk_cpu_ms_per_call": round(1000 * (a1 - a0) / calls, 3),
        "app_cpu_ms_per_call": round(1000 * (p1 - p0) / calls, 3),
        "handover": pct([h for at, h in pairs if at >= started]),
        "asterisk_rss_mib": round(rss, 1),
    }
    log(
        f"{variant}: {ok} ok, {failed} failed, asterisk {out['asterisk_cpu_ms_per_call']} ms/call, "
        f"app {out['app_cpu_ms_per_call']} ms/call, hand-over p99 {out['handover']['p99']} ms, "
        f"RSS {out['asterisk_rss_mib']} MiB"
    )
    return out


async def main_async(bench: Bench, variants: list[str], rounds: int, rate: int, calls: int) -> Any:
    results: list[dict[str, dict[str, Any]]] = []
    for i in range(rounds):
        order = variants if i % 2 == 0 else variants[::-1]
        results.append({v: await one(bench, v, rate, calls) for v in order})
    summary = {}
    for v in variants:
        ratios = [
            r[v]["asterisk_cpu_ms_per_call"] / r["stock"]["asterisk_cpu_ms_per_call"]
            for r in results
        ]
        summary[v] = {
            "asterisk_ms_per_call": [r[v]["asterisk_cpu_ms_per_call"] for r in results],
            "ratio_to_stock": spread(ratios, 3),
        }
    return {"rate": rate, "calls": calls, "rounds": results, "summary": summary}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=int, default=150)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument(
        "--only", action="store_true", help="stock and minimal only, not each part left out"
    )
    parser.add_argument(
        "--variant",
        action="append",
        choices=[*LEAVE_ONE_OUT, *FURTHER, OVER_HTTP],
        help="beside stock and minimal, only this one (repeatable)",
    )
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    args = parser.parse_args()
    others = [] if args.only else args.variant or list(LEAVE_ONE_OUT)
    variants = ["stock", "minimal", *others]
    with tempfile.TemporaryDirectory(prefix="ivr-asterisk-ab-") as tmp:
        bench = Bench(Path(tmp), args.calls / args.rate, [args.rate], postgres=False)
        results = asyncio.run(main_async(bench, variants, args.rounds, args.rate, args.calls))
    path = save_results(args.out, "asterisk-ab-", results)
    for v, s in results["summary"].items():
        r = s["ratio_to_stock"]
        print(
            f"{v:<38} Asterisk ms/call {s['asterisk_ms_per_call']}  "
            f"/ stock: {r['min']} / {r['median']} / {r['max']}"
        )
    print(f"asterisk_ab: results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
