"""Loading the settings: embedded defaults, then a TOML file, then ``IVR_*`` variables.

Every value is coerced to its field's type or stops with a :class:`ConfigError` naming
the key; relative paths in a file are taken relative to that file.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ivr.config import PATH_SETTINGS, ConfigError, NodeSettings, PortalSettings, Settings

# Settings given as arrays of tables ([[portals]], [[nodes]]): in a file only.
ARRAYS: dict[str, type[Any]] = {"portals": PortalSettings, "nodes": NodeSettings}


def _coerce(key: str, tp: Any, value: Any, from_env: bool) -> Any:
    """Turn a TOML or environment value into the field's type, or name the key."""
    origin = typing.get_origin(tp)
    if origin is tuple:
        (item_tp, _) = typing.get_args(tp)
        if from_env and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise ConfigError(key, f"must be a list, got {value!r}")
        return tuple(_coerce(key, item_tp, v, from_env) for v in value)
    if tp is bool:
        if from_env and isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
        if isinstance(value, bool):
            return value
        raise ConfigError(key, f"must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(key, f"must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if from_env and isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ConfigError(key, f"must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if from_env and isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ConfigError(key, f"must be a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(key, f"must be a string, got {value!r}")
    raise ConfigError(key, f"unsupported setting type {tp!r}")  # pragma: no cover


# Settings that changed name: the error says the new one.
RENAMED = {"asterisk.modules": "asterisk.profile"}


def _section(cls: type[Any], name: str, data: Mapping[str, Any], from_env: bool) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            if (renamed := RENAMED.get(f"{name}.{key}")) is not None:
                hint = f" (renamed to {renamed!r})"
            raise ConfigError(f"{name}.{key}", f"unknown setting{hint}")
        out[key] = _coerce(f"{name}.{key}", hints[key], value, from_env)
    return out


def _read_secret_file(var: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(var, f"cannot read {path}: {exc.strerror}") from None


def _env_values(environ: Mapping[str, str]) -> dict[str, str]:
    """``IVR_*`` variables, with ``IVR_<NAME>_FILE=/path`` read as ``IVR_<NAME>`` (the way
    container secrets are mounted); both at once is an error."""
    out: dict[str, str] = {}
    for var, value in environ.items():
        if not var.startswith("IVR_") or not var.endswith("_FILE"):
            continue
        name = var.removesuffix("_FILE")
        if name in environ:
            raise ConfigError(var, f"give {name} or {var}, not both")
        out[name] = _read_secret_file(var, value)
    out.update((k, v) for k, v in environ.items() if k.startswith("IVR_") and k not in out)
    return {k: v for k, v in out.items() if not k.endswith("_FILE")}


def _env_arrays(var: str, text: str) -> list[Any]:
    """``IVR_PORTALS`` / ``IVR_NODES``: a JSON array of tables (as in the TOML file)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ConfigError(var, f"must be a JSON array of objects: {exc}") from None
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(var, "must be a JSON array of objects")
    return value


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, str] | str]:
    sections = {
        f.name for f in dataclasses.fields(Settings) if f.name not in ("inventory", *ARRAYS)
    }
    out: dict[str, Any] = {}
    for var, value in _env_values(environ).items():
        rest = var[4:].lower()
        if rest == "config":
            continue
        if rest == "inventory":
            out["inventory"] = value
            continue
        if rest in ARRAYS:
            out[rest] = _env_arrays(var, value)
            continue
        section, _, key = rest.partition("_")
        if section not in sections or not key:
            raise ConfigError(var, "unknown setting in the environment")
        out.setdefault(section, {})[key] = value
    return out


def _resolve_env(values: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """``env:NAME`` entries in tokens and secrets read the value from the environment,
    ``file:/path`` entries from a file (a mounted secret)."""
    out = dict(values)
    for key in ("tokens", "callback_secrets"):
        resolved = []
        for item in out.get(key, ()):
            if item.startswith("env:"):
                name = item[4:]
                if name not in environ:
                    raise ConfigError(f"portals.{key}", f"environment variable {name} is not set")
                resolved.append(environ[name])
            elif item.startswith("file:"):
                resolved.append(_read_secret_file(f"portals.{key}", item[5:]))
            else:
                resolved.append(item)
        if key in out:
            out[key] = tuple(resolved)
    return out


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Defaults, then the TOML file at ``path`` (or ``$IVR_CONFIG``), then ``IVR_*``."""
    environ = os.environ if environ is None else environ
    path = path or environ.get("IVR_CONFIG") or None
    file_data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            file_data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("config", f"file {p} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("config", f"{p} is not valid TOML: {exc}") from None
    base_dir = Path(path).resolve().parent if path else Path.cwd()

    kwargs: dict[str, Any] = {}
    sections = {f.name: f for f in dataclasses.fields(Settings)}
    hints = typing.get_type_hints(Settings)
    for layer, from_env in ((file_data, False), (_env_overrides(environ), True)):
        for name, value in layer.items():
            if name not in sections:
                raise ConfigError(name, "unknown section")
            tp = hints[name]
            if name in ARRAYS:
                if not isinstance(value, list):
                    raise ConfigError(name, f"must be an array of tables ([[{name}]])")
                cls = ARRAYS[name]
                # From the environment the array replaces the file's (JSON keeps types).
                kwargs[name] = tuple(
                    cls(**_resolve_env(_section(cls, f"{name}[{i}]", item, False), environ))
                    for i, item in enumerate(value)
                )
                continue
            if tp is str:
                kwargs[name] = _coerce(name, str, value, from_env)
                if not from_env:
                    kwargs[name] = str((base_dir / kwargs[name]).resolve())
                continue
            if not isinstance(value, Mapping):
                raise ConfigError(name, "must be a table")
            merged = dict(kwargs.get(name, {}))
            section = _section(tp, name, value, from_env)
            if name == "store" and str(section.get("url", "")).startswith("env:"):
                var = section["url"][4:]
                if var not in environ:
                    raise ConfigError("store.url", f"environment variable {var} is not set")
                section["url"] = environ[var]
            elif name == "store" and str(section.get("url", "")).startswith("file:"):
                section["url"] = _read_secret_file("store.url", section["url"][5:])
            for key, item in section.items():
                if not from_env and (name, key) in PATH_SETTINGS and item and item != ":memory:":
                    section[key] = str((base_dir / Path(item).expanduser()).resolve())
            merged.update(section)
            kwargs[name] = merged
    built: dict[str, Any] = {}
    for name, value in kwargs.items():
        tp = hints[name]
        built[name] = tp(**value) if isinstance(value, dict) else value
    settings = Settings(**built)
    settings.validate()
    return settings


def replace(settings: Settings, **sections: Mapping[str, Any]) -> Settings:
    """A copy of ``settings`` with some section fields changed (for tests and the CLI)."""
    changes: dict[str, Any] = {}
    for name, values in sections.items():
        changes[name] = dataclasses.replace(getattr(settings, name), **values)
    return dataclasses.replace(settings, **changes)
