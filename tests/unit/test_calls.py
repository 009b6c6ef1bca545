"""Caller identity and the outcome, from what Asterisk shows (LAB-NOTES table)."""

from __future__ import annotations

import pytest

from ivr.calls import Absence, Outcome, precheck, read_identity
from ivr.numbers import NumberPolicy
from ivr.trunks import Trunk

TRUSTED = Trunk("carrier", ("127.0.0.1",), trusted=True)
UNTRUSTED = Trunk("peer", ("127.0.0.2",), trusted=False)


def ident(number: str, name: str = "", **vars: str) -> object:
    return read_identity(number, name, vars)


@pytest.mark.parametrize(
    ("number", "name", "vars", "absence"),
    [
        (
            "anonymous",
            "Anonymous",
            {
                "SIP_FROM": '"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1',
                "CID_NUMPRES": "allowed_not_screened",
            },
            Absence.USER_WITHHELD,
        ),
        (
            "0398765432",
            "",
            {
                "SIP_PAI": "<sip:0398765432@x>",
                "SIP_PRIVACY": "id",
                "CID_NUMPRES": "prohib_not_screened",
            },
            Absence.USER_WITHHELD,
        ),
        ("0312345678", "", {"SIP_PRIVACY": "id", "CID_NUMPRES": "allowed"}, Absence.USER_WITHHELD),
        ("0312345678", "", {"SIP_RPID": "<sip:0312345678@x>;privacy=full"}, Absence.USER_WITHHELD),
        ("", "Coin line/payphone", {}, Absence.PAYPHONE),
        ("", "公衆電話", {}, Absence.PAYPHONE),
        ("", "Unavailable", {}, Absence.UNAVAILABLE),
        ("", "", {"CID_NUMPRES": "unavailable"}, Absence.UNAVAILABLE),
        ("", "", {}, Absence.UNKNOWN),
        ("garbage", "", {}, Absence.UNKNOWN),
    ],
)
def test_no_number_cases(number: str, name: str, vars: dict[str, str], absence: Absence) -> None:
    identity = read_identity(number, name, vars)
    assert identity.number is None
    assert identity.absence is absence


def test_shown_number() -> None:
    identity = read_identity("+819012345678", "", {"CID_NUMPRES": "allowed"})
    assert identity.number == "+819012345678" and identity.absence is None


def test_precheck_order() -> None:
    policy = NumberPolicy()
    shown = read_identity("09012345678", "", {})
    hidden = read_identity("anonymous", "", {})
    voip = read_identity("05012345678", "", {})
    assert precheck(shown, UNTRUSTED, True, policy).outcome is Outcome.REJECTED_SOURCE
    assert precheck(shown, None, True, policy).reason == "unknown_trunk"
    assert precheck(hidden, TRUSTED, True, policy).outcome is Outcome.WITHHELD
    check = precheck(voip, TRUSTED, True, policy)
    assert (check.outcome, check.reason) == (Outcome.NOT_ELIGIBLE, "voip")
    assert precheck(shown, TRUSTED, False, policy).outcome is Outcome.NO_PENDING
    assert precheck(shown, TRUSTED, True, policy).outcome is None
