"""Installed, not checked out: the wheel in a fresh virtualenv serves a real call.

The gateway is built with ``pip wheel``, installed non-editable into a new virtualenv,
and started with ``ivr serve --config FILE`` from an unrelated working directory, so
nothing may come from the source checkout: prompts and defaults are package data, and
the relative paths in the settings file resolve against that file.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from ivr.devtools.pbx import LocalPbx
from tests.conftest import AUTH, DATA, LOG_FILES, Call
from tests.portal import free_port, wait_ready

REPO = Path(__file__).resolve().parents[2]


def _run(*cmd: str | Path, cwd: Path | None = None) -> None:
    result = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The gateway built as a wheel and installed (not editable) into a new virtualenv."""
    tmp = tmp_path_factory.mktemp("wheel")
    dist, venv = tmp / "dist", tmp / "venv"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, REPO)
    [wheel] = dist.glob("ivr_phone_auth-*.whl")
    _run(sys.executable, "-m", "venv", venv)
    _run(venv / "bin" / "pip", "install", "-q", wheel)
    return venv


async def test_the_installed_wheel_serves_a_real_call(
    pbx: LocalPbx, tmp_path: Path, call: Call, venv: Path
) -> None:
    conf, elsewhere = tmp_path / "conf", tmp_path / "elsewhere"
    for d in (conf, elsewhere):
        d.mkdir()

    port = free_port()
    test_toml = (DATA / "test.toml").read_text()
    # The test settings with their relative inventory, plus a relative store path.
    (conf / "ivr.toml").write_text(
        test_toml.replace("[api]\n", f"[api]\nport = {port}\n")
        + '\n[store]\npath = "state/ivr.sqlite3"\n'
    )
    # Only early-media DIDs, so every call hears its prompt.
    dids = "".join(f'[[trunks.dids]]\nnumber = "035555000{i}"\n' for i in (1, 2, 3))
    (conf / "trunks.test.toml").write_text(
        f'[[trunks]]\nname = "carrier"\nmatch = ["127.0.0.1"]\ntrusted = true\n{dids}'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env["IVR_LOG_FORMAT"] = "json"
    log = tmp_path / "serve.log"
    LOG_FILES.append(log)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [venv / "bin" / "ivr", "serve", "--config", conf / "ivr.toml"],
            cwd=elsewhere,
            env=env,
            stdout=out,
            stderr=out,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        ready = await wait_ready(url, lambda: proc.poll() is None)
        assert ready, log.read_text()[-3000:]
        async with aiohttp.ClientSession(headers=AUTH) as http:
            async with http.post(
                f"{url}/v1/verifications", json={"phone_number": "090-1234-5678"}
            ) as resp:
                assert resp.status == 201, await resp.text()
                v = await resp.json()
            result = await call(v["dial_number"]["national"].replace("-", ""), caller="09012345678")
            async with http.get(f"{url}/v1/verifications/{v['id']}", params={"wait": "5"}) as r:
                done = await r.json()
        assert done["status"] == "verified", log.read_text()[-3000:]
        assert result.audio_seconds > 1.0  # the installed prompt was played
        assert (conf / "state" / "ivr.sqlite3").exists()  # beside the settings file
        assert not (elsewhere / "state").exists()
        installed = subprocess.run(
            [venv / "bin" / "python", "-c", "import ivr; print(ivr.__file__)"],
            cwd=elsewhere,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert str(venv) in installed and str(REPO) not in installed
    finally:
        proc.terminate()
        proc.wait(10)


UNIT = REPO / "deploy" / "systemd" / "ivr.service"


def _unit(path: Path) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def test_systemd_analyze_verifies_the_unit(tmp_path: Path, venv: Path) -> None:
    """The unit as shipped, with ExecStart pointing at where the wheel is installed."""
    unit = tmp_path / "ivr.service"
    unit.write_text(UNIT.read_text().replace("/opt/ivr/bin/ivr", str(venv / "bin" / "ivr")))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    # Anything said about our unit is a problem (on this machine it says nothing at all).
    problems = [line for line in (done.stdout + done.stderr).splitlines() if "ivr.service" in line]
    assert done.returncode == 0 and problems == [], done.stdout + done.stderr


async def test_the_unit_command_line_serves_and_speaks_sd_notify(
    pbx: LocalPbx, tmp_path: Path, venv: Path
) -> None:
    """ExecStart and Environment of the unit, run from the installed wheel: READY=1 once
    the API listens, RELOADING=1 then READY=1 on ExecReload (SIGHUP), STOPPING=1 and a
    clean exit on stop."""
    import signal
    import socket

    unit = _unit(UNIT)
    [exec_start] = unit["ExecStart"]
    argv = exec_start.replace("/opt/ivr/bin/ivr", str(venv / "bin" / "ivr")).split()
    port = free_port()
    conf = tmp_path / "ivr.toml"
    conf.write_text((DATA / "test.toml").read_text().replace("[api]\n", f"[api]\nport = {port}\n"))
    (tmp_path / "trunks.test.toml").write_text((DATA / "trunks.test.toml").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    for item in unit["Environment"]:
        key, _, value = item.partition("=")
        env[key] = value
    # Where systemd would point them (ConfigurationDirectory, StateDirectory).
    env["IVR_CONFIG"] = str(conf)
    env["IVR_STORE_PATH"] = str(tmp_path / "state" / "ivr.sqlite3")
    (tmp_path / "state").mkdir()
    notify = tmp_path / "notify.sock"
    env["NOTIFY_SOCKET"] = str(notify)
    log = tmp_path / "unit.log"
    LOG_FILES.append(log)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(notify))
        sock.settimeout(20)
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=out, stderr=out)
        try:
            ready = await asyncio.to_thread(sock.recv, 200)
            assert ready.startswith(b"READY=1"), ready
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    assert resp.status == 200
            proc.send_signal(signal.SIGHUP)  # ExecReload
            assert await asyncio.to_thread(sock.recv, 200) == b"RELOADING=1"
            assert await asyncio.to_thread(sock.recv, 200) == b"READY=1"
            proc.terminate()
            assert await asyncio.to_thread(sock.recv, 200) == b"STOPPING=1"
            assert proc.wait(15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    assert "inventory_reloaded" in {x.get("event") for x in lines}  # JSON, as the unit says
