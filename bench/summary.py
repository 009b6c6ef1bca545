"""Min / median / max of each figure over several `make bench` runs.

``python -m bench.summary bench-results/A.json bench-results/B.json ...``: the ceiling
(minimal and stock profiles), the gateway's sustained rate (under 0.5 % failed and
callback p99 under 500 ms) as a ratio to the ceiling of the same run, latency at half the
ceiling, creates per second, long-poll wake-ups, peak RSS, CPU per call and Asterisk's
RSS, each as min / median / max, so no figure rests on one run.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from bench.common import held_up_to
from bench.report import handover_bounded, sustains


def _best(runs: list[dict[str, Any]], ok: Any) -> dict[str, Any] | None:
    """The highest rate that held with every rate tried below it holding too."""
    return held_up_to(runs, ok)


def _ceiling_ok(r: dict[str, Any]) -> bool:
    return bool(r["failed"] / max(1, r["calls"]) < 0.005)


def figures(res: dict[str, Any]) -> dict[str, float | None]:
    loose = _best(res["ceiling"], _ceiling_ok)
    loose_stock = _best(res.get("ceiling_stock", []), _ceiling_ok)
    gateway = _best(res["gateway"], sustains)
    bounded = _best(res["ceiling"], handover_bounded)
    bounded_stock = _best(res.get("ceiling_stock", []), handover_bounded)
    half = next((g for g in res["gateway"] if g["rate"] == res["half_rate"]), None)

    def ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
        return round(a["rate"] / b["rate"], 2) if a and b and b["rate"] else None

    # The ceiling is the minimal app held to the gateway's bound (hand-over p99 under
    # 500 ms, under 0.5 % failed); under failures alone it is reported beside it.
    out: dict[str, float | None] = {
        "ceiling calls/s (minimal profile)": bounded["rate"] if bounded else None,
        "ceiling calls/s (stock profile)": bounded_stock["rate"] if bounded_stock else None,
        "ceiling minimal / stock": ratio(bounded, bounded_stock),
        "gateway sustained calls/s": gateway["rate"] if gateway else 0,
        "gateway sustained / ceiling": ratio(gateway, bounded) or 0.0,
        "half-ceiling rate": res["half_rate"],
        "ceiling, failures alone (minimal)": loose["rate"] if loose else None,
        "ceiling, failures alone (stock)": loose_stock["rate"] if loose_stock else None,
        "ceiling minimal / stock, failures alone": ratio(loose, loose_stock),
        "gateway sustained / ceiling by failures alone": ratio(gateway, loose),
    }
    if half:
        split = half.get("split") or {}
        out |= {
            "committed p99 at half (ms)": half["committed"]["p99"],
            "callback p99 at half (ms)": half["callback"]["p99"],
            "asterisk -> gateway p99 at half (ms)": (split.get("asterisk_to_gateway") or {}).get(
                "p99"
            ),
            "gateway CPU ms per call at half": round(10 * half["app_cpu"] / half["rate"], 2),
            "Asterisk CPU ms per call at half": round(10 * half["asterisk_cpu"] / half["rate"], 2),
            "portal CPU % at half": half.get("portal_cpu"),
        }
    if half:
        out["portal CPU ms per call at half"] = round(
            10 * (half.get("portal_cpu") or 0) / half["rate"], 2
        )
    # The ceiling app's run nearest half the ceiling (it runs the search's rates only).
    near = min(res["ceiling"], key=lambda r: abs(r["rate"] - res["half_rate"]), default=None)
    if near:
        # One label for every run (the rate nearest half moves with the ceiling), so
        # the runs line up in one row; the rate itself is a row of its own.
        out["ceiling app: rate nearest half the ceiling"] = near["rate"]
        out["ceiling app CPU ms per call there"] = round(10 * near["app_cpu"] / near["rate"], 2)
        out["ceiling app hand-over p99 there (ms)"] = (
            (near.get("split") or {}).get("handover") or {}
        ).get("p99")
    # Asterisk's CPU per call under the same app at the same rates, minimal and stock:
    # what the ceilings' 25 calls/s steps cannot resolve.
    for rate in (100, 200):
        mine = next((r for r in res["ceiling"] if r["rate"] == rate), None)
        stock = next((r for r in res.get("ceiling_stock", []) if r["rate"] == rate), None)
        if mine and stock and stock["asterisk_cpu"]:
            out[f"Asterisk CPU per call at {rate}/s, minimal / stock"] = round(
                mine["asterisk_cpu"] / stock["asterisk_cpu"], 3
            )
    for run, label in ((bounded, "minimal"), (bounded_stock, "stock")):
        # Since 2026-12-07 each rate runs on an Asterisk started afresh: its RSS after the
        # calls at its own ceiling rate (before, after every rate of the search).
        out[f"Asterisk RSS after its ceiling rate, {label} (MiB)"] = (
            run.get("asterisk_rss_mib") if run else None
        )
    creates = [g["creates_per_s"] for g in res["gateway"] if g.get("creates_per_s")]
    out["creates per second (best of the call runs)"] = max(creates) if creates else None
    if res.get("creates"):
        c = res["creates"]
        if c.get("tool") == "wrk":
            out["creates per second (on their own, wrk, median of 3 x 3 s)"] = c["median"]
            out["creates per second (on their own, aiohttp clients)"] = c["median_aiohttp"]
        else:
            out["creates per second (on their own, median of 3 x 5,000)"] = c["median"]
    for p in res.get("long_polls", []):
        out[f"{p['polls']:,} long polls woken, p99 (ms)"] = p["wake"]["p99"]
    m = res["memory"]
    out[f"peak RSS, {m['pending']:,} pending + {m['long_polls']:,} polls (MiB)"] = m["peak_rss_mib"]
    return out


def main(paths: list[str]) -> int:
    rows = [figures(json.loads(Path(p).read_text())) for p in paths]
    print(
        f"| figure | {' | '.join(f'run {i + 1}' for i in range(len(rows)))} | min / median / max |"
    )
    print("|---|" + "---|" * (len(rows) + 1))
    for key in rows[0]:
        values = [r.get(key) for r in rows]
        nums = [v for v in values if isinstance(v, int | float)]
        spread = f"{min(nums):g} / {statistics.median(nums):g} / {max(nums):g}" if nums else "-"
        print(f"| {key} | {' | '.join(str(v) for v in values)} | {spread} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
