"""Installed, not checked out: the wheel in a fresh virtualenv serves a real call.

The gateway is built with ``pip wheel``, installed non-editable into a new virtualenv,
and started with ``ivr serve --config FILE`` from an unrelated working directory, so
nothing may come from the source checkout: prompts and defaults are package data, and
the relative paths in the settings file resolve against that file.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp

from ivr.devtools.pbx import LocalPbx
from tests.conftest import AUTH, DATA, LOG_FILES, Call
from tests.portal import free_port

REPO = Path(__file__).resolve().parents[2]


def _run(*cmd: str | Path, cwd: Path | None = None) -> None:
    result = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]


async def test_the_installed_wheel_serves_a_real_call(
    pbx: LocalPbx, tmp_path: Path, call: Call
) -> None:
    dist, venv, conf, elsewhere = (tmp_path / d for d in ("dist", "venv", "conf", "elsewhere"))
    for d in (conf, elsewhere):
        d.mkdir()
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, REPO)
    [wheel] = dist.glob("ivr_phone_auth-*.whl")
    _run(sys.executable, "-m", "venv", venv)
    _run(venv / "bin" / "pip", "install", "-q", wheel)

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
        async with aiohttp.ClientSession(headers=AUTH) as http:
            for _ in range(150):
                try:
                    async with http.get(f"{url}/readyz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert proc.poll() is None, log.read_text()[-3000:]
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"never ready: {log.read_text()[-3000:]}")
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
