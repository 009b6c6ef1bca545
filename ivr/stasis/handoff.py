"""How the dialplan hands a call to the gateway: the caller's identity as Stasis() arguments.

``Stasis(<app>,<DID>,<trunk>,id1,<num-pres>,<Privacy>,<Privacy>,<Privacy>,<RPID>,<PAI>,<From>,end)``

The raw identity headers (why they are needed at all: :mod:`ivr.calls`) travel in the
StasisStart event's ``args``, read inline by the ``Stasis()`` line, instead of being
``Set()`` into channel variables first. Every ``Set()`` is a dialplan priority and a
variable change, and Asterisk publishes both (a new channel snapshot, a VarSet message) to
every Stasis subscriber (the AMI, the ARI app, the channel cache): five captured headers
cost a dozen messages per call before the gateway sees it. As arguments they cost none.

Each header is sent as base64 of ``x`` + its value: Stasis() splits its arguments on
commas and treats quotes, parentheses and backslashes specially, and a caller writes
their own From header; base64 has none of those characters, and the ``x`` keeps
``BASE64_ENCODE`` from warning about an empty header. The presentation comes first and
the caller-written From last, followed by ``end``: Asterisk cuts a dialplan line that
substitutes to more than about 8 KB, and a cut one is seen as such (no ``end``), never
read as a shorter set of headers.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

MARKER = "id1"  # this layout; anything else in that place is the older channel-variable form
END = "end"
# (header, occurrence) in argument order, and the channel variable each stands for in
# the older form (ari.conf ``channelvars``), which :func:`ivr.calls.read_identity` reads.
HEADERS: tuple[tuple[str, int | None, str], ...] = (
    ("Privacy", 1, "SIP_PRIVACY"),
    ("Privacy", 2, "SIP_PRIVACY"),  # "Privacy: none" then "Privacy: id" must still withhold
    ("Privacy", 3, "SIP_PRIVACY"),
    ("Remote-Party-ID", None, "SIP_RPID"),
    ("P-Asserted-Identity", None, "SIP_PAI"),
    ("From", None, "SIP_FROM"),
)


def dialplan_args() -> str:
    """The identity part of the Stasis() line, after the DID and the trunk."""

    def read(name: str, nth: int | None) -> str:
        which = f"{name},{nth}" if nth else name
        return f"${{BASE64_ENCODE(x${{PJSIP_HEADER(read,{which})}})}}"

    headers = ",".join(read(name, nth) for name, nth, _ in HEADERS)
    return f"{MARKER},${{CALLERID(num-pres)}},{headers},{END}"


@dataclass(frozen=True, slots=True)
class Identity:
    """What the dialplan passed: channel-variable names -> values, and whether the
    arguments arrived whole."""

    vars: dict[str, str]
    complete: bool = True


_EMPTY = base64.b64encode(b"x").decode()  # most headers are absent on most calls


def _decode(value: str) -> str | None:
    if value == _EMPTY:
        return ""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw.startswith(b"x"):
        return None
    return raw[1:].decode("utf-8", errors="replace")


def read_args(args: Sequence[str]) -> Identity | None:
    """The identity from the Stasis() arguments after the DID and trunk; None when they
    are not in this layout (an Asterisk whose dialplan predates it: channel variables)."""
    if not args or args[0] != MARKER:
        return None
    expected = 2 + len(HEADERS) + 1  # marker, presentation, headers, end
    if len(args) != expected or args[-1] != END:
        return Identity({}, complete=False)
    values: dict[str, list[str]] = {}
    for (_, _, var), encoded in zip(HEADERS, args[2:-1], strict=True):
        text = _decode(encoded)
        if text is None:
            return Identity({}, complete=False)
        if text:
            values.setdefault(var, []).append(text)
    out = {var: " ".join(texts) for var, texts in values.items()}
    out["CID_NUMPRES"] = args[1]
    return Identity(out)
