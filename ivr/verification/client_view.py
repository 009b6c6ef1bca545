"""What a login page may know about one verification, in plain code without I/O.

The public view carries the status, the number to call, the time left and the registered
number masked; never the number in full, the portal's reference or the callback URL.

A ``hint`` says what the last call to the verification's dial number that could not
verify anything was: withheld (186), from a pay phone, without a number, from a number
that cannot be used, or from another phone. The dial number is shared with other holders'
verifications, so such a call is not provably this holder's: the page words the hint as
"if that was you" guidance, and it shows only the kind and the time, never the caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from ivr.numbers import national_format
from ivr.verification.models import Status, Verification, iso
from ivr.verification.ports import CallRecord
from ivr.vocabulary import Absence, Outcome


class Hint(StrEnum):
    WITHHELD = "withheld"  # 非通知: call again with 186
    PAYPHONE = "payphone"  # 公衆電話: cannot be used
    UNAVAILABLE = "unavailable"  # 表示圏外: no number came through
    NOT_ELIGIBLE = "not_eligible"  # 050, 0120 ... cannot be used
    OTHER_NUMBER = "other_number"  # a number other than the registered one


@dataclass(frozen=True, slots=True)
class CallHint:
    kind: Hint
    at: float


def hint_of(call: CallRecord) -> Hint | None:
    """The guidance a call that verified nothing calls for; None for any other call."""
    if call.verification_id is not None:
        return None  # it belonged to a verification (verified, or an overdue one)
    if call.outcome is Outcome.WITHHELD:
        if call.absence == Absence.PAYPHONE:
            return Hint.PAYPHONE
        if call.absence == Absence.USER_WITHHELD:
            return Hint.WITHHELD
        return Hint.UNAVAILABLE
    if call.outcome is Outcome.NOT_ELIGIBLE:
        return Hint.NOT_ELIGIBLE
    if call.outcome is Outcome.NO_PENDING:
        return Hint.OTHER_NUMBER
    return None  # rejected at the source, or failed: nothing the holder can act on


def latest_hint(v: Verification, calls: Iterable[CallRecord]) -> CallHint | None:
    """The newest hint among calls to ``v``'s dial number since ``v`` was created."""
    if v.status is not Status.PENDING:
        return None
    best: CallHint | None = None
    for call in calls:
        if call.did != v.dial_number or call.started_at < v.created_at:
            continue
        kind = hint_of(call)
        if kind is not None and (best is None or call.started_at > best.at):
            best = CallHint(kind, call.started_at)
    return best


def masked_national(e164: str) -> str:
    """``+819012345678`` -> ``090-****-5678``: the first group and the last four digits."""
    text = national_format(e164)
    head, sep, rest = text.partition("-")
    if not sep:
        return text
    digits = sum(ch.isdigit() for ch in rest)
    out, seen = [], 0
    for ch in rest:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen > digits - 4 else "*")
        else:
            out.append(ch)
    return head + sep + "".join(out)


def public_view(v: Verification, hint: CallHint | None, now: float) -> dict[str, object]:
    """The verification as a login page sees it (``GET /client/v1/verifications/{id}``)."""
    out: dict[str, object] = {
        "id": v.id,
        "status": str(v.status),
        "dial_number": {
            "e164": v.dial_number,
            "national": national_format(v.dial_number),
            "tel_uri": "tel:" + v.dial_number,
        },
        "phone_number_masked": masked_national(v.phone_number),
        "expires_at": iso(v.expires_at),
        # Seconds left by the gateway's clock: a browser's clock may be off by minutes.
        "expires_in": max(0, round(v.expires_at - now)) if v.status is Status.PENDING else 0,
        "hint": None if hint is None else {"kind": str(hint.kind), "at": iso(hint.at)},
    }
    if v.status is Status.VERIFIED:
        out["verified_at"] = iso(v.verified_at)
    return out
