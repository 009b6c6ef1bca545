"""Japanese phone numbers: normalising what people and carriers write, and the policy.

The policy is the notice behind this project: Japanese fixed lines and mobiles on
070/080/090 may authenticate; IP phones (050), toll-free (0120, 0800), navi dial (0570)
and the other non-personal ranges may not. Types come from ``phonenumbers`` metadata;
the few ranges that metadata does not know (carrier free-dial 0037/0066/0077/0088, and
0180 information services) are listed in ``_UNLISTED_RANGES``.

No I/O here: this module is called on every API request and every call.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberType

# Reasons a number cannot authenticate. The API, the CLI and the call records use these.
REASONS = (
    "voip",
    "toll_free",
    "navi_dial",
    "premium_rate",
    "pager",
    "personal_number",
    "information_service",
    "mobile_060",
    "denied_prefix",
    "foreign",
    "too_short",
    "too_long",
    "invalid",
)

MESSAGES: dict[str, tuple[str, str]] = {
    # reason: (Japanese, English), as a registration form would show them.
    "voip": (
        "050から始まるIP電話の番号は本人認証にご利用いただけません。",
        "IP phone numbers starting with 050 cannot be used for verification.",
    ),
    "toll_free": (
        "フリーダイヤル（0120・0800など）の番号は本人認証にご利用いただけません。",
        "Toll-free numbers (0120, 0800 and similar) cannot be used for verification.",
    ),
    "navi_dial": (
        "0570から始まるナビダイヤルの番号は本人認証にご利用いただけません。",
        "Navi Dial numbers starting with 0570 cannot be used for verification.",
    ),
    "premium_rate": (
        "0990から始まる有料情報サービスの番号は本人認証にご利用いただけません。",
        "Premium-rate numbers starting with 0990 cannot be used for verification.",
    ),
    "pager": (
        "020から始まる番号（ポケットベル・データ通信用）は本人認証にご利用いただけません。",
        "Numbers starting with 020 (pagers and machine-to-machine) cannot be used.",
    ),
    "personal_number": (
        "060から始まる10桁のパーソナル番号は本人認証にご利用いただけません。",
        "Ten-digit personal numbers starting with 060 cannot be used for verification.",
    ),
    "information_service": (
        "0180から始まる情報サービスの番号は本人認証にご利用いただけません。",
        "Information-service numbers starting with 0180 cannot be used for verification.",
    ),
    "mobile_060": (
        "060から始まる携帯電話番号は現在ご利用いただけません。090・080・070の番号をご登録ください。",
        "Mobile numbers starting with 060 are not accepted yet; use a 090, 080 or 070 number.",
    ),
    "denied_prefix": (
        "この番号は本人認証にご利用いただけません。",
        "This number cannot be used for verification.",
    ),
    "foreign": (
        "日本国内の電話番号をご登録ください。海外の番号はご利用いただけません。",
        "Please use a Japanese phone number; numbers outside Japan cannot be used.",
    ),
    "too_short": (
        "電話番号の桁数が足りません。市外局番からご入力ください。",
        "The number is too short; enter it with the area code.",
    ),
    "too_long": (
        "電話番号の桁数が多すぎます。ご確認ください。",
        "The number has too many digits; please check it.",
    ),
    "invalid": (
        "電話番号として正しくありません。ご確認ください。",
        "This is not a valid phone number; please check it.",
    ),
}

_TYPE_NAMES: dict[int, str] = {
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOICEMAIL: "voicemail",
}

# Ranges that phonenumbers' metadata does not classify (national prefix -> (type, reason)).
_UNLISTED_RANGES: dict[str, tuple[str, str]] = {
    "0037": ("toll_free", "toll_free"),
    "0066": ("toll_free", "toll_free"),
    "0077": ("toll_free", "toll_free"),
    "0088": ("toll_free", "toll_free"),
    "0180": ("information_service", "information_service"),
}

_UNLISTED_PREFIXES = tuple(_UNLISTED_RANGES)

_MOBILE_PREFIXES = ("070", "080", "090")
_DASHES = "-‐‑‒–—―−ー－ｰ"
_SEPARATORS = re.compile(r"[\s.()/\[\]" + re.escape(_DASHES) + r"（）]+")
_SIP_USER = re.compile(r"(?:sips?|tel):([^@;>\s]+)", re.IGNORECASE)
_MAX_INPUT = 128


class InvalidNumber(ValueError):
    """Raised by :func:`normalize` for input that is no phone number; ``reason`` says why."""

    def __init__(self, reason: str, text: str = "") -> None:
        super().__init__(f"not a usable phone number ({reason})")
        self.reason = reason
        self.text = text


@dataclass(frozen=True)
class NumberPolicy:
    """Which numbers may authenticate. ``deny_prefixes`` are national (``0180``)."""

    allow_060: bool = False
    deny_prefixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class NumberCheck:
    """The verdict on one number, for the API, the CLI and the call path."""

    input: str
    eligible: bool
    e164: str | None
    type: str | None
    reason: str | None
    messages: dict[str, str] = field(default_factory=dict)
    # The national form where it is not phonenumbers' (the unlisted ranges). A Japanese
    # E.164 number's is formatted when first read: creates and calls never read it, and
    # formatting is a third of a check's cost.
    _national: str | None = field(default=None, repr=False, compare=False)

    @property
    def national(self) -> str | None:
        if self._national is None and self.e164 is not None and self.e164.startswith("+81"):
            object.__setattr__(self, "_national", _national_form(self.e164))  # once
        return self._national

    def as_dict(self) -> dict[str, object]:
        return {
            "eligible": self.eligible,
            "e164": self.e164,
            "national": self.national,
            "type": self.type,
            "reason": self.reason,
            "message": self.messages or None,
        }


def _clean(text: str) -> str:
    """Digits with at most a leading ``+``: widths folded, separators and SIP syntax gone."""
    if not isinstance(text, str):
        raise InvalidNumber("invalid", repr(text))
    if len(text) > _MAX_INPUT:
        raise InvalidNumber("too_long", text[:_MAX_INPUT])
    if text.isascii() and text.isdigit():  # most of what arrives: nothing to fold or strip
        return text
    s = unicodedata.normalize("NFKC", text).strip()
    sip = _SIP_USER.search(s)
    if sip:
        s = sip.group(1)
    s = _SEPARATORS.sub("", s)
    if s.startswith("+"):
        digits = s[1:]
        plus = True
    else:
        digits = s
        plus = False
    if not digits or not digits.isascii() or not digits.isdigit():
        raise InvalidNumber("invalid", text)
    return ("+" if plus else "") + digits


def _international(s: str) -> str:
    """Fold the ways a number can be written internationally into ``+<cc>...``."""
    if s.startswith("+"):
        return s
    # 184/186 are dialling instructions (withhold / show caller ID), never part of a number.
    if s[:3] in ("184", "186") and len(s) > 3 and s[3] in "0+":
        s = s[3:]
    if s.startswith("010") and len(s) > 5:  # Japan's international prefix
        return "+" + s[3:]
    if s.startswith("00") and s[:4] not in _UNLISTED_RANGES and len(s) > 4:
        return "+" + s[2:]  # 0081..., as written from abroad
    if s.startswith("81") and len(s) in (11, 12):  # 81 + 9 or 10 digits, no plus (carriers)
        return "+" + s
    return s


# The two forms nearly every number arrives in: "+81" or the trunk prefix 0, then a
# national significant number of 9 or 10 digits. phonenumbers.parse gives exactly country
# code 81 and those digits for both (its only national prefix for them is the 0; 010, the
# international prefix, is taken by _international first), so they are read without
# parsing; the unit tests compare the two over generated numbers.
_JAPANESE_E164 = re.compile(r"\+81[1-9]\d{8,9}")
_JAPANESE_NATIONAL = re.compile(r"0[1-9]\d{8,9}")


def _japanese(nsn: str) -> phonenumbers.PhoneNumber:
    return phonenumbers.PhoneNumber(country_code=81, national_number=int(nsn))


def normalize(text: str) -> str:
    """The E.164 form of ``text`` as a Japanese caller would mean it.

    Raises :class:`InvalidNumber` (and nothing else) for input that is no phone number.
    The result is idempotent: ``normalize(normalize(x)) == normalize(x)``.
    """
    return _normalized(text)[0]


def _normalized(text: str) -> tuple[str, phonenumbers.PhoneNumber | None]:
    """:func:`normalize`'s E.164, and the number as phonenumbers reads it (None for the
    carrier free-dial ranges it does not know), so that :func:`check` reads it once."""
    if isinstance(text, str) and _JAPANESE_E164.fullmatch(text):  # as phonenumbers writes it
        return text, _japanese(text[3:])
    s = _international(_clean(text))
    if _JAPANESE_NATIONAL.fullmatch(s):
        return "+81" + s[1:], _japanese(s[1:])
    if _JAPANESE_E164.fullmatch(s):
        return s, _japanese(s[3:])
    # Carrier free-dial (0037, 0066, 0077, 0088) keeps its leading 00 after +81, as
    # phonenumbers writes 0037; parsing would read 00 as an international prefix.
    if s[:4] in _UNLISTED_RANGES and s.startswith("00") and 9 <= len(s) <= 12:
        return "+81" + s, None
    if s.startswith("+8100") and s[3:7] in _UNLISTED_RANGES:
        return s, None
    try:
        parsed = phonenumbers.parse(s, "JP")
    except phonenumbers.NumberParseException:
        raise InvalidNumber("invalid", text) from None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if len(e164) < 4:
        raise InvalidNumber("too_short", text)
    return e164, parsed


def _length_reason(parsed: phonenumbers.PhoneNumber) -> str:
    """For an invalid Japanese number, say whether a digit is missing or extra."""
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    if reason == phonenumbers.ValidationResult.TOO_SHORT:
        return "too_short"
    if reason == phonenumbers.ValidationResult.TOO_LONG:
        return "too_long"
    nsn = phonenumbers.national_significant_number(parsed)
    for cut in (1, 2):
        if len(nsn) > cut and _valid_nsn(nsn[:-cut]):
            return "too_long"
    for pad in ("0", "00"):
        if _valid_nsn(nsn + pad):
            return "too_short"
    return "invalid"


def _valid_nsn(nsn: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse("0" + nsn, "JP"))
    except phonenumbers.NumberParseException:
        return False


def _verdict(
    text: str,
    eligible: bool,
    e164: str | None,
    national: str | None,
    type_: str | None,
    reason: str | None,
) -> NumberCheck:
    messages = {}
    if reason is not None:
        ja, en = MESSAGES[reason]
        messages = {"ja": ja, "en": en}
    return NumberCheck(text, eligible, e164, type_, reason, messages, national)


def check(text: str, policy: NumberPolicy | None = None) -> NumberCheck:
    """Normalise ``text`` and decide whether it may authenticate. Never raises."""
    policy = policy or NumberPolicy()
    if not isinstance(text, str) or len(text) > _MAX_INPUT:
        return _check(text, policy)
    return _check_cached(text, policy)


# phonenumbers' parse and validation cost tens of microseconds, and callers and portals
# present the same numbers again and again: the verdicts are pure, so keep recent ones.
@functools.lru_cache(maxsize=8192)
def _check_cached(text: str, policy: NumberPolicy) -> NumberCheck:
    return _check(text, policy)


def _check(text: str, policy: NumberPolicy) -> NumberCheck:
    try:
        e164, parsed = _normalized(text)
    except InvalidNumber as exc:
        return _verdict(
            text if isinstance(text, str) else repr(text), False, None, None, None, exc.reason
        )
    national_digits = e164[3:] if e164.startswith("+8100") else "0" + e164[3:]
    if e164.startswith("+81") and national_digits.startswith(_UNLISTED_PREFIXES):
        type_, reason = next(
            v for p, v in _UNLISTED_RANGES.items() if national_digits.startswith(p)
        )
        return _verdict(text, False, e164, national_digits, type_, reason)
    if parsed is None:
        parsed = phonenumbers.parse(e164)
    if parsed.country_code != 81:  # typed as written in E.164 (a leading zero may differ)
        foreign_type = _TYPE_NAMES.get(phonenumbers.number_type(phonenumbers.parse(e164)))
        return _verdict(text, False, e164, None, foreign_type, "foreign")
    number_type = _number_type(parsed)  # UNKNOWN: not a valid number
    if number_type == PhoneNumberType.UNKNOWN:
        return _verdict(text, False, None, None, None, _length_reason(parsed))
    national = None  # phonenumbers' form, formatted when read
    type_ = _TYPE_NAMES.get(number_type, "unknown")
    if national_digits.startswith(policy.deny_prefixes):  # () matches nothing
        return _verdict(text, False, e164, national, type_, "denied_prefix")
    if type_ == "fixed_line":
        return _verdict(text, True, e164, national, type_, None)
    if type_ in ("mobile", "fixed_line_or_mobile"):
        if national_digits.startswith(_MOBILE_PREFIXES):
            return _verdict(text, True, e164, national, "mobile", None)
        if national_digits.startswith("060") and policy.allow_060:
            return _verdict(text, True, e164, national, "mobile", None)
        return _verdict(text, False, e164, national, "mobile", "mobile_060")
    reason = {
        "voip": "voip",
        "toll_free": "toll_free",
        "uan": "navi_dial",
        "premium_rate": "premium_rate",
        "pager": "pager",
        "personal_number": "personal_number",
    }.get(type_, "invalid")
    return _verdict(text, False, e164, national, type_, reason)


# phonenumbers.number_type for a Japanese number, from a table made once of phonenumbers'
# own metadata: for each length of national significant number, the patterns it would
# try, in its order (premium rate first, fixed line and mobile last). The same answers
# (unit tests compare the two over every four-digit prefix at 9 and 10 digits and over
# generated digits of every length), for less: number_type makes a dozen Python calls
# per type it tries, and checking a number not seen before took 15-16 us with it, 7 us
# with the table (docs/benchmarks.md, "tenth step").
_SPECIAL_TYPES = (  # (type, its description in the metadata), in number_type's order
    (PhoneNumberType.PREMIUM_RATE, "premium_rate"),
    (PhoneNumberType.TOLL_FREE, "toll_free"),
    (PhoneNumberType.SHARED_COST, "shared_cost"),
    (PhoneNumberType.VOIP, "voip"),
    (PhoneNumberType.PERSONAL_NUMBER, "personal_number"),
    (PhoneNumberType.PAGER, "pager"),
    (PhoneNumberType.UAN, "uan"),
    (PhoneNumberType.VOICEMAIL, "voicemail"),
)
_Pattern = re.Pattern[str]
_TypeRow = tuple[_Pattern, tuple[tuple[int, _Pattern], ...], _Pattern | None, _Pattern | None]


@functools.cache
def _japanese_types() -> tuple[dict[int, _TypeRow], bool]:
    """Length of national significant number -> (the general pattern, the special types'
    patterns in phonenumbers' order, fixed line, mobile); and whether Japan's fixed-line
    and mobile patterns are one. A type whose possible lengths leave a length out is not
    tried at that length, as phonenumbers does not try it."""
    md = phonenumbers.PhoneMetadata.metadata_for_region("JP")
    if md is None:  # phonenumbers without Japan's metadata: nothing works, say so
        raise RuntimeError("phonenumbers has no metadata for JP")

    def pattern(desc: Any, length: int) -> _Pattern | None:
        if desc is None or not desc.national_number_pattern:
            return None
        if desc.possible_length and length not in desc.possible_length:
            return None
        return re.compile(desc.national_number_pattern)

    table: dict[int, _TypeRow] = {}
    for length in range(1, 18):
        general = pattern(md.general_desc, length)
        if general is None:
            continue
        special = tuple(
            (t, p) for t, name in _SPECIAL_TYPES if (p := pattern(getattr(md, name), length))
        )
        table[length] = (
            general,
            special,
            pattern(md.fixed_line, length),
            pattern(md.mobile, length),
        )
    return table, bool(md.same_mobile_and_fixed_line_pattern)


def _japanese_type(nsn: str) -> int:
    """phonenumbers.number_type of +81 ``nsn`` (digits, no leading zero)."""
    table, same = _japanese_types()
    row = table.get(len(nsn))
    if row is None or not row[0].fullmatch(nsn):
        return PhoneNumberType.UNKNOWN
    _, special, fixed, mobile = row
    for type_, pattern in special:
        if pattern.fullmatch(nsn):
            return type_
    if fixed is not None and fixed.fullmatch(nsn):
        if same or (mobile is not None and mobile.fullmatch(nsn)):
            return PhoneNumberType.FIXED_LINE_OR_MOBILE
        return PhoneNumberType.FIXED_LINE
    if not same and mobile is not None and mobile.fullmatch(nsn):
        return PhoneNumberType.MOBILE
    return PhoneNumberType.UNKNOWN


def _number_type(parsed: phonenumbers.PhoneNumber) -> int:
    if parsed.country_code == 81 and not parsed.italian_leading_zero:
        return _japanese_type(str(parsed.national_number))
    return phonenumbers.number_type(parsed)


def _national_form(e164: str) -> str:
    parsed = phonenumbers.parse(e164)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


@functools.lru_cache(maxsize=1024)  # dial numbers: the pool's few, on every API answer
def national_format(e164: str) -> str:
    """``+81312345678`` -> ``03-1234-5678`` (for showing a dial number to a holder)."""
    return _national_form(e164)


def mask(number: str) -> str:
    """``09012345678`` -> ``090****5678``; short strings are hidden whole."""
    digits = "".join(ch for ch in number if ch.isdigit())
    if len(digits) < 8:
        return "*" * len(digits)
    lead = "+" if number.startswith("+") else ""
    return f"{lead}{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


def check_many(texts: Iterable[str], policy: NumberPolicy | None = None) -> list[NumberCheck]:
    return [check(t, policy) for t in texts]
