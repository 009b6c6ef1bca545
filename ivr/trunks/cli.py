"""``ivr trunks check|render|apply|status``: the inventory and the Asterisk config from it."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from ivr.clibase import CliError, settings_of
from ivr.trunks import InventoryError, load_inventory


def cmd_trunks(args: argparse.Namespace) -> int:
    from ivr.asterisk.ami import AmiClient, AmiError
    from ivr.trunks import apply, render, status

    settings = settings_of(args)
    inventory_path = settings.inventory
    if args.trunks_command == "check":
        try:
            inventory = load_inventory(inventory_path)
        except InventoryError as exc:
            for key, message in exc.errors:
                print(f"{inventory_path}: {key}: {message}", file=sys.stderr)
            return 1
        print(f"{inventory_path}: OK: {len(inventory.trunks)} trunks, {len(inventory.dids)} DIDs")
        return 0
    inventory = load_inventory(inventory_path)
    if args.trunks_command == "render":
        out = Path(args.out)
        if not settings.nodes:
            files = render.render(settings, inventory, args.base)
            render.write(files, out)
            print(f"wrote {len(files)} files to {out}")
        else:  # one directory per node: each has its own ports and system name
            from ivr.devtools.cluster import node_settings

            for node in settings.nodes:
                files = render.render(node_settings(settings, node.name), inventory, args.base)
                render.write(files, out / node.name)
                print(f"wrote {len(files)} files to {out / node.name}")
        if args.prompts_out:  # the prompts, where Asterisk will play them from
            import shutil

            source = Path(settings.calls.prompts_dir)
            wavs = sorted(source.glob("*/*.wav"))
            for wav in wavs:
                dest = Path(args.prompts_out) / wav.parent.name / wav.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(wav, dest)
            print(f"copied {len(wavs)} prompts to {args.prompts_out}")
        if settings.edge.enabled:
            from ivr.edge.render import render as render_edge
            from ivr.edge.render import write as write_edge

            edge_files = render_edge(settings, inventory, args.edge_base)
            write_edge(edge_files, out / "kamailio")
            print(f"wrote {len(edge_files)} files to {out / 'kamailio'}")
        return 0
    if args.trunks_command == "apply" and settings.nodes and not args.dir:
        return asyncio.run(_apply_local_cluster(settings, inventory))

    async def with_ami() -> int:
        ami = AmiClient(settings.asterisk)
        try:
            await ami.connect()
        except AmiError as exc:
            raise CliError(str(exc)) from None
        try:
            if args.trunks_command == "apply":
                if args.dir:
                    live, base = Path(args.dir), args.base
                else:  # the local chroot's live config
                    from ivr.devtools.pbx import LocalPbx

                    pbx = LocalPbx(settings, inventory)
                    live, base = pbx.base / "etc", pbx.inside
                changed = await apply.apply(settings, inventory, live, base, ami)
                if not changed:
                    print("no changes")
                for change in changed:
                    print(f"changed: {change}")
                print("reloaded" if changed else "nothing to reload")
                return 0
            states = await status.status(ami, inventory)
            if args.json:
                print(json.dumps([s.as_dict() for s in states]))
            else:
                print(status.status_table(states))
            return 0 if all(s.up for s in states) else 1
        finally:
            ami.close()

    return asyncio.run(with_ami())


async def _apply_local_cluster(settings: Any, inventory: Any) -> int:
    """Every local node's live config, then the local edge's trunk and node tables."""
    from ivr.asterisk.ami import AmiClient, AmiError
    from ivr.devtools.cluster import node_settings
    from ivr.devtools.edge import LocalEdge
    from ivr.devtools.pbx import LocalPbx
    from ivr.trunks import apply

    for node in settings.nodes:
        ns = node_settings(settings, node.name)
        pbx = LocalPbx(ns, inventory)
        ami = AmiClient(ns.asterisk)
        try:
            await ami.connect()
        except AmiError as exc:
            raise CliError(f"node {node.name}: {exc}") from None
        try:
            changed = await apply.apply(ns, inventory, pbx.base / "etc", pbx.inside, ami)
        finally:
            ami.close()
        print(f"node {node.name}: " + (", ".join(map(str, changed)) or "no changes"))
    if settings.edge.enabled:
        changed_edge = LocalEdge(settings, inventory).reload()
        print("edge: " + (", ".join(changed_edge) + " reloaded" if changed_edge else "no changes"))
    return 0


def add_parser(sub: Any) -> None:
    """The ``trunks`` command and its subcommands, on the main parser's subparsers."""
    # --config and --inventory come from the main parser, on every subcommand.
    p = sub.add_parser("trunks", help="the trunk inventory and the Asterisk config from it")
    tsub = p.add_subparsers(dest="trunks_command", required=True)
    c = tsub.add_parser("check", help="validate the inventory; every error names trunk and key")
    c.set_defaults(func=cmd_trunks)
    r = tsub.add_parser("render", help="write the Asterisk config for the inventory")
    r.add_argument("--out", required=True, help="directory to write the .conf files into")
    _base(r, "the directory Asterisk sees these files under, minus /etc (default: %(default)s)")
    r.add_argument(
        "--prompts-out",
        help="also copy the prompts (calls.prompts_dir) here, for calls.asterisk_prompts_dir",
    )
    r.add_argument(
        "--edge-base",
        default="/etc/kamailio-ivr",
        help="with [edge]: where Kamailio finds its files (and its control socket)",
    )
    r.set_defaults(func=cmd_trunks)
    a = tsub.add_parser("apply", help="render into the live config and reload over AMI")
    a.add_argument("--dir", help="live config directory (default: the local Asterisk's)")
    _base(a, "with --dir: the directory Asterisk sees, minus /etc")
    a.set_defaults(func=cmd_trunks)
    st = tsub.add_parser("status", help="each trunk's endpoint, contacts and registration")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_trunks)


def _base(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--base", default="/etc/asterisk-ivr", help=help)
