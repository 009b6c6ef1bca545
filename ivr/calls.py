"""A call, from what Asterisk shows of it to the outcome: plain code, no I/O.

What Asterisk exposes is not enough by itself (LAB-NOTES, "what the app can see"): a
bare anonymous From arrives as presentation "allowed", ``Privacy: id`` without a
P-Asserted-Identity is ignored, and on an untrusted endpoint even ``Privacy: id`` with
PAI is lost. So the dialplan passes the raw headers (as Stasis() arguments,
:mod:`ivr.stasis.handoff`, or as channel variables in the older form) and this module
reads them together with the caller number and presentation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ivr import numbers
from ivr.trunks import Trunk
from ivr.vocabulary import Absence, Outcome

__all__ = ["Absence", "CallerIdentity", "Outcome", "Precheck", "precheck", "read_identity"]


@dataclass(frozen=True, slots=True)
class CallerIdentity:
    raw_number: str  # as Asterisk received it
    number: str | None  # E.164 when shown and parseable
    presentation: str  # Asterisk's num-pres
    absence: Absence | None  # set when number is None
    asserted: bool  # a P-Asserted-Identity header was present


_PRIVACY_WITHHOLD = re.compile(r"\b(id|header|user)\b", re.IGNORECASE)
_RPID_WITHHOLD = re.compile(r"privacy\s*=\s*\"?(full|uri)\b", re.IGNORECASE)
_PAYPHONE = re.compile(r"coin\s*line|payphone|pay\s*phone|公衆電話", re.IGNORECASE)
_UNAVAILABLE = re.compile(r"unavailable|interworking|out\s*of\s*area|表示圏外", re.IGNORECASE)
_ANON_NUMBERS = {"", "anonymous", "unavailable", "unknown", "restricted", "private", "withheld"}
# The user part of a From URI: "Name" <sip:user@host;...>, sip:user@host or tel:+81...
_FROM_USER = re.compile(r"(?:sips?|tel):([^@;>]*)", re.IGNORECASE)
# In Japan 184 before a number withholds it for that call (186 shows it). A network
# passes neither on; seen in a caller number, the caller asked not to be identified.
_WITHHOLD_PREFIX = "184"
# A control character, raw or %-escaped (DEL included).
_CONTROL = re.compile(r"[\x00-\x1f]|%(?:0[0-9a-f]|1[0-9a-f]|7f)", re.IGNORECASE)


def _malformed(*texts: str) -> bool:
    """A NUL or other control character, raw or %-escaped, in an identity header:
    Asterisk cuts the number at a NUL, so what is left must not be believed."""
    return any(_CONTROL.search(text) for text in texts)


def read_identity(
    caller_number: str,
    caller_name: str,
    channelvars: Mapping[str, str | None],
    complete: bool = True,
) -> CallerIdentity:
    """Who is calling, from the StasisStart channel and the headers the dialplan passed
    (by their channel-variable names); ``complete`` is false when those arrived cut.

    The decisions (docs/identity.md): a number counts as shown only when nothing says
    otherwise. Withheld (user_withheld) when any holds: Asterisk's presentation is
    prohibited; any Privacy header asks for id, header or user; Remote-Party-ID has
    privacy=full or uri; the From is anonymous (user ``anonymous`` or host
    ``anonymous.invalid``), even with a P-Asserted-Identity (the caller chose not to be
    identified, whatever the network knows); the number begins with the withhold prefix
    184. A number that is malformed (control characters) or does not parse is unknown,
    and so is any number when the headers arrived cut: what is missing might withhold it.
    """
    pai = channelvars.get("SIP_PAI") or ""
    privacy = channelvars.get("SIP_PRIVACY") or ""
    rpid = channelvars.get("SIP_RPID") or ""
    from_ = channelvars.get("SIP_FROM") or ""
    pres = (channelvars.get("CID_NUMPRES") or "").lower()
    raw = (caller_number or "").strip()
    texts = " ".join((caller_name or "", raw, from_, pai))
    from_user = (m.group(1) if (m := _FROM_USER.search(from_)) else "").strip().lower()

    absence: Absence | None = None
    if _PAYPHONE.search(texts):
        absence = Absence.PAYPHONE
    elif pres == "unavailable" or _UNAVAILABLE.search(texts):
        absence = Absence.UNAVAILABLE
    elif (
        pres.startswith("prohib")
        or _PRIVACY_WITHHOLD.search(privacy)
        or _RPID_WITHHOLD.search(rpid)
        or "anonymous.invalid" in from_.lower()
        or from_user == "anonymous"
        or raw.lower() == "anonymous"
        or (raw.lstrip("+").startswith(_WITHHOLD_PREFIX) and len(raw) > 10)
    ):
        absence = Absence.USER_WITHHELD
    elif not complete or _malformed(raw, from_, pai):
        absence = Absence.UNKNOWN
    number: str | None = None
    if absence is None:
        if raw.lower() in _ANON_NUMBERS:
            absence = Absence.UNKNOWN
        else:
            try:
                number = numbers.normalize(raw)
            except numbers.InvalidNumber:
                absence = Absence.UNKNOWN
    return CallerIdentity(raw, number, pres or "allowed", absence, bool(pai))


@dataclass(frozen=True, slots=True)
class Precheck:
    """The outcome when it is decided without the store (``None``: look for a pending one)."""

    outcome: Outcome | None
    reason: str | None = None


def precheck(
    identity: CallerIdentity,
    trunk: Trunk | None,
    did_known: bool,
    policy: numbers.NumberPolicy,
) -> Precheck:
    """Everything about a call that needs no stored state, in the order it matters."""
    # A caller ID is only as good as the network that asserts it.
    if trunk is None or not trunk.trusted:
        return Precheck(Outcome.REJECTED_SOURCE, "untrusted_trunk" if trunk else "unknown_trunk")
    if identity.number is None:
        return Precheck(Outcome.WITHHELD, str(identity.absence or Absence.UNKNOWN))
    verdict = numbers.check(identity.number, policy)
    if not verdict.eligible:
        return Precheck(Outcome.NOT_ELIGIBLE, verdict.reason)
    if not did_known:
        return Precheck(Outcome.NO_PENDING, "unknown_did")
    return Precheck(None)
