"""The trunk inventory: carrier SIP trunks and the authentication numbers (DIDs) on them.

The inventory (TOML, see ``sip_config/``) is the source of truth: the Asterisk config
is generated from it and the gateway takes its DIDs and trusted trunks from it.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr import numbers

ANSWER_MODES = ("answer", "early_media", "reject")
KNOWN_CODECS = ("ulaw", "alaw", "g722", "g729", "opus", "gsm")


class InventoryError(ValueError):
    """The inventory is wrong; ``key`` names the trunk and key (``trunks[carrier].match``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


@dataclass(frozen=True)
class Did:
    number: str  # E.164
    # early_media by default: the caller hears the result and, never answered, pays nothing.
    answer_mode: str = "early_media"
    language: str | None = None  # prompts; None: the settings' calls.language

    @property
    def national(self) -> str:
        return "0" + self.number[3:]


@dataclass(frozen=True)
class Trunk:
    name: str
    match: tuple[str, ...]
    trusted: bool = False
    codecs: tuple[str, ...] = ("ulaw", "alaw")
    dids: tuple[Did, ...] = ()


@dataclass(frozen=True)
class Inventory:
    trunks: tuple[Trunk, ...] = field(default_factory=tuple)

    @property
    def dids(self) -> dict[str, tuple[Trunk, Did]]:
        return {d.number: (t, d) for t in self.trunks for d in t.dids}

    def trunk(self, name: str) -> Trunk | None:
        return next((t for t in self.trunks if t.name == name), None)


def _str_list(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InventoryError(key, "must be a list of strings")
    return tuple(value)


def parse_inventory(data: dict[str, Any]) -> Inventory:
    unknown = set(data) - {"trunks"}
    if unknown:
        raise InventoryError(sorted(unknown)[0], "unknown key")
    trunks: list[Trunk] = []
    seen_dids: dict[str, str] = {}
    for i, raw in enumerate(data.get("trunks", [])):
        name = raw.get("name")
        if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
            raise InventoryError(
                f"trunks[{i}].name", f"must be letters, digits, - or _, got {name!r}"
            )
        where = f"trunks[{name}]"
        extra = set(raw) - {"name", "match", "trusted", "codecs", "dids"}
        if extra:
            raise InventoryError(f"{where}.{sorted(extra)[0]}", "unknown key")
        match = _str_list(f"{where}.match", raw.get("match", []))
        for m in match:
            try:
                ipaddress.ip_network(m.split(":")[0] if m.count(":") == 1 else m, strict=False)
            except ValueError:
                raise InventoryError(
                    f"{where}.match", f"{m!r} is not an address or range"
                ) from None
        trusted = raw.get("trusted", False)
        if not isinstance(trusted, bool):
            raise InventoryError(f"{where}.trusted", "must be true or false")
        if trusted and not match:
            raise InventoryError(f"{where}.match", "a trusted trunk needs at least one match range")
        codecs = _str_list(f"{where}.codecs", raw.get("codecs", ["ulaw", "alaw"]))
        for c in codecs:
            if c not in KNOWN_CODECS:
                raise InventoryError(f"{where}.codecs", f"unknown codec {c!r}")
        dids: list[Did] = []
        for j, rd in enumerate(raw.get("dids", [])):
            dkey = f"{where}.dids[{j}]"
            if not isinstance(rd, dict) or not isinstance(rd.get("number"), str):
                raise InventoryError(dkey, "needs a number")
            verdict = numbers.check(rd["number"])
            if verdict.e164 is None or not verdict.e164.startswith("+81"):
                raise InventoryError(f"{dkey}.number", f"{rd['number']!r} is not a Japanese number")
            mode = rd.get("answer_mode", "early_media")
            if mode not in ANSWER_MODES:
                raise InventoryError(
                    f"{dkey}.answer_mode", f"must be one of {', '.join(ANSWER_MODES)}"
                )
            language = rd.get("language")
            if language is not None and language not in ("ja", "en"):
                raise InventoryError(f"{dkey}.language", "must be ja or en")
            extra_keys = set(rd) - {"number", "answer_mode", "language"}
            if extra_keys:
                raise InventoryError(f"{dkey}.{sorted(extra_keys)[0]}", "unknown key")
            if verdict.e164 in seen_dids:
                raise InventoryError(
                    f"{dkey}.number",
                    f"{rd['number']} is already on trunk {seen_dids[verdict.e164]}",
                )
            seen_dids[verdict.e164] = name
            dids.append(Did(verdict.e164, mode, language))
        trunks.append(Trunk(name, match, trusted, codecs, tuple(dids)))
    names = [t.name for t in trunks]
    for n in names:
        if names.count(n) > 1:
            raise InventoryError(f"trunks[{n}].name", "is used by more than one trunk")
    return Inventory(tuple(trunks))


def load_inventory(path: str | Path) -> Inventory:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InventoryError("inventory", f"{p} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError("inventory", f"{p} is not valid TOML: {exc}") from None
    return parse_inventory(data)
