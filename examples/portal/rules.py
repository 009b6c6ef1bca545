"""The notice's rules, in plain code without I/O (seed notice: 契約者さま専用ページ).

- Login IDs and initial passwords never use l, O, o or q (easily misread on paper).
- A password mixes upper case, lower case and digits, 8 to 16 characters.
- Five wrong passwords in a row lock the account until the unlock procedure.
- The number that authenticates is the policy holder's; when the policy holder is also
  the insured, the insured's number field is the one that counts.
- A registered or changed number applies from the next day (Japan time).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from random import Random
from zoneinfo import ZoneInfo

JST = ZoneInfo("Asia/Tokyo")
CONFUSABLE = frozenset("lOoq")
ID_ALPHABET = "".join(c for c in string.ascii_uppercase + string.digits if c not in CONFUSABLE)
PASSWORD_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in CONFUSABLE)
MAX_FAILURES = 5
PASSWORD_MIN, PASSWORD_MAX = 8, 16


def new_login_id(rng: Random | None = None) -> str:
    r = rng or secrets.SystemRandom()
    return "".join(r.choice(ID_ALPHABET) for _ in range(8))


def new_initial_password(rng: Random | None = None) -> str:
    """Ten characters from the unambiguous alphabet, meeting the password policy."""
    r = rng or secrets.SystemRandom()
    while True:
        pw = "".join(r.choice(PASSWORD_ALPHABET) for _ in range(10))
        if password_problem(pw) is None:
            return pw


def password_problem(pw: str) -> tuple[str, str] | None:
    """Why a new password is refused, in Japanese and English; None when it is fine."""
    if not PASSWORD_MIN <= len(pw) <= PASSWORD_MAX:
        return ("パスワードは8～16文字で設定してください。", "Use 8 to 16 characters.")
    if not all(c in string.ascii_letters + string.digits for c in pw):
        return ("パスワードには英字と数字だけを使えます。", "Use letters and digits only.")
    if not (
        any(c.isupper() for c in pw)
        and any(c.islower() for c in pw)
        and any(c.isdigit() for c in pw)
    ):
        return (
            "英字大文字、英字小文字、数字を混在させてください。",
            "Mix upper case, lower case and digits.",
        )
    return None


def hash_password(pw: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(pw.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def password_matches(pw: str, stored: str) -> bool:
    _, salt, digest = stored.split("$")
    again = hash_password(pw, bytes.fromhex(salt)).split("$")[2]
    return hmac.compare_digest(again, digest)


@dataclass(frozen=True)
class LoginAttempt:
    ok: bool
    failures: int  # consecutive failures after this attempt
    locked: bool


def after_attempt(password_ok: bool, failures: int, locked: bool) -> LoginAttempt:
    """A locked account stays locked whatever is typed; the fifth wrong one locks it."""
    if locked:
        return LoginAttempt(False, failures, True)
    if password_ok:
        return LoginAttempt(True, 0, False)
    failures += 1
    return LoginAttempt(False, failures, failures >= MAX_FAILURES)


def today(now: datetime) -> date:
    return now.astimezone(JST).date()


def effective_from(changed_at: datetime) -> date:
    """A change made today applies from tomorrow (Japan time)."""
    return today(changed_at) + timedelta(days=1)


@dataclass(frozen=True)
class PhoneEntry:
    role: str  # "policy_holder" or "insured"
    e164: str
    effective: date


def counting_role(holder_is_insured: bool) -> str:
    return "insured" if holder_is_insured else "policy_holder"


def auth_number(entries: list[PhoneEntry], holder_is_insured: bool, on: date) -> str | None:
    """The number that authenticates on day ``on``: the newest entry of the role that
    counts which has already taken effect."""
    role = counting_role(holder_is_insured)
    live = [e for e in entries if e.role == role and e.effective <= on]
    return max(live, key=lambda e: e.effective).e164 if live else None


def pending_change(
    entries: list[PhoneEntry], holder_is_insured: bool, on: date
) -> PhoneEntry | None:
    role = counting_role(holder_is_insured)
    later = [e for e in entries if e.role == role and e.effective > on]
    return max(later, key=lambda e: e.effective) if later else None
