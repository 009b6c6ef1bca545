"""The ``ivr`` command: serve, the local Asterisk, test calls, number checks."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence

from ivr import numbers
from ivr.clibase import CliError, add_common_options, settings_of
from ivr.config import ConfigError
from ivr.trunks import InventoryError, load_inventory
from ivr.trunks import cli as trunks_cli
from ivr.vocabulary import OutboxStatus, Outcome


def cmd_serve(args: argparse.Namespace) -> int:
    from ivr.app import serve

    settings = settings_of(args)
    with asyncio.Runner(loop_factory=event_loop_factory(settings.api.event_loop)) as runner:
        return runner.run(serve(settings))


def event_loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """asyncio's own loop by default; ``api.event_loop = "uvloop"`` (libuv): about 5 %
    less CPU per call, about 10 MiB more with 10,000 long polls (docs/benchmarks.md)."""
    if choice == "asyncio":
        return None
    import uvloop

    return uvloop.new_event_loop


def cmd_pbx(args: argparse.Namespace) -> int:
    from ivr.devtools.pbx import LocalPbx

    settings = settings_of(args)
    pbx = LocalPbx(settings, load_inventory(settings.inventory))
    if args.action == "up":
        pbx.up()
    elif args.action == "down":
        if not pbx.down():
            print(f"pbx: asterisk ({settings.pbx.instance}) was not running")
    elif args.action == "status":
        status = pbx.status()
        if args.json:
            print(json.dumps(status.as_dict()))
        else:
            state = "running" if status.running else "stopped"
            ari = "ARI ready" if status.ari_ready else "ARI not answering"
            print(
                f"asterisk ({settings.pbx.instance}): {state}, {ari}, "
                f"version {status.version or '-'}, pid {status.pid or '-'}"
            )
        return 0 if status.running and status.ari_ready else 3
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    """GET /readyz of the gateway these settings describe (a container health check)."""
    import urllib.error
    import urllib.request

    settings = settings_of(args)
    host = "127.0.0.1" if settings.api.host in ("0.0.0.0", "::") else settings.api.host
    url = f"http://{host}:{settings.api.port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as resp:
            print(resp.read().decode())
            return 0
    except urllib.error.HTTPError as exc:
        print(exc.read().decode())
    except OSError as exc:
        print(f"{url}: {exc}")
    return 1


def cmd_cluster(args: argparse.Namespace) -> int:
    import dataclasses
    import os
    from pathlib import Path

    from ivr.config import load_settings, package_data
    from ivr.devtools.cluster import LocalCluster

    given = getattr(args, "config", None) or os.environ.get("IVR_CONFIG")
    path = Path(given or package_data("cluster.toml")).resolve()
    settings = load_settings(path)
    env = {}
    if inventory := getattr(args, "inventory", None):
        env["IVR_INVENTORY"] = str(Path(inventory).resolve())
        settings = dataclasses.replace(settings, inventory=env["IVR_INVENTORY"])
    cluster = LocalCluster(settings, load_inventory(settings.inventory), path, env)
    if args.action == "up":
        cluster.up()
    elif args.action == "down":
        cluster.down()
    else:
        status = cluster.status()
        if args.json:
            print(json.dumps(status))
        else:
            _print_cluster(status)
        gateways = status["gateways"]
        assert isinstance(gateways, dict)
        ready = all((g.get("readyz") or {}).get("ready") for g in gateways.values())
        return 0 if ready else 3
    return 0


def _print_cluster(status: dict[str, object]) -> None:
    edge = status["edge"]
    assert isinstance(edge, dict)
    print(f"edge (kamailio): {'pid ' + str(edge['pid']) if edge['pid'] else 'stopped'}")
    for node in edge["nodes"]:
        print(f"  dispatcher: {node.get('name', '?')} {node['uri']} flags {node.get('flags')}")
    nodes = status["nodes"]
    assert isinstance(nodes, dict)
    for name, node in nodes.items():
        state = f"pid {node['pid']}, ARI {'up' if node['ari'] else 'down'}"
        print(f"node {name}: {state if node['pid'] else 'stopped'}")
    gateways = status["gateways"]
    assert isinstance(gateways, dict)
    for app, gw in gateways.items():
        ready = gw["readyz"] or {}
        print(
            f"gateway {app}: {'pid ' + str(gw['pid']) if gw['pid'] else 'stopped'} at {gw['url']}, "
            f"ready {ready.get('ready', False)}, nodes {ready.get('nodes', {})}"
        )


def cmd_pg(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ivr.devtools.postgres import LocalPostgres, default_directory

    settings = settings_of(args)
    directory = Path(args.dir) if args.dir else default_directory(settings.pbx.instance)
    pg = LocalPostgres(directory, args.port)
    if args.action == "up":
        print(f"postgresql: running on 127.0.0.1:{args.port}; store.url = {pg.up()}")
    elif args.action == "down":
        print("postgresql: stopped" if pg.down() else "postgresql: was not running")
    else:
        status = pg.status()
        state = "running" if status.running else "stopped"
        print(f"postgresql ({status.directory}): {state}; store.url = {status.url}")
        return 0 if status.running else 3
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    """The store's schema: which version it has, and bringing it up to date."""
    from ivr.store import make_store

    settings = settings_of(args)

    async def run() -> int:
        store = make_store(settings)
        if settings.store.kind == "sqlite":
            await store.open()  # SQLite migrates on open
            await store.close()
            print(f"sqlite {settings.store.path}: up to date")
            return 0
        from ivr.store.postgres import PostgresStore
        from ivr.store.postgres_schema import MIGRATIONS

        assert isinstance(store, PostgresStore)
        try:
            if args.action == "migrate":
                await store.open()  # opening applies what is missing
            else:
                await store.connect(1, 1)
            version = await store.schema_version()
        finally:
            await store.close()
        latest = len(MIGRATIONS)
        state = "up to date" if version == latest else f"behind: {latest - version} to apply"
        print(f"postgresql {settings.store.masked_url}: schema {version} of {latest}, {state}")
        return 0 if version == latest else 1

    return asyncio.run(run())


