"""``make bench-cluster``: calls/s through Kamailio and two Asterisk nodes, against one node.

Each round measures, in the same run and at the same rising rates:

- **one node**: sipp -> one Asterisk -> two gateways (PostgreSQL), no edge: the baseline;
- **edge + two nodes**: sipp -> Kamailio -> two Asterisk nodes -> the same two gateways.

Every call is answered, hears a 1 s prompt and is released by the gateway; a call with
any other final response, or none, failed. "Sustained" is the highest rate with under
0.5 % failed. Each process's CPU is reported per call (ms of CPU per call), so what
Kamailio adds per call is read directly. Two Asterisks on two shared cores compete with
each other, the gateways and PostgreSQL: the edge is about spreading and surviving a node,
not about more calls from one machine. ``--rounds 3`` (the default) gives min / median /
max of each ratio, as docs/benchmarks.md reports every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import children_cpu, cpu_seconds, held_up_to, log
from ivr.config import load_settings
from ivr.devtools.cluster import LocalCluster
from ivr.devtools.postgres import LocalPostgres
from ivr.devtools.sipload import run_load
from ivr.devtools.synth import write_tones
from ivr.trunks import load_inventory

ROOT = Path(__file__).resolve().parents[1]
DID = "0355550601"
# Below the ephemeral port range (32768-60999).
PG_PORT = 25443
EDGE_PORT = 26070
API_PORT = 28581


def _node(name: str, offset: int, rtp: tuple[int, int]) -> str:
    # 5,000 RTP ports each: at 1 s prompts and 300 calls/s a node holds several hundred
    # calls at once, two ports each; 1,000 ports ran out at 200 calls/s (488 answers).
    return (
        f'name = "{name}"\nsip_port = {26060 + offset}\nhttp_port = {28588 + offset}\n'
        f"ami_port = {26038 + offset}\nrtp_start = {rtp[0]}\nrtp_end = {rtp[1]}\n"
        f'instance = "bnode-{name}"\n'
    )


NODE_A, NODE_B = _node("a", 100, (13000, 17999)), _node("b", 200, (18000, 22999))

CONFIG = """inventory = "{inventory}"
[asterisk]
app = "bench-1"
apps = ["bench-1", "bench-2"]
{nodes}
[edge]
enabled = {edge}
sip_port = {edge_port}
node_port = {node_port}
run_dir = "{work}/edge"
# The benchmark's caller is sipp on loopback, a trusted carrier: no flood limit applies.

[calls]
prompts_dir = "{tones}"
asterisk_prompts_dir = "/ivr/bcluster/sounds"

[api]
port = {api_port}

[limits]
calls_per_caller_per_minute = 0

