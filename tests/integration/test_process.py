"""The gateway as a process: start-up errors, SIGKILL, lost channels, Asterisk restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ivr.asterisk.ari import AriClient
from ivr.devtools.pbx import LocalPbx
from tests.conftest import AUTH, DATA, LOG_FILES, Call, MakeGateway
from tests.portal import free_port, wait_ready

IVR = [sys.executable, "-m", "ivr"]


def run_ivr(
    args: list[str], env: dict[str, str], timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        IVR + args,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize(
    ("config", "env", "key"),
    [
        ("[api]\nprot = 8080\n", {}, "api.prot"),
        ("", {"IVR_API_PORT": "70000"}, "api.port"),
        ("", {"IVR_ASTERISK_HTTP_PORT": "1"}, "asterisk.http_port"),  # nothing answers there
        ("", {"IVR_STORE_URL": "postgresql://ivr:hunter2@127.0.0.1:1/ivr"}, "store.url"),
        ("[store]\nurl = 'mysql://x/y'\n", {}, "store.url"),
    ],
)
def test_bad_setting_stops_startup_with_one_clear_line(
    tmp_path: Path, config: str, env: dict[str, str], key: str
) -> None:
    cfg = tmp_path / "ivr.toml"
    cfg.write_text(config)
    result = run_ivr(
        ["--config", str(cfg), "serve"], {"IVR_STORE_PATH": str(tmp_path / "s.db"), **env}
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ivr: configuration error: " + key), lines[0]
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr  # a password never reaches the terminal


class ServeProcess:
    """``ivr serve`` as its own process, on the test settings and the session's Asterisk;
    ``env`` adds settings (another Stasis app, a PostgreSQL store, ...)."""

    def __init__(
        self, tmp_path: Path, name: str = "serve", env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "IVR_CONFIG": str(DATA / "test.toml"),
            "IVR_STORE_PATH": str(tmp_path / "ivr.sqlite3"),
            "IVR_API_PORT": str(self.port),
            "IVR_LOG_FORMAT": "json",
            "IVR_INVENTORY": str(self._answer_only_inventory(tmp_path)),
            **(env or {}),
        }
        self.log = tmp_path / f"{name}.log"
        LOG_FILES.append(self.log)  # scanned for secrets at the end of the session
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    @staticmethod
    def _answer_only_inventory(tmp_path: Path) -> Path:
        """The carrier trunk with its answer-mode DIDs only (calls here are answered)."""
        dids = "".join(
            f'[[trunks.dids]]\nnumber = "{n}"\nanswer_mode = "answer"\n'
            for n in ("0355550001", "0355550002", "0355550003")
        )
        path = tmp_path / "trunks.toml"
        path.write_text(
            f'[[trunks]]\nname = "carrier"\nmatch = ["127.0.0.1"]\ntrusted = true\n{dids}'
        )
        return path

    async def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(IVR + ["serve"], env=self.env, stdout=log, stderr=log)
        proc = self.proc
        if not await wait_ready(self.url, lambda: proc.poll() is None, tries=100):
            raise AssertionError(f"gateway did not get ready: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def serve(pbx: LocalPbx, tmp_path: Path) -> Iterator[ServeProcess]:
    proc = ServeProcess(tmp_path)
    yield proc
    proc.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=AUTH) as s:
        yield s


async def _json(resp: Any) -> Any:
    async with resp as r:
        assert r.status < 300, await r.text()
        return await r.json()


async def test_sigkill_loses_nothing_and_lost_channels_are_released(
    serve: ServeProcess, http: aiohttp.ClientSession, call: Call
) -> None:
    await serve.start()
    base = f"{serve.url}/v1/verifications"
    a = await _json(http.post(base, json={"phone_number": "09012340001"}))
    b = await _json(http.post(base, json={"phone_number": "09012340002"}))
    c = await _json(http.post(base, json={"phone_number": "09012340003"}))
    await call(a["dial_number"]["e164"], caller="09012340001")
    # Verify B, and kill the gateway the moment B is committed: the call is the
    # dialplan's by then, so its prompt plays and it ends as usual without the gateway.
    call_b = asyncio.create_task(call(b["dial_number"]["e164"], caller="09012340002"))
    got = await _json(http.get(f"{base}/{b['id']}", params={"wait": "10"}))
    assert got["status"] == "verified"
    serve.kill()
    killed_at = time.time()
    result_b = await asyncio.wait_for(call_b, 30)
    assert result_b.answered and result_b.bye_received and result_b.audio_seconds > 1
    assert result_b.bye_at is not None and result_b.bye_at - killed_at < 10
    # A call that reaches a gateway which then dies before deciding it (frozen, then
    # killed) is left in the Stasis app: the next gateway releases it on connect,
    # long before the dialplan's 60 s guard, without answering it.
    await serve.start()
    assert serve.proc is not None
    serve.proc.send_signal(signal.SIGSTOP)
    call_d = asyncio.create_task(call("0355550003", caller="09012340004"))
    await asyncio.sleep(1.5)  # the channel waits in the app of the frozen gateway
    serve.kill()
    await serve.start()
    restarted_at = time.time()
    result_d = await asyncio.wait_for(call_d, 30)
    assert result_d.final is not None and not result_d.answered
    assert result_d.responses[-1].at - restarted_at < 10
    assert "orphan_channel_released" in serve.log.read_text()
    for v, status in ((a, "verified"), (b, "verified"), (c, "pending")):
        now = await _json(http.get(f"{base}/{v['id']}"))
        assert now["status"] == status
        assert now["dial_number"] == v["dial_number"]
    # The pending one still verifies after the restarts.
    await call(c["dial_number"]["e164"], caller="09012340003")
    assert (await _json(http.get(f"{base}/{c['id']}")))["status"] == "verified"


def test_the_local_asterisk_runs_on_jemalloc(pbx: LocalPbx) -> None:
    """The minimal profile's allocator (ivr.devtools.pbx.JEMALLOC) is the one in use."""
    pid = pbx.pid()
    assert pid is not None
    maps = Path(f"/proc/{pid}/maps").read_text()
    assert "/libjemalloc.so.2" in maps


