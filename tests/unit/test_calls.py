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


SHOWN = {"CID_NUMPRES": "allowed"}
N, W, U = "09012345678", Absence.USER_WITHHELD, Absence.UNKNOWN


def v(**headers: str) -> dict[str, str]:
    """Channel variables of a call shown as allowed, with these raw headers."""
    names = {"frm": "SIP_FROM", "pai": "SIP_PAI", "privacy": "SIP_PRIVACY", "rpid": "SIP_RPID"}
    return {**SHOWN, **{names[k]: value for k, value in headers.items()}}


@pytest.mark.parametrize(
    ("number", "vars", "absence"),
    [
        # Several Privacy headers: the dialplan joins them; any id/header/user withholds.
        (N, v(privacy="none id "), W),
        (N, v(privacy="none  "), None),
        (N, v(privacy="critical  "), None),
        (N, v(privacy="none;user"), W),  # one header, several values
        # The withhold prefix 184 in the number itself.
        ("18409012345678", SHOWN, W),
        ("1840312345678", SHOWN, W),
        # Remote-Party-ID privacy=uri hides the number, like full; name hides the name only.
        (N, v(rpid="<sip:09012345678@x>;privacy=uri"), W),
        (N, v(rpid='<sip:09012345678@x>;privacy="full"'), W),
        (N, v(rpid="<sip:09012345678@x>;privacy=name"), None),
        # An anonymous From withholds whatever else the INVITE carries: consistent with
        # anonymous@anonymous.invalid, with or without a PAI or Privacy: none.
        (N, v(frm="<sip:anonymous@192.0.2.1>;tag=x", pai="<tel:+819012345678>"), W),
        (N, v(frm="<sip:Anonymous@example.jp>", privacy="none"), W),
        (N, v(frm="<sip:anonymous@anonymous.invalid>", privacy="none"), W),
        (N, v(frm="<sip:09012345678@192.0.2.1>", pai="<tel:+819012345678>"), None),
        # A NUL (or another control character) anywhere in the identity: not believed.
        ("0901234", v(frm="<sip:0901234%005678@192.0.2.1>;tag=x"), U),
        (N, v(frm="<sip:09012345678%00999@192.0.2.1>"), U),
        (N, v(pai="<tel:+819012345678%0d>"), U),
        ("0901234\x005678", SHOWN, U),
    ],
)
def test_identity_edge_cases(number: str, vars: dict[str, str], absence: Absence | None) -> None:
    identity = read_identity(number, "", vars)
    assert identity.absence == absence
    assert (identity.number is None) == (absence is not None)
