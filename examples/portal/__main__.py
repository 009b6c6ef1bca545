"""``python -m examples.portal``: the reference portal against a running gateway."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from aiohttp import web

from examples.portal import rules
from examples.portal.db import Db, seed_demo
from examples.portal.web import Config, make_app

# The gateway's embedded defaults (portal "dev"): local development only.
DEV_TOKEN = "dev-token"
DEV_SECRET = "whsec_ZGV2LW9ubHktc2VjcmV0LWRvLW5vdC11c2U="


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m examples.portal", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8090)
    p.add_argument("--db", default="var/portal.sqlite3")
    p.add_argument("--gateway", default=os.environ.get("PORTAL_GATEWAY", "http://127.0.0.1:8080"))
    p.add_argument("--gateway-public", help="the gateway as browsers reach it (default: --gateway)")
    p.add_argument("--demo", action="store_true", help="add the demo holders")
    p.add_argument("--clock-control", action="store_true", help="tests only: POST /_test/clock")
    args = p.parse_args(argv)
    # Secrets from the environment, never from the command line (ps shows it).
    token = os.environ.get("PORTAL_GATEWAY_TOKEN", DEV_TOKEN)
    secret = os.environ.get("PORTAL_CALLBACK_SECRET", DEV_SECRET)
    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    db = Db(args.db)
    if args.demo:
        from datetime import UTC, datetime

        for login_id, pw, name in seed_demo(db, rules.today(datetime.now(UTC))):
            print(f"demo holder {name}: login ID {login_id}, password {pw}")
    config = Config(
        gateway=args.gateway,
        gateway_public=args.gateway_public or args.gateway,
        token=token,
        callback_secret=secret,
        callback_url=f"http://{args.host}:{args.port}/callbacks/ivr",
        clock_control=args.clock_control,
    )
    print(f"portal on http://{args.host}:{args.port}/login (gateway {config.gateway})", flush=True)
    web.run_app(make_app(db, config), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
