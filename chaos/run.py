"""`make chaos`: faults under load, and hostile input, each a row of a table.

Built on the benchmark's pieces (bench/run.py: the local Asterisk, a gateway process on
SQLite, the local portal, sipp at a steady rate). Each fault row creates a verification
per caller, calls at a steady rate, injects the fault in the middle, and then counts:

- false verifications: a verified one whose calling number is not its phone number;
- verified without a callback at the portal (after the gateway had time to deliver);
- duplicate deliveries: a verification delivered under more than one webhook-id;
- how long the gateway's CPU took to fall back under 5 % after the fault.

Loopback only, every load bounded; needs root (the chroot Asterisk), like the bench.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import PORTAL_PORT, TOKEN, Portal, cpu_seconds, log
from bench.run import DID, Bench
from ivr.devtools.sipcall import CallSpec, place_call
from ivr.numbers import normalize


@dataclass
class Row:
    fault: str
    expected: str
    measured: str
    ok: bool


class CountingPortal(Portal):
    """Also keeps every webhook-id per verification, and keeps what it received across
    an outage (the portal process is stopped and started again)."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[str, set[str]] = {}
        self._before: dict[str, float] = {}  # received by the portal's earlier processes

    async def fetch(self) -> dict[str, float]:
        got = await super().fetch()
        self.received = {**got, **self._before}  # the first delivery counts
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{PORTAL_PORT}/ids") as resp,
        ):
            for vid, ids in (await resp.json()).items():
                self.ids.setdefault(vid, set()).update(ids)
        return self.received

    async def stop(self) -> None:
        if self.proc is not None:
            self._before = dict(await self.fetch())
        await super().stop()


