"""The number policy against the Japanese numbering plan (not against the code's output).

Ranges, from the MIC numbering plan: fixed lines 0AB-CDE-FGHJ (10 digits with the 0);
mobiles 070/080/090 and, since 2026, 060 (11 digits); 050 IP phones (11); 0120 toll-free
(10) and 0800 (11); 0570 navi dial (10); 0990 premium rate (10); 020 pagers/M2M (11);
10-digit 060 personal numbers (UPT); carrier free-dial 0037/0066/0077/0088.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr import numbers
from ivr.numbers import InvalidNumber, NumberPolicy, check, mask, normalize

ELIGIBLE = [
    # (input, e164, type)
    ("03-1234-5678", "+81312345678", "fixed_line"),  # Tokyo, 2-digit area code
    ("06-6123-4567", "+81661234567", "fixed_line"),  # Osaka
    ("011-211-2111", "+81112112111", "fixed_line"),  # Sapporo, 3-digit area code
    ("0466-25-1111", "+81466251111", "fixed_line"),  # Fujisawa, 4-digit area code
    ("01564-2-1234", "+81156421234", "fixed_line"),  # 5-digit area code
    ("0995-12-3456", "+81995123456", "fixed_line"),  # 099x is fixed (Kagoshima), not 0990
    ("090-1234-5678", "+819012345678", "mobile"),
    ("080-1234-5678", "+818012345678", "mobile"),
    ("070-1234-5678", "+817012345678", "mobile"),
]

NOT_ELIGIBLE = [
    # (input, reason)
    ("050-1234-5678", "voip"),
    ("0120-123-456", "toll_free"),
    ("0800-123-4567", "toll_free"),
    ("0037-12-3456", "toll_free"),
    ("0066-12-3456", "toll_free"),
    ("0077-123-4567", "toll_free"),
    ("0088-123-4567", "toll_free"),
    ("0570-012-345", "navi_dial"),
    ("0990-123-456", "premium_rate"),
    ("020-1234-5678", "pager"),
    ("060-123-4567", "personal_number"),  # 10 digits: UPT personal number
    ("060-1234-5678", "mobile_060"),  # 11 digits: the new mobile range, off by default
    ("0180-123-456", "information_service"),
    ("+1 212 555 0123", "foreign"),
    ("+82 10 1234 5678", "foreign"),
    ("+44 20 7946 0958", "foreign"),
    ("03-1234-567", "too_short"),  # a fixed line needs 10 digits with the 0
    ("090-1234-567", "too_short"),  # a mobile needs 11
    ("090-1234-56789", "too_long"),
    ("03-1234-56789", "too_long"),
    ("anonymous", "invalid"),
    ("", "invalid"),
    ("abc-defg-hijk", "invalid"),
    ("0", "invalid"),
]


@pytest.mark.parametrize(("text", "e164", "type_"), ELIGIBLE)
def test_eligible(text: str, e164: str, type_: str) -> None:
    verdict = check(text)
    assert verdict.eligible, verdict
    assert (verdict.e164, verdict.type, verdict.reason) == (e164, type_, None)


@pytest.mark.parametrize(("text", "reason"), NOT_ELIGIBLE)
def test_not_eligible(text: str, reason: str) -> None:
    verdict = check(text)
    assert not verdict.eligible
    assert verdict.reason == reason, verdict
    assert verdict.messages["ja"] and verdict.messages["en"]


def test_060_mobile_is_a_policy_switch() -> None:
    assert not check("06012345678").eligible
    verdict = check("06012345678", NumberPolicy(allow_060=True))
    assert verdict.eligible and verdict.type == "mobile"
    # The 10-digit personal numbers stay out either way.
    assert check("0601234567", NumberPolicy(allow_060=True)).reason == "personal_number"


def test_operator_can_deny_more_prefixes() -> None:
    policy = NumberPolicy(deny_prefixes=("0466",))
    assert check("0466-25-1111", policy).reason == "denied_prefix"
    assert check("03-1234-5678", policy).eligible


@pytest.mark.parametrize(
    "text",
    [
        "090-1234-5678",
        "09012345678",
        "090 1234 5678",
        "(090)1234-5678",
        "０９０－１２３４－５６７８",  # full-width, as typed on a Japanese keyboard
        "０９０ー１２３４ー５６７８",  # with the long-vowel mark people use as a hyphen
        "+81 90 1234 5678",
        "+81-90-1234-5678",
        "+819012345678",
        "819012345678",  # how some carriers send it, without the plus
        "0081-90-1234-5678",
        "010-81-90-1234-5678",  # Japan's international prefix
        "186-090-1234-5678",  # 186: show caller ID for this call
        "18609012345678",
        "184 090 1234 5678",  # 184: withhold (a dialling instruction, not the number)
        "tel:+819012345678",
        "sip:+819012345678@203.0.113.5;user=phone",
        "<sip:09012345678@carrier.example>",
    ],
)
def test_every_way_to_write_one_mobile(text: str) -> None:
    assert normalize(text) == "+819012345678"
    assert check(text).eligible


def test_national_format_for_display() -> None:
    assert check("0312345678").national == "03-1234-5678"
    assert numbers.national_format("+81355550101") == "03-5555-0101"


def test_mask() -> None:
    assert mask("09012345678") == "090****5678"
    assert mask("+819012345678") == "+819*****5678"
    assert mask("1234") == "****"


@given(st.text(max_size=80))
@settings(max_examples=400)
def test_arbitrary_text_never_raises_anything_but_invalid_number(text: str) -> None:
    try:
        result = normalize(text)
    except InvalidNumber:
        pass
    else:
        assert result.startswith("+")
    check(text)  # never raises at all


@given(st.text(alphabet="0123456789+-() ０１２３４５６７８９－", max_size=24))
@settings(max_examples=400)
def test_normalising_is_idempotent(text: str) -> None:
    try:
        once = normalize(text)
    except InvalidNumber:
        return
    assert normalize(once) == once


_sep = st.sampled_from(["", "-", " ", "－", "ー"])


@given(
    st.sampled_from(["90", "80", "70", "3", "6", "11", "466"]),
    st.integers(min_value=0, max_value=10**8 - 1),
    _sep,
    st.sampled_from(["national", "plus", "bare81", "0081", "010", "186", "fullwidth"]),
)
@settings(max_examples=300)
def test_every_format_of_one_valid_number_gives_one_e164(
    prefix: str, rest: int, sep: str, style: str
) -> None:
    total = 10 if prefix in ("90", "80", "70") else 9  # digits after the leading 0
    subscriber = str(rest).zfill(8)[: total - len(prefix)]
    nsn = prefix + subscriber
    verdict = check("0" + nsn)
    if verdict.e164 is None:
        return  # not an assigned range; nothing to compare
    e164 = verdict.e164
    written = {
        "national": "0" + prefix + sep + subscriber,
        "plus": "+81" + sep + nsn,
        "bare81": "81" + nsn,
        "0081": "0081" + sep + nsn,
        "010": "010" + sep + "81" + sep + nsn,
        "186": "186" + "0" + nsn,
        "fullwidth": ("0" + nsn).translate(str.maketrans("0123456789", "０１２３４５６７８９")),
    }[style]
    assert normalize(written) == e164


@given(st.from_regex(r"[1-9][0-9]{8,9}", fullmatch=True), st.sampled_from(["0", "+81"]))
@settings(max_examples=500)
def test_the_unparsed_japanese_forms_read_as_phonenumbers_parses_them(nsn: str, lead: str) -> None:
    # normalize reads "0<nsn>" and "+81<nsn>" without phonenumbers.parse (they are most
    # of what arrives); that is only right while parse agrees, number for number
    # (010... is the international prefix, and must still be read as one).
    import phonenumbers

    written = lead + nsn
    try:
        expected = phonenumbers.parse(numbers._international(written), "JP")
    except phonenumbers.NumberParseException:
        with pytest.raises(InvalidNumber):
            numbers._normalized(written)
        return
    e164, parsed = numbers._normalized(written)
    assert parsed == expected
    assert e164 == phonenumbers.format_number(expected, phonenumbers.PhoneNumberFormat.E164)


def _phonenumbers_type(nsn: str) -> int:
    import phonenumbers

    return phonenumbers.number_type(
        phonenumbers.PhoneNumber(country_code=81, national_number=int(nsn))
    )


def test_japanese_types_are_phonenumbers_own_for_every_prefix() -> None:
    # The check reads a Japanese number's type from a table made of phonenumbers'
    # metadata rather than through number_type; both must answer the same. Every
    # four-digit prefix at the lengths numbers have (9 and 10 digits after the 0), every
    # two-digit one at the others, a few random subscriber digits each.
    import random

    rng = random.Random(15)
    differ = []
    for length in range(1, 18):
        prefixes = range(1000, 10000) if length in (9, 10) else range(10, 100)
        for prefix in prefixes:
            lead = str(prefix)[:length]
            for _ in range(3 if length in (9, 10) else 2):
                nsn = lead + "".join(rng.choice("0123456789") for _ in range(length - len(lead)))
                if numbers._japanese_type(nsn) != _phonenumbers_type(nsn):
                    differ.append(nsn)
    assert differ == []


@given(st.from_regex(r"[1-9][0-9]{0,16}", fullmatch=True))
@settings(max_examples=1000)
def test_japanese_types_are_phonenumbers_own_for_any_digits(nsn: str) -> None:
    assert numbers._japanese_type(nsn) == _phonenumbers_type(nsn)
