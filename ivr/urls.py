"""Callback URLs, checked strictly: plain code, no I/O.

A URL we could never deliver to must be refused when the portal gives it (422), not
discovered a day of retries later; and a URL that became undeliverable (a settings
change) fails at once at delivery instead of being retried.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?$", re.IGNORECASE)


def callback_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a callback URL, or None when it can."""
    if any(ch.isspace() or ord(ch) < 0x20 or ch == "\\" for ch in url) or not url.isascii():
        return "must not contain spaces, control characters, backslashes or non-ASCII"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port out of range or not a number
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "must be an http or https URL"
    if "@" in parts.netloc:
        return "must not carry a user name or password"
    host = parts.hostname
    if not host:
        return "needs a host"
    if port == 0:
        return "must not use port 0"
    if parts.netloc.startswith("["):  # an IPv6 literal, and only that, goes in brackets
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"has an invalid IPv6 address [{host}]"
        return None
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if not _HOSTNAME.match(host):
        return f"has an invalid host name {host!r}"
    return None
