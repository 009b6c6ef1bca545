"""Browser tests: a real headless Chromium (Debian's chromium + chromium-driver through
Selenium) against the reference portal and a gateway on the session's real Asterisk.

Selenium blocks, and the gateway and the portal run on the test's event loop, so every
browser step runs in a thread (``asyncio.to_thread``). Screenshots go to
``$IVR_SCREENSHOTS`` when set (``make screenshots`` sets docs/screenshots)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from examples.portal import rules
from examples.portal.db import Db
from examples.portal.web import CLOCK, Config, make_app
from ivr.devtools.pbx import LocalPbx
from tests.conftest import Gateway, MakeGateway

PORTAL_PORT = 28090  # in portal-a's browser_origins (tests/data/test.toml)
DID = "0355550001"


@pytest.fixture(scope="session")
def chrome() -> Iterator[webdriver.Chrome]:
    opts = Options()
    opts.binary_location = "/usr/bin/chromium"
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1000,1100",
        "--lang=ja",
        # No connections of Chromium's own: this machine's closed network refuses them,
        # and a start that waits on Google's hosts is a start that may stall.
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    # Selenium waits on chromedriver without a limit by default: a stuck browser would
    # hold its thread (and the test) forever. A page has 30 s to load, a command 60 s.
    driver.command_executor.client_config.timeout = 60
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


class Browser:
    """Blocking Selenium calls, each run in a thread."""

    def __init__(self, driver: webdriver.Chrome, base: str) -> None:
        self.d = driver
        self.base = base

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def open(self, path: str) -> None:
        await self._run(self.d.get, self.base + path)

    async def fill(self, element_id: str, value: str) -> None:
        def do() -> None:
            el = self.d.find_element(By.ID, element_id)
            el.clear()
            el.send_keys(value)

        await self._run(do)

    async def click(self, css: str) -> None:
        await self._run(lambda: self.d.find_element(By.CSS_SELECTOR, css).click())

    async def wait(self, css: str, contains: str = "", timeout: float = 20) -> str:
        """The text of the first visible element matching ``css`` that contains ``contains``."""

        def find(_: Any) -> str | bool:
            for el in self.d.find_elements(By.CSS_SELECTOR, css):
                if el.is_displayed() and contains in el.text:
                    return str(el.text)
            return False

        try:
            text: str = await self._run(WebDriverWait(self.d, timeout, 0.1).until, find)
        except TimeoutException:
            body = self.d.find_element(By.TAG_NAME, "body").text
            where = self.d.current_url
            raise AssertionError(f"no {css!r} with {contains!r} on {where}:\n{body}") from None
        return text

    async def wait_path(self, path: str, timeout: float = 20) -> None:
        def at(_: Any) -> bool:
            return bool(self.d.current_url.split("?")[0].endswith(path))

        try:
            await self._run(WebDriverWait(self.d, timeout, 0.1).until, at)
        except TimeoutException:
            raise AssertionError(f"still at {self.d.current_url}, not {path}") from None

    async def path(self) -> str:
        url: str = await self._run(lambda: self.d.current_url)
        return "/" + url.split("/", 3)[3].split("?")[0]

    async def source(self) -> str:
        return str(await self._run(lambda: self.d.page_source))

    async def login(self, login_id: str, password: str) -> None:
        await self.open("/login")
        await self.fill("login_id", login_id)
        await self.fill("password", password)
        await self.click("#login")

    async def shot(self, name: str) -> None:
        where = os.environ.get("IVR_SCREENSHOTS")
        if where:
            target = Path(where) / f"{name}.png"
            await self._run(lambda: target.parent.mkdir(parents=True, exist_ok=True))
            await self._run(self.d.save_screenshot, str(target))


@dataclass
class PortalRun:
    base: str
    db: Db
    app: web.Application
    gateway: Gateway
    browser: Browser

    def next_day(self) -> None:
        self.app[CLOCK].offset += timedelta(days=1)

    def today(self) -> Any:
        return rules.today(self.app[CLOCK].now())


def add_holder(
    db: Db, login_id: str, password: str, phone: str | None, insured: bool = False
) -> None:
    db.add_holder(
        login_id, password, "試験 花子", "1985-02-03", insured, must_change_password=False
    )
    if phone:
        role = rules.counting_role(insured)
        db.add_phone(login_id, role, phone, rules.today(datetime.now(UTC)) - timedelta(days=30))


@pytest.fixture
async def start_portal(
    pbx: LocalPbx,
    make_gateway: MakeGateway,
    chrome: webdriver.Chrome,
    tmp_path: Path,
    test_settings: Any,
) -> AsyncIterator[Any]:
    runners: list[web.AppRunner] = []
    dbs: list[Db] = []

    async def start(ttl_seconds: int | None = None) -> PortalRun:
        gw = await make_gateway(dids=[DID], short=True)
        gateway_url = str(gw.client.make_url("")).rstrip("/")
        portal = test_settings.portals[0]
        db = Db(tmp_path / "portal.sqlite3")
        base = f"http://127.0.0.1:{PORTAL_PORT}"
        config = Config(
            gateway=gateway_url,
            gateway_public=gateway_url,
            token=portal.tokens[0],
            callback_secret=portal.callback_secrets[0],
            callback_url=f"{base}/callbacks/ivr",
            ttl_seconds=ttl_seconds,
        )
        app = make_app(db, config)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", PORTAL_PORT).start()
        runners.append(runner)
        dbs.append(db)
        await asyncio.to_thread(chrome.delete_all_cookies)
        return PortalRun(base, db, app, gw, Browser(chrome, base))

    yield start
    for runner in runners:
        await runner.cleanup()
    for db in dbs:
        db.close()
