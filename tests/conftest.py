"""Fixtures: the local Asterisk once per session, a gateway per test, sipp calls on demand."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient

from ivr.app import Components, components, create_app
from ivr.config import Settings, load_settings, replace
from ivr.devtools.pbx import LocalPbx
from ivr.devtools.postgres import LocalPostgres
from ivr.devtools.sipcall import CallResult, CallSpec, place_call
from ivr.devtools.synth import write_tones
from ivr.trunks import Inventory, load_inventory
from tests.fakes import FakeAmi, FakeAri
from tests.portal import Portal, StartPortal

DATA = Path(__file__).parent / "data"
PG_PORT = 25432  # the test cluster's; `ivr pg up` uses 15432
TOKEN = "test-token-portal-a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="session")
def test_settings() -> Settings:
    return load_settings(DATA / "test.toml", environ={})


@pytest.fixture(scope="session")
def test_inventory(test_settings: Settings) -> Inventory:
    return load_inventory(test_settings.inventory)


@pytest.fixture(scope="session")
def pbx(test_settings: Settings, test_inventory: Inventory) -> Iterator[LocalPbx]:
    """The real Asterisk, started once for the whole session and stopped at its end."""
    local = LocalPbx(test_settings, test_inventory)
    local.up()
    yield local
    local.down()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """A private PostgreSQL cluster, made and started once for the session (never the
    machine's own), on its own port; stopped and removed at the end."""
    import tempfile

    for stale in Path("/var/tmp").glob("ivr-test-pg-*"):  # left by a run that was killed
        LocalPostgres(stale, PG_PORT).destroy()
    directory = Path(tempfile.mkdtemp(prefix="ivr-test-pg-", dir="/var/tmp"))
    pg = LocalPostgres(directory, PG_PORT, fast=True)
    pg.up()
    yield pg
    pg.destroy()


_databases = iter(range(1, 1_000_000))


@pytest.fixture
def pg_url(postgres: LocalPostgres) -> str:
    """A new, empty database on the session's cluster."""
    return postgres.create_database(f"t{next(_databases)}")


@pytest.fixture(params=["sqlite", "postgres"])
def store_section(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The ``store`` settings of a test run once on each store."""
    if request.param == "postgres":
        return {"url": request.getfixturevalue("pg_url")}
    return {}


@pytest.fixture(scope="session")
def short_prompts(pbx: LocalPbx, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Half-second tones for every outcome, so tests about verifying do not sit through
    the real prompts. Returns the ``calls`` settings that select them."""
    local = write_tones(tmp_path_factory.mktemp("short-prompts"), 0.5)
    inside = pbx.install_prompts(local, "sounds-short")
    return {"prompts_dir": str(local), "asterisk_prompts_dir": inside}


# Every log line of the session, as the gateway would write it (masked), and the log
# files of the gateway processes the tests start: scanned for secrets at the end.
SESSION_LOGS: list[dict[str, Any]] = []
LOG_FILES: list[Path] = []


@pytest.fixture(autouse=True)
def _quiet_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Logs are captured, not printed; a command that configures logging (``main``)
    must not make loggers cache that configuration past the test."""
    import ivr.log

    real = ivr.log.configure

    def configure_uncached(level: str = "info", fmt: str = "auto") -> None:
        real(level, fmt)
        structlog.configure(cache_logger_on_first_use=False)

    monkeypatch.setattr(ivr.log, "configure", configure_uncached)
    processors = [ivr.log.merge_context, ivr.log.mask_phone_numbers]
    with structlog.testing.capture_logs(processors) as entries:
        yield
    SESSION_LOGS.extend(entries)
    structlog.reset_defaults()  # a level set by ``main`` must not filter the next test


# Mobile numbers as the tests' callers and holders write them (whole, not masked).
_UNMASKED = re.compile(r"(?<![\d*])(?:\+81|0)[789]0-?\d{4}-?\d{4}(?!\d)")


@pytest.fixture(scope="session", autouse=True)
def _no_secrets_in_logs(test_settings: Settings) -> Iterator[None]:
    """After the whole session: no token, webhook secret or password, and no phone number
    unmasked, in any log line the gateway wrote (in-process or as a process)."""
    yield
    secrets = {"hunter2", *test_settings.api.ops_tokens}
    for portal in test_settings.portals:
        secrets |= set(portal.tokens) | {s.removeprefix("whsec_") for s in portal.callback_secrets}
    texts = [json.dumps(e, ensure_ascii=False, default=str) for e in SESSION_LOGS]
    texts += [p.read_text(errors="replace") for p in LOG_FILES if p.exists()]
    leaks = [(secret, t[:200]) for t in texts for secret in secrets if secret in t]
    numbers = [(m.group(0), t[:200]) for t in texts if (m := _UNMASKED.search(t))]
    assert leaks == [], f"secrets in log lines: {leaks[:5]}"
    assert numbers == [], f"unmasked phone numbers in log lines: {numbers[:5]}"


@dataclasses.dataclass
class Gateway:
    client: TestClient[Any, Any]
    parts: Components
    settings: Settings
    inventory: Inventory

    async def create(self, phone: str, **body: Any) -> dict[str, Any]:
        resp = await self.client.post(
            "/v1/verifications", json={"phone_number": phone, **body}, headers=AUTH
        )
        assert resp.status == 201, await resp.text()
        data: dict[str, Any] = await resp.json()
        return data

    async def get(self, vid: str, wait: float | None = None) -> dict[str, Any]:
        params = {"wait": str(wait)} if wait is not None else {}
        resp = await self.client.get(f"/v1/verifications/{vid}", params=params, headers=AUTH)
        assert resp.status == 200, await resp.text()
        data: dict[str, Any] = await resp.json()
        return data

    async def calls(self) -> list[Any]:
        return await self.parts.store.list_calls()

    async def call_for(self, channel_did: str) -> Any:
        return next(c for c in await self.calls() if c.did == channel_did)


def restrict(inventory: Inventory, dids: list[str] | None) -> Inventory:
    """The inventory with only these DIDs (E.164 or national) left in the gateway's pool."""
    if dids is None:
        return inventory
    from ivr.numbers import normalize

    keep = {normalize(d) for d in dids}
    trunks = tuple(
        dataclasses.replace(t, dids=tuple(d for d in t.dids if d.number in keep))
        for t in inventory.trunks
    )
    return Inventory(trunks)


MakeGateway = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def make_gateway(
    aiohttp_client: Any,
    tmp_path: Path,
    test_settings: Settings,
    test_inventory: Inventory,
    request: pytest.FixtureRequest,
) -> MakeGateway:
    """Build a gateway on a fresh SQLite store; connected to the session's Asterisk
    when the test also asks for ``pbx``. ``short=True`` plays half-second tones instead
    of the real prompts."""

    async def make(
        dids: list[str] | None = None,
        connect: bool = True,
        short: bool = False,
        inventory: Inventory | None = None,
        fake: bool = False,
        fake_connected: bool = False,
        **sections: dict[str, Any],
    ) -> Gateway:
        if short:
            tones = request.getfixturevalue("short_prompts")
            sections["calls"] = {**tones, **sections.get("calls", {})}
        store = {"path": str(tmp_path / "ivr.sqlite3"), **sections.pop("store", {})}
        settings = replace(test_settings, store=store, **sections)
        inventory = restrict(inventory or test_inventory, dids)
        adapters: dict[str, Any] = {}
        if fake:
            adapters = {"ari": FakeAri(connected=fake_connected), "ami": FakeAmi()}
        app = create_app(settings, inventory, **adapters)
        client = await aiohttp_client(app)
        parts = components(app)
        if connect:
            await asyncio.wait_for(parts.ari.connected.wait(), 10)
        return Gateway(client, parts, settings, inventory)

    return make


@pytest.fixture
async def gateway(pbx: LocalPbx, make_gateway: MakeGateway) -> Gateway:
    """A gateway whose pool is the three answer-mode DIDs of the test inventory."""
    return await make_gateway(dids=["0355550001", "0355550002", "0355550003"], short=True)


@pytest.fixture
async def api_gateway(make_gateway: MakeGateway) -> Gateway:
    """A gateway for API tests: fake ARI and AMI, never connected; a real SQLite store."""
    return await make_gateway(connect=False, fake=True)


Call = Callable[..., Awaitable[CallResult]]


@pytest.fixture
def call(pbx: LocalPbx, test_settings: Settings) -> Call:
    """Place one real call into the session's Asterisk: ``await call("0355550001", caller=...)``."""

    async def place(did: str, **spec: Any) -> CallResult:
        s = CallSpec(
            did=did,
            target_host=test_settings.asterisk.host,
            target_port=test_settings.asterisk.sip_port,
            **spec,
        )
        return await place_call(s)

    return place


@pytest.fixture
async def start_portal(aiohttp_server: Any) -> StartPortal:
    async def start(port: int | None = None, **kw: Any) -> tuple[Portal, str]:
        portal = Portal(**kw)
        app = web.Application()
        app.router.add_post("/hooks/{name}", portal.handle)
        server = await aiohttp_server(app, port=port) if port else await aiohttp_server(app)
        return portal, f"http://127.0.0.1:{server.port}/hooks/ivr"

    return start