class Chaos(Bench):
    def __init__(self, work: Path, calls: int, rate: int) -> None:
        super().__init__(work, seconds=calls / rate, rates=[rate], postgres=False)
        self.calls, self.rate = calls, rate
        self.portal = CountingPortal()

    # -- measuring ----------------------------------------------------------------------

    def verified(self, ids: list[str]) -> list[tuple[str, str, str]]:
        """(id, phone number, caller number as received) of those of ``ids`` verified."""
        db = sqlite3.connect(f"file:{self.store_path}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT id, phone_number, caller_number FROM verifications"
                " WHERE status = 'verified'"
            ).fetchall()
        finally:
            db.close()
        wanted = set(ids)
        return [r for r in rows if r[0] in wanted]

    async def cpu_back(self, limit: float = 5.0, within: float = 15.0) -> float | None:
        """Seconds until the gateway's CPU over one second is under ``limit`` %."""
        started = time.monotonic()
        while time.monotonic() - started < within:
            pid = self.gateway_pid
            c0, t0 = cpu_seconds(pid), time.monotonic()
            await asyncio.sleep(1.0)
            if 100 * (cpu_seconds(pid) - c0) / (time.monotonic() - t0) < limit:
                return round(time.monotonic() - started, 1)
        return None

    async def outcome(
        self, fault: str, ids: list[str], wait_callbacks: float = 20.0
    ) -> tuple[dict[str, Any], bool]:
        verified = self.verified(ids)
        false = [v for v in verified if normalize(v[2]) != v[1]]
        deadline = time.monotonic() + wait_callbacks
        while time.monotonic() < deadline:
            await self.portal.fetch()
            if all(v[0] in self.portal.received for v in verified):
                break
            await asyncio.sleep(0.5)
        missing = [v for v in verified if v[0] not in self.portal.received]
        dup = [vid for vid, ids in self.portal.ids.items() if len(ids) > 1]
        cpu = await self.cpu_back()
        figures = {
            "verified": len(verified),
            "false": len(false),
            "no_callback": len(missing),
            "duplicates": len(dup),
            "cpu_under_5pct_after_s": cpu,
        }
        ok = not false and not missing and not dup and cpu is not None and cpu <= 10.0
        log(f"{fault}: {figures}")
        return figures, ok

    async def under_load(
        self, http: aiohttp.ClientSession, fault: str, inject: Any, at: float
    ) -> Row:
        """Calls at the steady rate; ``inject()`` ``at`` seconds in; then the counts."""
        callers = self.callers(self.calls)
        ids, _ = await self.create(http, callers)
        sipp = asyncio.create_task(self.sipp(self.rate, callers))
        await asyncio.sleep(at)
        await inject()
        ok_calls, failed_calls, _ = await sipp
        await self.wait_ready(http)
        figures, ok = await self.outcome(fault, ids)
        figures.update({"calls_ok": ok_calls, "calls_failed": failed_calls})
        return Row(
            fault,
            "0 false, 0 verified without callback, 0 duplicates, CPU < 5 % within 10 s",
            ", ".join(f"{k} {v}" for k, v in figures.items()),
            ok,
        )

    # -- the rows -----------------------------------------------------------------------

    async def gateway_sigkill(self, http: aiohttp.ClientSession) -> Row:
        async def inject() -> None:
            proc, _ = self.gateways[0]
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            self.gateways = []
            self.start_gateway(fresh=False)

        return await self.under_load(http, "gateway SIGKILL mid-load", inject, 4.0)

    async def asterisk_sigkill(self, http: aiohttp.ClientSession) -> Row:
        async def inject() -> None:
            pid = self.pbx.pid()
            if pid:
                os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(self.pbx.up)

        return await self.under_load(http, "Asterisk SIGKILL mid-load", inject, 4.0)

    async def asterisk_sigstop(self, http: aiohttp.ClientSession) -> Row:
        async def inject() -> None:
            pid = self.pbx.pid()
            assert pid
            os.kill(pid, signal.SIGSTOP)
            await asyncio.sleep(5.0)
            os.kill(pid, signal.SIGCONT)

        return await self.under_load(http, "Asterisk SIGSTOP 5 s mid-load", inject, 3.0)

    async def portal_outage(self, http: aiohttp.ClientSession) -> Row:
        await self.portal.stop()
        callers = self.callers(self.calls)
        ids, _ = await self.create(http, callers)
        await self.sipp(self.rate, callers)
        await asyncio.sleep(5.0)  # down a while after the last call, too
        recovered = time.time()
        await self.portal.start()
        verified = {v[0] for v in self.verified(ids)}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not verified <= set(await self.portal.fetch()):  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        late = [self.portal.received[v] - recovered for v in verified if v in self.portal.received]
        missing = len(verified - set(self.portal.received))
        last = round(max(late), 1) if late else None
        ok = missing == 0 and last is not None and last <= 5.0
        return Row(
            "portal down through a load, then back",
            "every callback delivered within 5 s of the portal's recovery",
            f"verified {len(verified)}, missing {missing}, last delivered {last} s after",
            ok,
        )

    async def sqlite_read_only(self, http: aiohttp.ClientSession) -> Row:
        """The store's files made immutable (``chattr +i``: even root cannot write) for
        4 s while calls come in, then writable again."""
        files = [str(self.store_path), f"{self.store_path}-wal"]
        callers = self.callers(self.calls)
        ids, _ = await self.create(http, callers)
        sipp = asyncio.create_task(self.sipp(self.rate, callers))
        await asyncio.sleep(3.0)
        await _run("chattr", "+i", *files)
        try:
            await asyncio.sleep(1.0)
            async with http.post(
                f"{self.api}/v1/verifications", json={"phone_number": "09099998888"}
            ) as resp:
                during = resp.status
            await asyncio.sleep(3.0)
        finally:
            await _run("chattr", "-i", *files)
        await sipp
        await asyncio.sleep(3.0)
        async with http.post(
            f"{self.api}/v1/verifications", json={"phone_number": "09099998877"}
        ) as resp:
            after = resp.status
        told = set()  # calls the gateway decided as verified (and so told the caller)
        for line in (self.work / "gateway.log").read_text().splitlines():
            if '"call_decided"' in line and '"outcome": "verified"' in line:
                told.add(json.loads(line).get("verification_id"))
        stored = {v[0] for v in self.verified(ids)}
        db = sqlite3.connect(f"file:{self.store_path}?mode=ro", uri=True)
        try:
            integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
            no_event = db.execute(
                "SELECT count(*) FROM verifications v WHERE status <> 'pending' AND NOT EXISTS"
                " (SELECT 1 FROM outbox o WHERE o.verification_id = v.id)"
            ).fetchone()[0]
        finally:
            db.close()
        told_not_stored = len((told & set(ids)) - stored)
        ok = (
            during == 503 and after == 201 and told_not_stored == 0
            and integrity == "ok" and no_event == 0
        )  # fmt: skip
        return Row(
            "SQLite files read-only 4 s mid-load",
            "API 503 meanwhile; no call told verified that was not stored; nothing half"
            " written; writes again after",
            f"create meanwhile {during}, after {after}; told verified but not stored "
            f"{told_not_stored}; integrity {integrity}; terminal without event {no_event};"
            f" verified {len(stored)}",
            ok,
        )

    async def hostile_identities(self, http: aiohttp.ClientSession) -> Row:
        a = self.settings.asterisk
        phone = "09011112222"
        ids, _ = await self.create(http, [phone])
        specs: list[dict[str, Any]] = [
            {"anonymous": True, "pai": "tel:+819011112222"},
            {"caller": "anonymous", "pai": "tel:+819011112222"},
            {"caller": f"184{phone}"},
            {"caller": f"{phone}%00999"},
            {"caller": phone, "headers": ("Privacy: none", "Privacy: id")},
            {"caller": phone, "privacy": "id"},
            {"caller": phone, "rpid": f"<sip:{phone}@127.0.0.1>;privacy=uri"},
            {"caller": "0312345678", "pai": "tel:+819011112222", "source_ip": "127.0.0.2"},
            {"caller": phone, "display": "Coin line/payphone"},
        ]
        for spec in specs:
            await place_call(CallSpec(did=DID, target_host=a.host, target_port=a.sip_port, **spec))
        verified = self.verified(ids)
        return Row(
            f"{len(specs)} calls with hostile caller identities",
            "none verifies",
            f"{len(verified)} verified",
            not verified,
        )

    async def fuzz(self) -> Row:
        from chaos.fuzz import serve_and_fuzz

        code = await serve_and_fuzz(int(os.environ.get("FUZZ_EXAMPLES", "100")))
        return Row(
            "schemathesis, every check, /openapi.json",
            "no failure (no 5xx, documented answers)",
            f"exit {code}",
            code == 0,
        )

    async def run_all(self) -> list[Row]:
        await asyncio.to_thread(self.pbx.up)
        await self.portal.start()
        rows: list[Row] = []
        try:
            self.start_gateway()
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
                await self.wait_ready(http)
                for row in (
                    self.gateway_sigkill,
                    self.asterisk_sigkill,
                    self.asterisk_sigstop,
                    self.portal_outage,
                    self.sqlite_read_only,
                    self.hostile_identities,
                ):
                    try:
                        rows.append(await row(http))
                    except Exception as exc:  # a row that could not run is a failed row
                        rows.append(Row(row.__name__, "runs", f"error: {exc!r}"[:200], False))
                    await asyncio.sleep(2)
        finally:
            self.stop_gateway()
            await self.portal.stop()
            await asyncio.to_thread(self.pbx.down)
        rows.append(await self.fuzz())
        return rows


async def _run(*cmd: str) -> None:
    proc = await asyncio.create_subprocess_exec(*cmd)
    if await proc.wait() != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed")


def table(rows: list[Row]) -> str:
    lines = ["| fault | expected | measured | holds |", "|---|---|---|---|"]
    lines += [
        f"| {r.fault} | {r.expected} | {r.measured} | {'yes' if r.ok else 'NO'} |" for r in rows
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=150, help="calls per fault row")
    parser.add_argument("--rate", type=int, default=15, help="calls per second")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ivr-chaos-") as tmp:
        rows = asyncio.run(Chaos(Path(tmp), args.calls, args.rate).run_all())
    print(table(rows))
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
