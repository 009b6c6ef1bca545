from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from random import Random

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ivr.verification.events import terminal_event
from ivr.verification.models import (
    InvalidTransition,
    Status,
    Verification,
    choose_dial_number,
    iso,
    time_ordered_id,
)

PHONE, DID = "+819012345678", "+81355550001"


def pending(now: float = 1000.0, ttl: float = 180.0, did: str = DID) -> Verification:
    return Verification.new(PHONE, did, now, ttl)


def test_verify_records_the_call() -> None:
    v = pending().verify(1001.0, "chan.1", "carrier", "09012345678")
    assert v.status is Status.VERIFIED
    assert (v.verified_at, v.channel_id, v.trunk, v.caller_number) == (
        1001.0,
        "chan.1",
        "carrier",
        "09012345678",
    )


def test_no_verify_at_or_after_expiry() -> None:
    with pytest.raises(InvalidTransition):
        pending().verify(1180.0, "c", "t", "n")


@pytest.mark.parametrize("first", ["verify", "expire", "cancel"])
@pytest.mark.parametrize("second", ["verify", "expire", "cancel"])
def test_terminal_states_never_change(first: str, second: str) -> None:
    v = pending()
    moves = {
        "verify": lambda x: x.verify(1001.0, "c", "t", "n"),
        "expire": lambda x: x.expire(1200.0),
        "cancel": lambda x: x.cancel(1001.0),
    }
    done = moves[first](v)
    assert done.status.terminal
    with pytest.raises(InvalidTransition):
        moves[second](done)


def test_cancel_reason() -> None:
    assert pending().cancel(1001.0, "superseded").cancel_reason == "superseded"


def test_choose_dial_number_avoids_held_dids() -> None:
    pool = ["+81355550001", "+81355550002", "+81355550003"]
    held = [pending(did="+81355550001"), pending(did="+81355550003")]
    for seed in range(20):
        assert choose_dial_number(pool, held, Random(seed)) == ("+81355550002", None)


def test_choose_dial_number_is_random_among_free() -> None:
    pool = [f"+8135555000{i}" for i in range(1, 4)]
    seen = {choose_dial_number(pool, [], Random(seed))[0] for seed in range(50)}
    assert seen == set(pool)


def test_choose_dial_number_supersedes_the_oldest_when_all_held() -> None:
    old = pending(now=900.0, did="+81355550002")
    new = pending(now=950.0, did="+81355550001")
    did, superseded = choose_dial_number(["+81355550001", "+81355550002"], [new, old], Random(1))
    assert superseded == old and did == "+81355550002"


def test_terminal_event_body() -> None:
    v = pending().verify(1001.0, "c", "t", "n")
    event_id, type_, body = terminal_event(v, 1001.0)
    assert event_id.startswith("msg_") and type_ == "verification.verified"
    assert '"type":"verification.verified"' in body and v.id in body
    with pytest.raises(ValueError):
        terminal_event(pending(), 1000.0)


def test_api_shape() -> None:
    api = pending().to_api()
    assert api["dial_number"] == {"e164": DID, "national": "03-5555-0001"}
    assert api["expires_at"] == "1970-01-01T00:19:40.000Z"
    assert "verified" not in api


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
@example(1700000000.9999996)  # rounds up into the next second
@example(1700000000.0004995)
@example(1700000000.0)
def test_iso_writes_what_datetime_writes(ts: float) -> None:
    expected = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
    assert iso(ts) == expected.replace("+00:00", "Z")


URLSAFE = re.compile(r"[A-Za-z0-9_-]+")


@given(
    st.floats(min_value=0, max_value=4102444800),  # to 2100
    st.floats(min_value=0, max_value=4102444800),
)
def test_ids_sort_by_the_millisecond_they_were_made_in(a: float, b: float) -> None:
    first, second = time_ordered_id("vrf_", a, 10), time_ordered_id("vrf_", b, 10)
    if int(a * 1000) < int(b * 1000):
        assert first < second
    elif int(a * 1000) > int(b * 1000):
        assert first > second
    else:  # the same millisecond: the same 8 characters of time
        assert first[:12] == second[:12]


def test_ids_look_like_token_urlsafe_of_the_same_size() -> None:
    for size, extra in ((16, 10), (18, 12)):
        ids = {time_ordered_id("x_", 1765139000.123, extra) for _ in range(1000)}
        assert len(ids) == 1000  # the random part is random
        for made in ids:
            body = made.removeprefix("x_")
            assert URLSAFE.fullmatch(body)
            assert len(body) == len(secrets.token_urlsafe(size))


def test_a_verification_and_its_event_ids_carry_their_time() -> None:
    v = pending(now=1765139000.5)
    assert v.id.startswith("vrf_") and len(v.id) == 26
    assert v.id[:12] == time_ordered_id("vrf_", 1765139000.5, 10)[:12]
    done = v.cancel(1765139001.0, "cancelled")
    event_id, _, _ = terminal_event(done, 1765139001.0)
    assert event_id.startswith("msg_") and len(event_id) == 28
    assert event_id[4:12] == time_ordered_id("x", 1765139001.0, 12)[1:9]
