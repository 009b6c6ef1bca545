"""What every ``ivr`` command shares: its one-line error, and settings from its options."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ivr.config import Settings, load_settings


class CliError(Exception):
    """A failure that deserves one line, not a traceback."""


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """The options every command takes, before or after its name."""
    parser.add_argument(
        "--config",
        "-c",
        default=argparse.SUPPRESS,
        help="settings file (TOML); default: $IVR_CONFIG",
    )
    parser.add_argument(
        "--inventory",
        default=argparse.SUPPRESS,
        help="trunk inventory file (default: the settings' inventory)",
    )


def settings_of(args: argparse.Namespace) -> Settings:
    """The settings (``--config`` or ``$IVR_CONFIG``), with ``--inventory`` taken from
    wherever it was given: ``ivr --inventory F trunks check`` and
    ``ivr trunks --inventory F check`` mean the same."""
    settings = load_settings(getattr(args, "config", None))
    inventory = getattr(args, "inventory", None)
    if inventory:
        settings = dataclasses.replace(settings, inventory=str(Path(inventory).resolve()))
    return settings
