"""The identity headers as Stasis() arguments (ivr.stasis.handoff): what the dialplan
line substitutes to, split the way Asterisk splits application arguments, read back."""

from __future__ import annotations

import base64
import re

from hypothesis import given
from hypothesis import strategies as st

from ivr.calls import read_identity
from ivr.stasis import handoff
from ivr.vocabulary import Absence


def substituted(pres: str, headers: dict[tuple[str, int | None], str]) -> list[str]:
    """What Asterisk makes of the dialplan's identity arguments for these header values,
    split on commas as Stasis() splits its arguments (after the DID and trunk)."""
    line = handoff.dialplan_args().replace("${CALLERID(num-pres)}", pres)

    def encode(m: re.Match[str]) -> str:
        name, _, nth = m.group(1).partition(",")
        value = headers.get((name, int(nth) if nth else None), "")
        return base64.b64encode(b"x" + value.encode()).decode()

    line = re.sub(r"\$\{BASE64_ENCODE\(x\$\{PJSIP_HEADER\(read,([^)]*)\)\}\)\}", encode, line)
    return line.split(",")


def test_headers_come_back_under_their_channel_variable_names() -> None:
    args = substituted(
        "prohib_not_screened",
        {
            ("Privacy", 1): "none",
            ("Privacy", 2): "id",
            ("P-Asserted-Identity", None): "<tel:+81398765432>",
            ("From", None): '"Taro, Yamada" <sip:0312345678@192.0.2.1>;tag=a(b',
        },
    )
    got = handoff.read_args(args)
    assert got is not None and got.complete
    assert got.vars == {
        "CID_NUMPRES": "prohib_not_screened",
        "SIP_PRIVACY": "none id",
        "SIP_PAI": "<tel:+81398765432>",
        "SIP_FROM": '"Taro, Yamada" <sip:0312345678@192.0.2.1>;tag=a(b',
    }


@given(st.text(), st.text(), st.text())
def test_no_header_text_can_shift_or_forge_another_argument(frm: str, pai: str, rpid: str) -> None:
    # A caller writes their own From: commas, quotes, parentheses and backslashes in it
    # must never move the Privacy arguments that follow or precede it.
    headers = {("From", None): frm, ("P-Asserted-Identity", None): pai}
    headers[("Remote-Party-ID", None)] = rpid
    got = handoff.read_args(substituted("allowed", headers))
    assert got is not None and got.complete
    assert "SIP_PRIVACY" not in got.vars
    assert got.vars.get("SIP_FROM", "") == frm.encode().decode("utf-8", errors="replace")


def test_a_cut_line_is_never_read_as_fewer_headers() -> None:
    args = substituted("allowed", {("From", None): "<sip:anonymous@anonymous.invalid>"})
    for cut in (args[:-1], args[:-2], [*args[:-2], args[-2][:10]], [*args[:-1], "en"]):
        got = handoff.read_args(cut)
        assert got is not None and not got.complete
    identity = read_identity("09012345678", "", {}, complete=False)
    assert identity.number is None and identity.absence is Absence.UNKNOWN


def test_garbage_in_a_header_argument_is_an_incomplete_identity() -> None:
    args = substituted("allowed", {})
    args[3] = "not base64!"
    assert handoff.read_args(args) == handoff.Identity({}, complete=False)
    args[3] = base64.b64encode(b"no sentinel").decode()
    assert handoff.read_args(args) == handoff.Identity({}, complete=False)


def test_the_older_dialplan_passes_no_identity_arguments() -> None:
    assert handoff.read_args([]) is None
    assert handoff.read_args(["something-else"]) is None
