"""Request bodies: parsed strictly, every problem named by its field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ivr import jsoncodec
from ivr.urls import callback_url_problem
from ivr.verification.errors import DomainError, InvalidRequest


class InvalidJson(DomainError):
    status = 400
    code = "invalid_json"


class UnsupportedMediaType(DomainError):
    status = 415
    code = "unsupported_media_type"


async def json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object (413 past the size limit, 400 if not JSON)."""
    ctype = request.headers.get("Content-Type", "application/json")
    if ctype.split(";")[0].strip().lower() not in ("application/json", ""):
        raise UnsupportedMediaType("send the body as application/json")
    raw = await request.read()  # raises 413 past client_max_size
    try:
        # Strict: invalid UTF-8, NaN, a lone surrogate ("\ud800", no text: it could not be
        # stored or fingerprinted) and nesting past 1,024 levels are all errors here.
        data = jsoncodec.loads(raw)
    except ValueError as exc:
        if "depth" in str(exc):
            raise InvalidJson("the body is nested too deeply") from None
        raise InvalidJson("the body is not valid UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise InvalidJson("the body must be a JSON object")
    return data


def _only(data: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidRequest(f"unknown field {unknown[0]!r}", field=unknown[0])


def _opt_str(data: dict[str, Any], name: str, max_len: int) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string", field=name)
    if len(value) > max_len:
        raise InvalidRequest(f"{name} must be at most {max_len} characters", field=name)
    return value


@dataclass(frozen=True)
class CreateVerification:
    phone_number: str
    reference: str | None
    callback_url: str | None
    ttl_seconds: int | None

    @classmethod
    def parse(cls, data: dict[str, Any]) -> CreateVerification:
        _only(data, {"phone_number", "reference", "callback_url", "ttl_seconds"})
        phone = data.get("phone_number")
        if not isinstance(phone, str) or not phone.strip():
            raise InvalidRequest(
                "phone_number is required and must be a string", field="phone_number"
            )
        if len(phone) > 64:
            raise InvalidRequest("phone_number is too long", field="phone_number")
        ttl = data.get("ttl_seconds")
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int)):
            raise InvalidRequest("ttl_seconds must be an integer", field="ttl_seconds")
        callback_url = _opt_str(data, "callback_url", 2048)
        if callback_url is not None and (problem := callback_url_problem(callback_url)):
            raise InvalidRequest(f"callback_url {problem}", field="callback_url")
        return cls(phone, _opt_str(data, "reference", 255), callback_url, ttl)


@dataclass(frozen=True)
class CheckNumber:
    phone_number: str

    @classmethod
    def parse(cls, data: dict[str, Any]) -> CheckNumber:
        _only(data, {"phone_number"})
        phone = data.get("phone_number")
        if not isinstance(phone, str):
            raise InvalidRequest(
                "phone_number is required and must be a string", field="phone_number"
            )
        if len(phone) > 64:
            raise InvalidRequest("phone_number is too long", field="phone_number")
        return cls(phone)
