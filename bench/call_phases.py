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

from bench.common import Run, children_cpu, cpu_seconds, log, next_rate, pct, rss_kib
from bench.report import handover_bounded
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

    async def ceiling(self, label: str = "ceiling") -> list[Run]:
        a = self.settings.asterisk
        # What the gateway hands a verified call on the bench's answer-mode DID.
        extension = release.extension(
            AnswerMode.ANSWER, "ja", Outcome.VERIFIED, self.settings.calls.cause(Outcome.VERIFIED)
        )
        latencies = self.work / f"{label}-handover.json"
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
        app.stdout.readline()  # "ready"
        runs: list[Run] = []
        # Two searches over one set of runs: under 0.5 % failed (the ceiling), and
        # that with the hand-over p99 under 500 ms too (the bound the gateway is held to).
        held: dict[int, bool] = {}
        bounded: dict[int, bool] = {}
        try:
            while (
                rate := next_rate(self.rates, held) or next_rate(self.rates, bounded)
            ) is not None:
                calls = int(rate * self.seconds)
                run = Run(label, rate, calls)
                started = time.time()
                await self.measured_sipp(run, [app.pid], self.callers(calls))
                until = time.time()
                await asyncio.sleep(3)  # let the last calls and channels clear
                run.asterisk_rss_mib = round(rss_kib(self.pbx.pid() or 0, "VmRSS") / 1024, 1)
                # The hand-over (channel created -> StasisStart read) of this rate's calls:
                # the same split the gateway logs as stasis_ms.
                app.send_signal(signal.SIGUSR1)
                await asyncio.sleep(0.5)
                pairs = json.loads(latencies.read_text()) if latencies.exists() else []
                run.split = {"handover": pct([h for at, h in pairs if started <= at <= until])}
                p99 = run.split["handover"]["p99"]
                log(
                    f"{label} {rate}/s: {run.ok} ok, {run.failed} failed, "
                    f"asterisk {run.asterisk_cpu}%, app {run.app_cpu}%, hand-over p99 {p99} ms"
                )
                runs.append(run)
                held[rate] = run.failed_pct < 0.5
                bounded[rate] = handover_bounded(asdict(run))
        finally:
            app.send_signal(signal.SIGTERM)
            app.wait(10)
        return runs

    async def stock_ceiling(self) -> list[Run]:
        """The same ceiling on Asterisk's stock module set, for comparison; then back."""
        stock = replace(self.settings, asterisk={"profile": "stock"})
        pbx = LocalPbx(stock, load_inventory(stock.inventory))
        await asyncio.to_thread(pbx.up)
        try:
            return await self.ceiling("ceiling-stock")
        finally:
            await asyncio.to_thread(self.pbx.up)
