"""Client tokens and the public view a login page gets: plain code, no I/O."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from ivr.clienttoken import ClientTokens, TokenProblem
from ivr.verification.client_view import Hint, hint_of, latest_hint, masked_national, public_view
from ivr.verification.models import Verification
from ivr.verification.ports import CallRecord
from ivr.vocabulary import Absence, AnswerMode, Outcome

NOW = 1_800_000_000.0


def test_token_reads_only_its_verification_until_expiry() -> None:
    tokens = ClientTokens("k" * 32)
    token = tokens.issue("vrf_a", NOW + 300)
    assert tokens.check(token, "vrf_a", NOW) is None
    assert tokens.check(token, "vrf_b", NOW) is TokenProblem.INVALID
    assert tokens.check(token, "vrf_a", NOW + 300) is TokenProblem.EXPIRED
    # The expiry is covered by the MAC: a later one does not pass.
    prefix, _, mac = token.split(".")
    longer = f"{prefix}.{int(NOW) + 9999}.{mac}"
    assert tokens.check(longer, "vrf_a", NOW) is TokenProblem.INVALID
    # Another key (another deployment) does not accept it; the same key does.
    assert ClientTokens("x" * 32).check(token, "vrf_a", NOW) is TokenProblem.INVALID
    assert ClientTokens("k" * 32).check(token, "vrf_a", NOW) is None
    assert ClientTokens().ephemeral and not tokens.ephemeral


@given(st.text(max_size=80))
def test_token_garbage_is_invalid(garbage: str) -> None:
    assert ClientTokens("k" * 32).check(garbage, "vrf_a", NOW) is TokenProblem.INVALID


def _call(outcome: Outcome, at: float, did: str = "+81355550001", **kw: object) -> CallRecord:
    base = CallRecord(
        channel_id=f"c{at}",
        did=did,
        trunk="carrier",
        caller_masked="",
        presentation="allowed",
        absence=None,
        outcome=outcome,
        reason=None,
        answer_mode=AnswerMode.ANSWER,
        started_at=at,
        decided_at=at,
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def _v() -> Verification:
    return Verification.new("+819012345678", "+81355550001", NOW, 300)


def test_hints_name_what_the_holder_can_do() -> None:
    assert hint_of(_call(Outcome.WITHHELD, NOW, absence=Absence.USER_WITHHELD)) is Hint.WITHHELD
    assert hint_of(_call(Outcome.WITHHELD, NOW, absence=Absence.PAYPHONE)) is Hint.PAYPHONE
    assert hint_of(_call(Outcome.WITHHELD, NOW, absence=Absence.UNAVAILABLE)) is Hint.UNAVAILABLE
    assert hint_of(_call(Outcome.NOT_ELIGIBLE, NOW)) is Hint.NOT_ELIGIBLE
    assert hint_of(_call(Outcome.NO_PENDING, NOW)) is Hint.OTHER_NUMBER
    assert hint_of(_call(Outcome.REJECTED_SOURCE, NOW)) is None
    assert hint_of(_call(Outcome.VERIFIED, NOW, verification_id="vrf_x")) is None
    # A call that found its own (overdue) verification is no stranger's call.
    assert hint_of(_call(Outcome.NO_PENDING, NOW, verification_id="vrf_x")) is None


def test_latest_hint_only_from_this_dial_number_since_creation() -> None:
    v = _v()
    calls = [
        _call(Outcome.WITHHELD, NOW - 5, absence=Absence.USER_WITHHELD),  # before: not ours
        _call(Outcome.NO_PENDING, NOW + 3, did="+81355550002"),  # another dial number
        _call(Outcome.NO_PENDING, NOW + 1),
        _call(Outcome.WITHHELD, NOW + 2, absence=Absence.USER_WITHHELD),
    ]
    hint = latest_hint(v, calls)
    assert hint is not None and hint.kind is Hint.WITHHELD and hint.at == NOW + 2
    assert latest_hint(v.cancel(NOW + 4), calls) is None  # a settled one needs no hint


def test_public_view_hides_the_number() -> None:
    v = _v()
    view = public_view(v, None, NOW + 100)
    assert view["phone_number_masked"] == "090-****-5678"
    assert "phone_number" not in view and "reference" not in view and "callback_url" not in view
    assert view["dial_number"] == {
        "e164": "+81355550001",
        "national": "03-5555-0001",
        "tel_uri": "tel:+81355550001",
    }
    assert view["expires_in"] == 200
    assert masked_national("+81312345678") == "03-****-5678"
    done = public_view(v.verify(NOW + 5, "ch", "carrier", "09012345678"), None, NOW + 6)
    assert done["status"] == "verified" and done["expires_in"] == 0
    assert "caller_number" not in str(done)
