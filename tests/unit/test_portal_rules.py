"""The reference portal's rules (the notice's), without a browser."""

from __future__ import annotations

from datetime import UTC, date, datetime
from random import Random

from examples.portal import rules
from examples.portal.db import Db, seed_demo
from examples.portal.rules import PhoneEntry


def test_ids_and_initial_passwords_avoid_lookalikes() -> None:
    rng = Random(7)
    for _ in range(500):
        login_id = rules.new_login_id(rng)
        pw = rules.new_initial_password(rng)
        assert not set(login_id + pw) & set("lOoq")
        assert rules.password_problem(pw) is None


def test_password_policy() -> None:
    assert rules.password_problem("Abcdefg1") is None
    assert rules.password_problem("Abcdef1") is not None  # 7
    assert rules.password_problem("Abcdefghijklmn12") is None  # 16
    assert rules.password_problem("Abcdefghijklmn123") is not None  # 17
    assert rules.password_problem("abcdefg1") is not None  # no upper case
    assert rules.password_problem("ABCDEFG1") is not None  # no lower case
    assert rules.password_problem("Abcdefgh") is not None  # no digit
    assert rules.password_problem("Abcdef1!") is not None  # letters and digits only
    assert rules.password_matches("Abcdefg1", rules.hash_password("Abcdefg1"))
    assert not rules.password_matches("Abcdefg2", rules.hash_password("Abcdefg1"))


def test_five_wrong_in_a_row_lock() -> None:
    failures, locked = 0, False
    for _ in range(4):
        a = rules.after_attempt(False, failures, locked)
        failures, locked = a.failures, a.locked
    assert not locked
    assert rules.after_attempt(True, failures, locked).failures == 0  # a success resets
    a = rules.after_attempt(False, failures, locked)
    assert a.locked and a.failures == 5
    assert not rules.after_attempt(True, a.failures, a.locked).ok  # locked stays locked


def test_the_number_that_counts_and_from_when() -> None:
    d = date(2026, 11, 27)
    entries = [
        PhoneEntry("policy_holder", "+819011112222", date(2026, 1, 1)),
        PhoneEntry("insured", "+81312345678", date(2026, 1, 1)),
        PhoneEntry("policy_holder", "+818033334444", date(2026, 11, 28)),
    ]
    assert rules.auth_number(entries, False, d) == "+819011112222"
    assert rules.auth_number(entries, False, date(2026, 11, 28)) == "+818033334444"
    assert rules.auth_number(entries, True, d) == "+81312345678"  # holder is the insured
    change = rules.pending_change(entries, False, d)
    assert change is not None and change.e164 == "+818033334444"
    assert rules.auth_number([], False, d) is None
    # 23:30 in Tokyo (14:30 UTC) is still "today" there: the change counts from tomorrow.
    late = datetime(2026, 11, 27, 14, 30, tzinfo=UTC)
    assert rules.effective_from(late) == date(2026, 11, 28)
    assert rules.effective_from(datetime(2026, 11, 27, 15, 30, tzinfo=UTC)) == date(2026, 11, 29)


def test_demo_holders_follow_the_rules() -> None:
    db = Db(":memory:")
    made = seed_demo(db, date(2026, 11, 27))
    assert len(made) == 3
    for login_id, pw, _ in made:
        assert not set(login_id + pw) & set("lOoq")
        assert rules.password_problem(pw) is None
    assert seed_demo(db, date(2026, 11, 27)) == []  # only once
