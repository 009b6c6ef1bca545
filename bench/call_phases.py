"""The benchmark's calls: sipp at a rate, the CPU it costs each process, the ceiling.

A mixin of :class:`bench.run.Bench`, which provides the settings, the local Asterisk,
the portal and the callers.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.common import Run, children_cpu, cpu_seconds, log, next_rate, pct, rss_kib
from bench.report import handover_bounded, sustains
from ivr.config import replace
from ivr.devtools.pbx import LocalPbx
from ivr.stasis import release
from ivr.trunks import load_inventory
from ivr.vocabulary import AnswerMode, Outcome

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DID = "0355559001"


class CallPhases:
    # -- sipp -----------------------------------------------------------------------

    async def sipp(self, rate: int, callers: list[str]) -> tuple[int, int, float]:
        inf = self.work / "callers.csv"
        inf.write_text("SEQUENTIAL\n" + "".join(f"{c};\n" for c in callers))
        stat = self.work / "stat.csv"
        stat.unlink(missing_ok=True)
        a = self.settings.asterisk
        bound = int(len(callers) / rate + 30)
        args = [
            "sipp",
            f"{a.host}:{a.sip_port}",
            "-sf",
            str(HERE / "load.xml"),
            "-inf",
            str(inf),
            "-s",
            DID,
            "-r",
            str(rate),
            "-m",
            str(len(callers)),
            "-l",
            str(rate * 10),
            "-i",
            "127.0.0.1",
            "-p",
            "27070",
            "-nostdin",
            "-recv_timeout",
            "10000",
            "-timeout",
            f"{bound}s",
            "-timeout_error",
            "-trace_stat",
            "-stf",
            str(stat),
            "-fd",
            "1",
            "-max_socket",
            "10000",
        ]
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *args,
            cwd=self.work,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await asyncio.wait_for(proc.wait(), bound + 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        elapsed = time.monotonic() - started
        rows = stat.read_text().strip().splitlines() if stat.exists() else []
        if len(rows) < 2:
            return 0, len(callers), elapsed
        header = rows[0].split(";")
        last = rows[-1].split(";")
        ok = int(last[header.index("SuccessfulCall(C)")])
        failed = int(last[header.index("FailedCall(C)")])
        # Calls sent over the whole run, not counting the tail of the last calls.
        return ok, max(failed, len(callers) - ok), elapsed

    async def measured_sipp(self, run: Run, app_pids: list[int], callers: list[str]) -> None:
        ast_pid = self.pbx.pid() or 0
        own = self.portal.pid  # the portal receiving callbacks (its own process)
        t0 = time.monotonic()
        a0, o0 = cpu_seconds(ast_pid), cpu_seconds(own)
        p0 = [cpu_seconds(p) for p in app_pids]
        s0 = children_cpu(self.pg_pid) if self.pg_pid else 0.0
        run.ok, run.failed, _ = await self.sipp(run.rate, callers)
        span = time.monotonic() - t0

        def share(seconds: float) -> float:
            return round(100 * seconds / span, 1)

        run.asterisk_cpu = share(cpu_seconds(ast_pid) - a0)
        run.app_cpu_each = [share(cpu_seconds(p) - c) for p, c in zip(app_pids, p0, strict=True)]
        run.app_cpu = round(sum(run.app_cpu_each), 1)
        run.portal_cpu = share(cpu_seconds(own) - o0)
        if self.pg_pid:
            run.store_cpu = share(children_cpu(self.pg_pid) - s0)
        # Calls per second achieved: completed calls over the time the offered load
        # lasted (the last calls' 1 s prompt is not sending time).
        run.seconds = run.calls / run.rate

    # -- phases ---------------------------------------------------------------------

    def _profile_pbx(self, profile: str) -> LocalPbx:
        if profile == self.settings.asterisk.profile:
            return self.pbx
        settings = replace(self.settings, asterisk={"profile": profile})
        return LocalPbx(settings, load_inventory(settings.inventory))

    async def ceiling_once(self, label: str, profile: str, rate: int) -> Run:
        """The minimal ARI app at ``rate`` on an Asterisk of ``profile`` started afresh:
        calls, failures, CPU, the hand-over (channel created -> StasisStart read, the
        same split the gateway logs as stasis_ms) and Asterisk's RSS after the calls."""
        await asyncio.to_thread(self._profile_pbx(profile).up)
        a = self.settings.asterisk
        # What the gateway hands a verified call on the bench's answer-mode DID.
        extension = release.extension(
            AnswerMode.ANSWER, "ja", Outcome.VERIFIED, self.settings.calls.cause(Outcome.VERIFIED)
        )
        latencies = self.work / f"{label}-handover.json"
        latencies.unlink(missing_ok=True)
        app = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.ceiling_app",
                a.ari_url,
                a.ari_user,
                a.ari_password,
                a.app,
                extension,
                str(latencies),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert app.stdout is not None
        try:
            app.stdout.readline()  # "ready"
            calls = int(rate * self.seconds)
            run = Run(label, rate, calls)
            await self.measured_sipp(run, [app.pid], self.callers(calls))
            await asyncio.sleep(3)  # let the last calls and channels clear
            run.asterisk_rss_mib = round(rss_kib(self.pbx.pid() or 0, "VmRSS") / 1024, 1)
        finally:
            app.send_signal(signal.SIGTERM)  # it writes the hand-over pairs as it stops
            app.wait(10)
        pairs = json.loads(latencies.read_text()) if latencies.exists() else []
        run.split = {"handover": pct([h for _, h in pairs])}
        log(
            f"{label} {rate}/s: {run.ok} ok, {run.failed} failed, "
            f"asterisk {run.asterisk_cpu}%, app {run.app_cpu}%, "
            f"hand-over p99 {run.split['handover']['p99']} ms"
        )
        return run

    async def searches(self, http: Any) -> tuple[list[Run], list[Run], list[Run]]:
        """The stock ceiling, the minimal ceiling and the gateway, searched side by side.

        At each step every search still going takes its next rate, and the three runs
        follow one another (the order rotating from step to step), each on an Asterisk
        started afresh: a search takes about ten minutes, and this machine's speed moves
        by a third in less, so three searches one after the other compared whichever
        came last with a different machine (the gateway once held 1.11x "the ceiling").
        The ceiling holds a rate under 0.5 % failed and, searched next, with its
        hand-over p99 under 500 ms too; the gateway under 0.5 % failed and callback p99
        under 500 ms."""
        stock: list[Run] = []
        minimal: list[Run] = []
        gateway: list[Run] = []
        held: dict[str, dict[int, bool]] = {"stock": {}, "minimal": {}, "gateway": {}}
        bounded: dict[str, dict[int, bool]] = {"stock": {}, "minimal": {}}

        def ceiling_next(name: str) -> int | None:
            return next_rate(self.rates, held[name]) or next_rate(self.rates, bounded[name])

        step = 0
        while True:
            todo = [
                (name, rate)
                for name, rate in (
                    ("stock", ceiling_next("stock")),
                    ("minimal", ceiling_next("minimal")),
                    ("gateway", next_rate(self.rates, held["gateway"])),
                )
                if rate is not None
            ]
            if not todo:
                return stock, minimal, gateway
            shift = step % len(todo)
            for name, rate in todo[shift:] + todo[:shift]:
                if name == "gateway":
                    await asyncio.to_thread(self.pbx.up)
                    self.start_gateway()
                    try:
                        await self.wait_ready(http)
                        run = await self.gateway_run(http, "gateway", rate)
                    finally:
                        self.stop_gateway()
                    gateway.append(run)
                    held[name][rate] = sustains(asdict(run))
                    continue
                profile = "stock" if name == "stock" else "minimal"
                label = "ceiling-stock" if name == "stock" else "ceiling"
                run = await self.ceiling_once(label, profile, rate)
                (stock if name == "stock" else minimal).append(run)
                held[name][rate] = run.failed_pct < 0.5
                bounded[name][rate] = handover_bounded(asdict(run))
            step += 1