[log]
level = "warning"
"""


def _config(work: Path, edge: bool, tones: Path) -> Path:
    inventory = work / "trunks.toml"
    inventory.write_text(
        '[[trunks]]\nname = "carrier"\nmatch = ["127.0.0.1"]\ntrusted = true\n'
        f'[[trunks.dids]]\nnumber = "{DID}"\nanswer_mode = "answer"\n'
    )
    nodes = f"\n[[nodes]]\n{NODE_A}" + (f"\n[[nodes]]\n{NODE_B}" if edge else "")
    path = work / ("edge.toml" if edge else "direct.toml")
    path.write_text(
        CONFIG.format(
            inventory=inventory,
            nodes=nodes,
            edge="true" if edge else "false",
            edge_port=EDGE_PORT,
            node_port=EDGE_PORT + 1,
            work=work,
            tones=tones,
            api_port=API_PORT,
        )
    )
    return path


def _pids(cluster: LocalCluster) -> dict[str, int]:
    pids = {f"asterisk-{n}": p.pid() for n, p in cluster.nodes.items()}
    pids |= {gw.app: gw.pid() for gw in cluster.gateways}
    if cluster.edge is not None:
        pids["kamailio"] = cluster.edge.pid()
    return {k: v for k, v in pids.items() if v is not None}


def _cpu(pids: dict[str, int], pg_pid: int) -> dict[str, float]:
    out = {
        name: (children_cpu(pid) if name == "kamailio" else cpu_seconds(pid))
        for name, pid in pids.items()
    }
    out["postgres"] = children_cpu(pg_pid)
    return out


async def _phase(
    label: str, work: Path, config: Path, url: str, pg_pid: int, rates: list[int], seconds: float
) -> list[dict[str, Any]]:
    settings = load_settings(config, environ={})
    cluster = LocalCluster(
        settings, load_inventory(settings.inventory), config, {"IVR_STORE_URL": url}, say=log
    )
    target = (
        ("127.0.0.1", EDGE_PORT)
        if settings.edge.enabled
        else ("127.0.0.1", settings.nodes[0].sip_port)
    )
    runs = []
    n = 0
    try:
        cluster.up()
        pids = _pids(cluster)
        for rate in rates:
            calls = int(rate * seconds)
            callers = [f"090{n + i:08d}" for i in range(calls)]
            n += calls
            before, wall = _cpu(pids, pg_pid), time.monotonic()
            result = await run_load(work / f"{label}-{rate}", target, DID, callers, rate)
            after, wall = _cpu(pids, pg_pid), time.monotonic() - wall
            ok = result.statuses.get(200, 0)
            failed = calls - ok
            run = {
                "setup": label,
                "rate": rate,
                "calls": calls,
                "failed": failed,
                "failed_pct": round(100 * failed / calls, 2),
                "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
                "lost": len(result.lost),
                "cpu_ms_per_call": {
                    k: round(1000 * (after[k] - before[k]) / calls, 3) for k in after
                },
                "cpu_pct": {k: round(100 * (after[k] - before[k]) / wall, 1) for k in after},
            }
            log(
                f"{label} {rate}/s: {failed} of {calls} failed; CPU ms/call "
                + ", ".join(f"{k} {v}" for k, v in run["cpu_ms_per_call"].items())
            )
            runs.append(run)
            if run["failed_pct"] >= 5:
                break  # past the ceiling: higher rates only collapse further
            await asyncio.sleep(3)  # the last calls' prompts end
    finally:
        cluster.down()
    return runs


def sustained(runs: list[dict[str, Any]]) -> int:
    best = held_up_to(runs, lambda r: r["failed_pct"] < 0.5)
    return int(best["rate"]) if best else 0


async def round_(work: Path, rates: list[int], seconds: float) -> dict[str, Any]:
    tones = write_tones(work / "tones", 1.0)
    pg = LocalPostgres(work / "pg", PG_PORT, fast=False)
    pg.up()
    pg_pid = int((pg.data / "postmaster.pid").read_text().split()[0])
    try:
        direct = await _phase(
            "one-node",
            work,
            _config(work, False, tones),
            pg.create_database("direct"),
            pg_pid,
            rates,
            seconds,
        )
        edge = await _phase(
            "edge-two-nodes",
            work,
            _config(work, True, tones),
            pg.create_database("edge"),
            pg_pid,
            rates,
            seconds,
        )
    finally:
        pg.destroy()
    base, through = sustained(direct), sustained(edge)
    # Kamailio's CPU per call at the highest rate both sustained.
    common = min(base, through)
    at = next((r for r in edge if r["rate"] == common), None)
    return {
        "one_node": direct,
        "edge_two_nodes": edge,
        "sustained_one_node": base,
        "sustained_edge": through,
        "ratio": round(through / base, 2) if base else None,
        "kamailio_cpu_ms_per_call": at["cpu_ms_per_call"].get("kamailio") if at else None,
        "lost_through_edge": sum(r["lost"] for r in edge),
    }


def summary(rounds: list[dict[str, Any]]) -> str:
    def mmm(values: list[float]) -> str:
        return f"{min(values)} / {statistics.median(values)} / {max(values)}"

    lines = ["", "round  one node  edge+2 nodes  ratio  kamailio ms CPU/call  lost"]
    for i, r in enumerate(rounds, 1):
        lines.append(
            f"{i:>5}  {r['sustained_one_node']:>6}/s  {r['sustained_edge']:>10}/s  "
            f"{r['ratio']!s:>5}  {r['kamailio_cpu_ms_per_call']!s:>19}  {r['lost_through_edge']:>4}"
        )
    ratios = [r["ratio"] for r in rounds if r["ratio"] is not None]
    kam = [
        r["kamailio_cpu_ms_per_call"] for r in rounds if r["kamailio_cpu_ms_per_call"] is not None
    ]
    if ratios:
        lines.append(f"ratio edge/one node, min / median / max: {mmm(ratios)}")
    if kam:
        lines.append(f"kamailio ms CPU per call, min / median / max: {mmm(kam)}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="100,150,200,250,300")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    args = parser.parse_args()
    for tool in ("sipp", "kamailio"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} is missing (make deps)", file=sys.stderr)
            return 2
    rates = [int(r) for r in args.rates.split(",")]
    rounds = []
    for i in range(args.rounds):
        log(f"round {i + 1} of {args.rounds}")
        with tempfile.TemporaryDirectory(prefix="ivr-bench-cluster-", dir="/var/tmp") as tmp:
            os.chmod(tmp, 0o755)  # PostgreSQL runs as its own user, inside it
            rounds.append(asyncio.run(round_(Path(tmp), rates, args.seconds)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / time.strftime("cluster-%Y%m%d-%H%M%S.json")
    path.write_text(json.dumps(rounds, indent=2))
    print(summary(rounds))
    print(f"bench: results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
