"""The fuzz row of ``make chaos``: schemathesis, every check, against the portal API.

A gateway runs in this process on a temporary SQLite store with fake ARI and AMI (no
Asterisk is needed to answer HTTP), with its rate limits off; schemathesis generates
requests from ``/openapi.json`` with the portal token (and with none, and a wrong one)
and checks every answer against the document: no 5xx, documented statuses, bodies and
headers.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from aiohttp import web

from ivr.app import create_app
from ivr.config import load_settings, replace

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "test-token-portal-a"
OPS_TOKEN = "test-ops-token"


async def serve_and_fuzz(max_examples: int) -> int:
    sys.path.insert(0, str(ROOT))
    from tests.fakes import FakeAmi, FakeAri  # test doubles: no Asterisk for HTTP

    class LoggedInAmi(FakeAmi):
        """Logs in at once, with no trunk in Asterisk: /admin/trunks answers 200."""

        async def connect(self, timeout: float | None = None) -> None:
            self.logged_in = True
            if self.on_login is not None:
                self.on_login()

    with tempfile.TemporaryDirectory(prefix="ivr-fuzz-") as tmp:
        settings = load_settings(ROOT / "tests" / "data" / "test.toml", environ={})
        settings = replace(
            settings,
            store={"path": str(Path(tmp) / "fuzz.sqlite3")},
            limits={"creates_per_second": 0, "creates_per_number_per_hour": 0,
                    "checks_per_second": 0},
            api={"max_wait": 1},  # a long poll answers within a second
        )  # fmt: skip
        app = create_app(settings, ari=FakeAri(), ami=LoggedInAmi())
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}"
        try:
            proc = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "schemathesis"),
                "--config-file", str(ROOT / "chaos" / "schemathesis.toml"),
                "run",
                f"{url}/openapi.json",
                "--checks", "all",
                "--max-examples", str(max_examples),
                "--suppress-health-check", "all",
                "--no-color",
                env={
                    **os.environ,
                    "FUZZ_PORTAL_TOKEN": TOKEN,
                    "FUZZ_OPS_TOKEN": OPS_TOKEN,
                    "SCHEMATHESIS_HOOKS": "chaos.fuzz_hooks",
                    "PYTHONPATH": str(ROOT),
                },
                cwd=ROOT,
            )  # fmt: skip
            return await proc.wait()
        finally:
            await runner.cleanup()


def main() -> int:
    examples = int(os.environ.get("FUZZ_EXAMPLES", "100"))
    return asyncio.run(serve_and_fuzz(examples))


if __name__ == "__main__":
    sys.exit(main())