def cmd_calls(args: argparse.Namespace) -> int:
    """Calls and their outcomes from the store (callers masked), newest first."""
    import time

    from ivr.store import make_store
    from ivr.verification.ports import CallFilter
    from ivr.vocabulary import Outcome

    settings = settings_of(args)
    since = time.time() - args.minutes * 60 if args.minutes else None
    query = CallFilter(
        since=since,
        outcome=Outcome(args.outcome) if args.outcome else None,
        trunk=args.trunk,
        limit=args.limit,
    )

    async def run() -> list[dict[str, object]]:
        store = make_store(settings)
        await store.open()
        try:
            return [c.as_dict() for c in await store.list_calls(query)]
        finally:
            await store.close()

    calls = asyncio.run(run())
    if args.json:
        print(json.dumps(calls))
        return 0
    columns = ("started_at", "did", "trunk", "caller", "outcome", "reason", "verification_id")
    rows = [columns] + [tuple(str(c.get(k) or "-") for k in columns) for c in calls]
    widths = [max(len(r[i]) for r in rows) for i in range(len(columns))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def cmd_callbacks(args: argparse.Namespace) -> int:
    """Work on the outbox in the store directly: works whether the gateway runs or not
    (a running gateway picks requeued events up within a second)."""
    import time

    from ivr.store import make_store

    settings = settings_of(args)

    async def run() -> int:
        store = make_store(settings)
        await store.open()
        try:
            if args.callbacks_command == "list":
                wanted = OutboxStatus.FAILED if args.failed else args.status
                events = await store.list_outbox(OutboxStatus(wanted) if wanted else None)
                if args.json:
                    print(json.dumps([e.as_dict() for e in events]))
                    return 0
                print(f"{'id':<30} {'type':<24} {'portal':<12} {'status':<10} tries  last")
                for e in events:
                    last = e.last_error or (str(e.last_status) if e.last_status else "-")
                    print(
                        f"{e.id:<30} {e.type:<24} {e.portal or '-':<12} {e.status:<10} "
                        f"{e.attempts:>5}  {last}"
                    )
                return 0
            if args.all_failed == (args.id is not None):
                raise CliError("give one callback id, or --all-failed")
            count = await store.retry_events(args.id, time.time())
            if args.id is not None and count == 0:
                raise CliError(f"no failed or pending callback {args.id}")
            print(f"requeued {count} callback(s)")
            return 0
        finally:
            await store.close()

    return asyncio.run(run())


def cmd_prompts(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ivr import prompts

    settings = settings_of(args)
    directory = Path(args.dir or settings.calls.prompts_dir)
    if args.prompts_command == "build":
        from ivr.devtools import synth

        for path in synth.build(directory):
            print(f"wrote {path}")
    try:
        loaded = prompts.load(directory)
    except prompts.PromptError as exc:
        raise CliError(str(exc)) from None
    for (outcome, language), p in sorted(loaded.items()):
        print(f"{language}  {outcome:<16} {p.seconds:5.2f} s  {p.path}")
    return 0


def cmd_call(args: argparse.Namespace) -> int:
    from ivr.devtools.sipcall import CallSpec, place_call

    settings = settings_of(args)
    spec = CallSpec(
        did=args.did,
        caller=args.caller,
        display=args.display,
        pai=args.pai,
        privacy=args.privacy,
        rpid=args.rpid,
        anonymous=args.anonymous,
        headers=tuple(args.header),
        source_ip=args.source,
        # Behind the edge a call enters where a carrier's would: at Kamailio.
        target_host=settings.edge.host if settings.edge.enabled else settings.asterisk.host,
        target_port=settings.edge.sip_port if settings.edge.enabled else settings.asterisk.sip_port,
        max_seconds=args.max_seconds,
    )
    result = asyncio.run(place_call(spec))
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(f"responses: {' '.join(map(str, result.statuses)) or 'none'}")
        print(
            f"answered: {'yes' if result.answered else 'no'}; "
            f"released by the gateway: {'BYE' if result.bye_received else result.final}"
        )
        print(f"audio: {result.rtp_packets} RTP packets, {result.audio_seconds:.2f} s")
    return 0 if result.responses else 1


def cmd_numbers(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    policy = numbers.NumberPolicy(settings.numbers.allow_060, settings.numbers.deny_prefixes)
    verdicts = [numbers.check(n, policy) for n in args.numbers]
    if args.json:
        print(json.dumps([{"input": v.input, **v.as_dict()} for v in verdicts], ensure_ascii=False))
    else:
        rows = [("input", "eligible", "e164", "type", "reason")]
        for v in verdicts:
            rows.append(
                (
                    v.input,
                    "yes" if v.eligible else "no",
                    v.e164 or "-",
                    v.type or "-",
                    v.reason or "-",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        for v in verdicts:
            if v.reason:
                print(f"{v.input}: {v.messages['ja']} / {v.messages['en']}")
    return 0 if all(v.eligible for v in verdicts) else 1


def build_parser() -> argparse.ArgumentParser:
    from ivr import __version__

    parser = argparse.ArgumentParser(prog="ivr", description=__doc__)
    parser.add_argument("--version", action="version", version=f"ivr {__version__}")
    add_common_options(parser)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the gateway (ARI, portal API, callbacks)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("pbx", help="the local Asterisk in a Debian chroot")
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_pbx)

    p = sub.add_parser("call", help="place a test call with sipp into the local Asterisk")
    p.add_argument("did", help="the number to call, e.g. 0355550101")
    p.add_argument("--from", dest="caller", default="09012345678", help="caller number (From)")
    p.add_argument("--display", help="From display name")
    p.add_argument("--pai", help="P-Asserted-Identity URI, e.g. tel:+819012345678")
    p.add_argument("--privacy", help="Privacy header value, e.g. id")
    p.add_argument("--rpid", help="Remote-Party-ID header value")
    p.add_argument("--anonymous", action="store_true", help="anonymous From (非通知)")
    p.add_argument(
        "--header",
        action="append",
        default=[],
        help='one more header line, as sent (repeatable), e.g. "Privacy: none"',
    )
    p.add_argument("--source", default="127.0.0.1", help="source address (picks the trunk)")
    p.add_argument("--max-seconds", type=float, default=30.0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_call)

    trunks_cli.add_parser(sub)

    p = sub.add_parser("health", help="is the gateway of these settings ready? (exit 0/1)")
    p.add_argument("--timeout", type=float, default=2.0)
    p.set_defaults(func=cmd_health)

    p = sub.add_parser(
        "cluster",
        help="the whole topology locally: Kamailio, two Asterisk nodes, two gateways, PostgreSQL",
    )
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_cluster)

    p = sub.add_parser("pg", help="a private local PostgreSQL for development and tests")
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("--port", type=int, default=15432)
    p.add_argument("--dir", help="cluster directory (default: /var/tmp/ivr-postgres-<instance>)")
    p.set_defaults(func=cmd_pg)

    p = sub.add_parser("db", help="the store's schema (store.url or store.path)")
    p.add_argument("action", choices=["migrate", "status"])
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("calls", help="calls and their outcomes (callers masked)")
    csub = p.add_subparsers(dest="calls_command", required=True)
    c = csub.add_parser("list", help="the newest calls, filtered")
    c.add_argument("--minutes", type=float, help="only those of the last N minutes")
    c.add_argument("--outcome", choices=[str(o) for o in Outcome])
    c.add_argument("--trunk")
    c.add_argument("--limit", type=int, default=100)
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_calls)

    p = sub.add_parser("callbacks", help="the callback outbox")
    csub = p.add_subparsers(dest="callbacks_command", required=True)
    c = csub.add_parser("list", help="callback events (all, or by status)")
    c.add_argument("--failed", action="store_true", help="only failed ones")
    c.add_argument("--status", choices=[str(s) for s in OutboxStatus])
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_callbacks)
    c = csub.add_parser("retry", help="deliver failed callbacks again")
    c.add_argument("id", nargs="?", help="the callback (webhook-id) to retry")
    c.add_argument("--all-failed", action="store_true")
    c.set_defaults(func=cmd_callbacks)

    p = sub.add_parser("prompts", help="the prompt files")
    psub = p.add_subparsers(dest="prompts_command", required=True)
    for name, text in (
        ("build", "synthesize them from texts.toml (espeak-ng, sox)"),
        ("check", "check that every prompt exists and Asterisk can play it"),
    ):
        c = psub.add_parser(name, help=text)
        c.add_argument("--dir", help="prompt directory (default: calls.prompts_dir)")
        c.set_defaults(func=cmd_prompts)

    p = sub.add_parser("numbers", help="phone-number policy")
    nsub = p.add_subparsers(dest="numbers_command", required=True)
    c = nsub.add_parser("check", help="may these numbers authenticate?")
    c.add_argument("numbers", nargs="+")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_numbers)
    _common_everywhere(parser)
    return parser


def _common_everywhere(parser: argparse.ArgumentParser) -> None:
    """``--config`` and ``--inventory`` wherever people put them: ``ivr --config F serve``
    and ``ivr serve --config F`` mean the same."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if "--config" not in sub._option_string_actions:
                    add_common_options(sub)
                _common_everywhere(sub)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "serve":  # keep stdout for the command's own output
        from ivr.log import configure

        configure("warning", "auto")
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"ivr: configuration error: {exc}", file=sys.stderr)
        return 2
    except InventoryError as exc:
        print(f"ivr: trunk inventory error: {exc}", file=sys.stderr)
        return 2
    except CliError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
