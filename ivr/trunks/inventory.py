"""The trunk inventory: carrier SIP trunks and the authentication numbers (DIDs) on them.

The inventory (TOML, see ``sip_config/README.md``) is the source of truth: the Asterisk config
is generated from it and the gateway takes its DIDs and trusted trunks from it. Loading
checks everything and reports every problem at once, each naming the trunk and key.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ivr import numbers
from ivr.vocabulary import AnswerMode

ANSWER_MODES = tuple(str(m) for m in AnswerMode)
KNOWN_CODECS = ("ulaw", "alaw", "g722", "g729", "opus", "gsm")
TRANSPORTS = ("udp", "tcp")
_TRUNK_KEYS = {
    "name",
    "match",
    "trusted",
    "codecs",
    "dids",
    "addresses",
    "port",
    "transport",
    "qualify_frequency",
    "registration",
}
_REGISTRATION_KEYS = {"username", "password", "server", "expiration"}


class InventoryError(ValueError):
    """The inventory is wrong; ``key`` names the trunk and key (``trunks[carrier].match``).
    ``errors`` holds every problem found, as ``(key, message)``."""

    def __init__(self, key: str, message: str, errors: list[tuple[str, str]] | None = None):
        self.errors = errors or [(key, message)]
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        super().__init__(f"{key}: {message}{more}")
        self.key = key


@dataclass(frozen=True)
class Did:
    number: str  # E.164
    # early_media by default: the caller hears the result and, never answered, pays nothing.
    answer_mode: AnswerMode = AnswerMode.EARLY_MEDIA
    language: str | None = None  # prompts; None: the settings' calls.language

    @property
    def national(self) -> str:
        return "0" + self.number[3:]


@dataclass(frozen=True)
class Registration:
    """Outbound registration: the carrier authenticates us by username and password."""

    username: str
    password: str
    server: str  # host or host:port of the registrar
    expiration: int = 300


@dataclass(frozen=True)
class Trunk:
    name: str
    match: tuple[str, ...]
    trusted: bool = False
    codecs: tuple[str, ...] = ("ulaw", "alaw")
    dids: tuple[Did, ...] = ()
    addresses: tuple[str, ...] = ()  # the carrier's SIP servers (qualify, outbound)
    port: int = 5060
    transport: str = "udp"
    qualify_frequency: int = 30  # seconds between OPTIONS pings; 0: off
    registration: Registration | None = None


@dataclass(frozen=True)
class Inventory:
    trunks: tuple[Trunk, ...] = field(default_factory=tuple)

    @property
    def dids(self) -> dict[str, tuple[Trunk, Did]]:
        return {d.number: (t, d) for t in self.trunks for d in t.dids}

    def trunk(self, name: str) -> Trunk | None:
        return next((t for t in self.trunks if t.name == name), None)


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    host = text.rsplit(":", 1)[0] if text.count(":") == 1 else text  # 192.0.2.1:5060
    return ipaddress.ip_network(host, strict=False)


class _Checker:
    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []

    def error(self, key: str, message: str) -> None:
        self.errors.append((key, message))

    def str_list(self, key: str, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.error(key, "must be a list of strings")
            return ()
        return tuple(value)

    def integer(self, key: str, value: Any, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.error(key, f"must be an integer from {low} to {high}")
            return low
        return value

    def registration(self, where: str, raw: Any) -> Registration | None:
        if raw is None:
            return None
        if not isinstance(raw, dict):
            self.error(f"{where}.registration", "must be a table")
            return None
        for extra in sorted(set(raw) - _REGISTRATION_KEYS):
            self.error(f"{where}.registration.{extra}", "unknown key")
        values: dict[str, str] = {}
        for key in ("username", "password", "server"):
            value = raw.get(key)
            if isinstance(value, str) and value.startswith("env:"):
                if value[4:] not in os.environ:
                    self.error(
                        f"{where}.registration.{key}",
                        f"environment variable {value[4:]} is not set",
                    )
                    continue
                value = os.environ[value[4:]]
            if not isinstance(value, str) or not value:
                self.error(f"{where}.registration.{key}", "is missing")
            else:
                values[key] = value
        expiration = self.integer(
            f"{where}.registration.expiration", raw.get("expiration", 300), 60, 86400
        )
        if len(values) < 3:
            return None
        return Registration(values["username"], values["password"], values["server"], expiration)

    def did(self, dkey: str, rd: Any, seen: dict[str, str], trunk: str) -> Did | None:
        if not isinstance(rd, dict) or not isinstance(rd.get("number"), str):
            self.error(dkey, "needs a number")
            return None
        for extra in sorted(set(rd) - {"number", "answer_mode", "language"}):
            self.error(f"{dkey}.{extra}", "unknown key")
        verdict = numbers.check(rd["number"])
        if (
            verdict.e164 is None
            or not verdict.e164.startswith("+81")
            or verdict.reason in ("too_short", "too_long", "invalid")
        ):
            self.error(f"{dkey}.number", f"{rd['number']!r} is not a valid Japanese number")
            return None
        mode = AnswerMode.EARLY_MEDIA
        raw_mode = rd.get("answer_mode", str(AnswerMode.EARLY_MEDIA))
        if raw_mode in ANSWER_MODES:
            mode = AnswerMode(raw_mode)
        else:
            self.error(f"{dkey}.answer_mode", f"must be one of {', '.join(ANSWER_MODES)}")
        language = rd.get("language")
        if language is not None and language not in ("ja", "en"):
            self.error(f"{dkey}.language", "must be ja or en")
        if verdict.e164 in seen:
            self.error(f"{dkey}.number", f"{rd['number']} is already on trunk {seen[verdict.e164]}")
            return None
        seen[verdict.e164] = trunk
        return Did(verdict.e164, mode, language)

    def trunk(self, i: int, raw: Any, seen_dids: dict[str, str]) -> Trunk | None:
        if not isinstance(raw, dict):
            self.error(f"trunks[{i}]", "must be a table")
            return None
        name = raw.get("name")
        if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
            self.error(f"trunks[{i}].name", f"must be letters, digits, - or _, got {name!r}")
            return None
        where = f"trunks[{name}]"
        for extra in sorted(set(raw) - _TRUNK_KEYS):
            self.error(f"{where}.{extra}", "unknown key")
        match = self.str_list(f"{where}.match", raw.get("match", []))
        for m in match:
            try:
                _network(m)
            except ValueError:
                self.error(f"{where}.match", f"{m!r} is not an address or range")
        trusted = raw.get("trusted", False)
        if not isinstance(trusted, bool):
            self.error(f"{where}.trusted", "must be true or false")
            trusted = False
        if trusted and not match:
            self.error(f"{where}.match", "a trusted trunk needs at least one match range")
        codecs = self.str_list(f"{where}.codecs", raw.get("codecs", ["ulaw", "alaw"]))
        for c in codecs:
            if c not in KNOWN_CODECS:
                self.error(f"{where}.codecs", f"unknown codec {c!r}")
        addresses = self.str_list(f"{where}.addresses", raw.get("addresses", []))
        port = self.integer(f"{where}.port", raw.get("port", 5060), 1, 65535)
        transport = raw.get("transport", "udp")
        if transport not in TRANSPORTS:
            self.error(f"{where}.transport", f"must be one of {', '.join(TRANSPORTS)}")
        qualify = self.integer(
            f"{where}.qualify_frequency", raw.get("qualify_frequency", 30), 0, 3600
        )
        registration = self.registration(where, raw.get("registration"))
        raw_dids = raw.get("dids", [])
        if not isinstance(raw_dids, list):
            self.error(f"{where}.dids", "must be an array of tables ([[trunks.dids]])")
            raw_dids = []
        dids = [
            self.did(f"{where}.dids[{j}]", rd, seen_dids, name) for j, rd in enumerate(raw_dids)
        ]
        return Trunk(
            name,
            match,
            trusted,
            codecs,
            tuple(d for d in dids if d),
            addresses,
            port,
            transport if transport in TRANSPORTS else "udp",
            qualify,
            registration,
        )

    def overlaps(self, trunks: list[Trunk]) -> None:
        # PJSIP identify sections must not overlap: the first by object order wins.
        owners: list[tuple[Any, str, str]] = []
        for t in trunks:
            for m in t.match:
                try:
                    net = _network(m)
                except ValueError:
                    continue
                for other_net, other_trunk, other_m in owners:
                    if (
                        other_trunk != t.name
                        and net.version == other_net.version
                        and (net.overlaps(other_net))
                    ):
                        self.error(
                            f"trunks[{t.name}].match",
                            f"{m} overlaps {other_m} of trunk {other_trunk}",
                        )
                owners.append((net, t.name, m))


def parse_inventory(data: dict[str, Any]) -> Inventory:
    check = _Checker()
    for extra in sorted(set(data) - {"trunks"}):
        check.error(extra, "unknown key")
    raw_trunks = data.get("trunks", [])
    if not isinstance(raw_trunks, list):
        check.error("trunks", "must be an array of tables ([[trunks]])")
        raw_trunks = []
    seen_dids: dict[str, str] = {}
    trunks = [t for i, raw in enumerate(raw_trunks) if (t := check.trunk(i, raw, seen_dids))]
    names = [t.name for t in trunks]
    for n in sorted({n for n in names if names.count(n) > 1}):
        check.error(f"trunks[{n}].name", "is used by more than one trunk")
    check.overlaps(trunks)
    if check.errors:
        key, message = check.errors[0]
        raise InventoryError(key, message, check.errors)
    return Inventory(tuple(trunks))


def default_inventory_path() -> Path:
    """The embedded development inventory (loopback carriers), shipped in the package."""
    return Path(str(resources.files("ivr") / "data" / "trunks.local.toml"))


def load_inventory(path: str | Path) -> Inventory:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InventoryError("inventory", f"{p} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError("inventory", f"{p} is not valid TOML: {exc}") from None
    return parse_inventory(data)