async def test_gateway_reconnects_after_asterisk_restarts(
    pbx: LocalPbx, make_gateway: MakeGateway, call: Call
) -> None:
    gw = await make_gateway(dids=["0355550001"], short=True)
    assert (await gw.client.get("/readyz")).status == 200
    await asyncio.to_thread(pbx.down)
    for _ in range(50):
        if (await gw.client.get("/readyz")).status == 503:
            break
        await asyncio.sleep(0.1)
    assert (await gw.client.get("/readyz")).status == 503
    await asyncio.sleep(3.0)  # down long enough for a growing backoff to show
    await asyncio.to_thread(pbx.up)  # returns once ARI answers
    ari_answers = time.monotonic()
    await asyncio.wait_for(gw.parts.ari.connected.wait(), 15)
    # Reconnect attempts are at most 0.5 s apart (they were up to 5 s): callers in the
    # gap after a restart get 503 for half a second, not several.
    assert time.monotonic() - ari_answers < 1.0
    assert gw.parts.ari.connects >= 2
    v = await gw.create("09012349999")
    await call("0355550001", caller="09012349999")
    assert (await gw.get(v["id"]))["status"] == "verified"


async def test_gateway_notices_a_frozen_asterisk_and_recovers(
    pbx: LocalPbx, make_gateway: MakeGateway, call: Call
) -> None:
    gw = await make_gateway(dids=["0355550001"], short=True)
    pid = pbx.pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # frozen: the socket stays open, only the heartbeat tells
    try:
        for _ in range(100):
            if (await gw.client.get("/readyz")).status == 503:
                break
            await asyncio.sleep(0.1)
        assert (await gw.client.get("/readyz")).status == 503
    finally:
        os.kill(pid, signal.SIGCONT)
    await asyncio.wait_for(gw.parts.ari.connected.wait(), 20)
    v = await gw.create("09012348888")
    await call("0355550001", caller="09012348888")
    assert (await gw.get(v["id"]))["status"] == "verified"


async def test_gateway_registers_its_app_again_when_asterisk_drops_it(
    pbx: LocalPbx, make_gateway: MakeGateway, call: Call, test_settings: Any
) -> None:
    """Another socket takes the app over and goes away: Asterisk then unregisters the app
    while the gateway's own socket stays open (what a late clean-up of a frozen session
    does). The gateway must notice within a heartbeat and register again."""
    gw = await make_gateway(dids=["0355550001"], short=True)
    ari = gw.parts.ari
    connects = ari.connects
    url = ari.base.replace("http", "ws", 1) + "/events"
    async with aiohttp.ClientSession(headers={"Authorization": ari._auth}) as http:
        other = await http.ws_connect(url, params={"app": ari.app})
        await other.close()
    apps = f"{ari.base}/applications/{ari.app}"
    async with aiohttp.ClientSession(headers={"Authorization": ari._auth}) as http:
        assert (await http.get(apps)).status == 404  # dropped, yet the gateway's socket is open
        for _ in range(100):
            if ari.connects > connects and ari.connected.is_set():
                break
            await asyncio.sleep(0.1)
        assert ari.connects > connects
        assert (await http.get(apps)).status == 200
    v = await gw.create("09012347777")
    await call("0355550001", caller="09012347777")
    assert (await gw.get(v["id"]))["status"] == "verified"


async def test_call_control_goes_over_the_event_socket(
    make_gateway: MakeGateway, call: Call
) -> None:
    """Asterisk 22 takes REST requests on the ARI WebSocket: once the gateway has seen
    that, a call's hand-over to the dialplan sends no HTTP request."""
    gw = await make_gateway(dids=["0355550001"])
    ari = gw.parts.ari
    assert isinstance(ari, AriClient)
    for _ in range(100):
        if ari.rest_over_ws:
            break
        await asyncio.sleep(0.05)
    assert ari.rest_over_ws
    over_http: list[str] = []
    real = ari.session.request

    def counted(method: str, url: str, **kwargs: Any) -> Any:
        over_http.append(f"{method} {url}")
        return real(method, url, **kwargs)

    ari.session.request = counted  # type: ignore[method-assign]
    v = await gw.create("09012346666")
    result = await call("0355550001", caller="09012346666")
    assert result.final is not None and result.audio_seconds > 1  # the prompt, then release
    assert (await gw.get(v["id"]))["status"] == "verified"
    assert [r for r in over_http if "/channels/" in r] == []
