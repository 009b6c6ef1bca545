"""The benchmark's report: machine details and the table of ratios."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

from bench.common import held_up_to
from ivr.devtools.pbx import LocalPbx


def machine(pbx: LocalPbx) -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    status = pbx.status()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "asterisk": status.version,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def table(results: dict[str, Any]) -> str:
    ceiling = {r["rate"]: r for r in results["ceiling"]}
    lines = [
        "run         | rate/s | ceiling cps (fail%) | cps (fail%) | ratio | committed p50/p99 ms "
        "| callback p50/p99 ms | CPU % ast/app (ceiling) | CPU % ast/gateways/pg/portal",
    ]
    runs = sorted(results["gateway"], key=lambda r: r["rate"])
    runs += results.get("postgres", [])
    for g in runs:
        c = ceiling.get(g["rate"])
        ratio = f"{g['cps'] / c['cps']:.2f}" if c and c["cps"] else "-"
        cf = 100 * c["failed"] / max(1, c["calls"]) if c else 0
        gf = 100 * g["failed"] / max(1, g["calls"])
        each = "+".join(str(x) for x in g.get("app_cpu_each") or [g["app_cpu"]])
        lines.append(
            f"{g['target']:<11} | {g['rate']:>6} | {(c['cps'] if c else 0):>8.1f} ({cf:.2f}%) | "
            f"{g['cps']:>8.1f} ({gf:.2f}%) | {ratio:>5} | "
            f"{g['committed']['p50']}/{g['committed']['p99']} | "
            f"{g['callback']['p50']}/{g['callback']['p99']} | "
            f"{c['asterisk_cpu'] if c else '-'}/{c['app_cpu'] if c else '-'} | "
            f"{g['asterisk_cpu']}/{each}/{g.get('store_cpu') or '-'}/{g.get('portal_cpu') or '-'}"
        )
    for p in results["long_polls"]:
        lines.append(
            f"long polls {p['polls']}: woken {p['woken']}, wake-up p50/p99 "
            f"{p['wake']['p50']}/{p['wake']['p99']} ms"
        )
    m = results["memory"]
    lines.append(
        f"memory: {m['pending']} pending + {m['long_polls']} long polls: peak RSS "
        f"{m['peak_rss_mib']} MiB (idle {m['idle_rss_mib']} MiB)"
    )
    if results.get("creates"):
        c = results["creates"]
        lines.append(
            f"creates on their own, 16 connections ({c.get('tool', 'aiohttp')}): {c['rounds']}"
            f" per second"
            + (
                f"; the benchmark's aiohttp clients: {c['rounds_aiohttp']}"
                if "rounds_aiohttp" in c
                else ""
            )
        )
    # The ceiling: the minimal app under 0.5 % failed with its hand-over p99 under
    # 500 ms (the gateway's bound); and under failures alone, as earlier runs had it.
    c_best = next(r for r in results["ceiling"] if r["rate"] == results["ceiling_rate"])
    loose = results.get("ceiling_rate_failures_only")
    for label in dict.fromkeys(r["target"] for r in runs):
        # Sustained: under 0.5 % failed and callback p99 under 500 ms (issue 15).
        g_best = held_up_to([g for g in runs if g["target"] == label], sustains)
        if g_best and c_best["rate"]:
            line = (
                f"sustained ({label}): {g_best['rate']}/s = "
                f"{g_best['rate'] / c_best['rate']:.2f} x the ceiling {c_best['rate']}/s"
            )
            if loose:
                line += f" ({g_best['rate'] / loose:.2f} x {loose}/s, failures alone)"
            lines.append(line)
    lines += ceilings(results)
    return "\n".join(lines)


def sustains(run: dict[str, Any]) -> bool:
    """Under 0.5 % of calls failed and the callbacks' p99 under 500 ms."""
    p99 = (run.get("callback") or {}).get("p99")
    return run["failed"] / max(1, run["calls"]) < 0.005 and p99 is not None and p99 < 500


def _sustained(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    return held_up_to(runs, lambda r: r["failed"] / max(1, r["calls"]) < 0.005)


def ceilings(results: dict[str, Any]) -> list[str]:
    """The minimal-module ceiling against the stock one, and each rate's hand-over
    (channel created -> StasisStart read by the minimal app)."""
    lines = []
    for key in ("ceiling", "ceiling_stock"):
        for r in sorted(results.get(key, []), key=lambda r: r["rate"]):
            h = (r.get("split") or {}).get("handover") or {}
            lines.append(
                f"{key:<13} {r['rate']:>4}/s: {r['ok']} ok, {r['failed']} failed; hand-over "
                f"p50/p99 {h.get('p50')}/{h.get('p99')} ms; CPU % asterisk {r['asterisk_cpu']}"
                f"; Asterisk RSS after {r.get('asterisk_rss_mib')} MiB"
            )
    bounded = []
    for key in ("ceiling", "ceiling_stock"):
        run = held_up_to(results.get(key, []), handover_bounded)
        bounded.append(run["rate"] if run else None)
    line = f"ceiling (hand-over p99 < 500 ms), minimal vs stock: {bounded[0]}/s vs {bounded[1]}/s"
    if bounded[0] and bounded[1]:
        line += f" = {bounded[0] / bounded[1]:.2f}x"
    lines.append(line)
    best, stock = _sustained(results["ceiling"]), _sustained(results.get("ceiling_stock", []))
    if best and stock and stock["rate"]:
        lines.append(
            f"ceiling by failures alone, minimal vs stock: {best['rate']}/s vs {stock['rate']}/s "
            f"= {best['rate'] / stock['rate']:.2f}x"
        )
    return lines


def handover_bounded(run: dict[str, Any]) -> bool:
    """A ceiling run under 0.5 % failed with its hand-over p99 under 500 ms too (the
    bound the gateway's callbacks are held to)."""
    p99 = ((run.get("split") or {}).get("handover") or {}).get("p99")
    return run["failed"] / max(1, run["calls"]) < 0.005 and p99 is not None and p99 < 500
