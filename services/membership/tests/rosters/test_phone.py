"""The roster's phone check gives `normalize_phone`'s answer, refusals and messages included."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gonghui_shared.identity import InvalidPhone, normalize_phone
from membership.rosters.template import roster_phone


def answer(check: object, text: str) -> tuple[str, str, str]:
    """("ok", E.164, "") or ("refused", message, message_zh)."""
    assert callable(check)
    try:
        return "ok", check(text), ""
    except InvalidPhone as exc:
        return "refused", exc.message, exc.message_zh


# Mobiles, fixed lines, service numbers, short codes, IP-dialling prefixes, other countries,
# full-width digits, separators: what rosters hold, and what they hold by mistake.
PREFIXES = [
    "",
    "+86",
    "86",
    "0086",
    "+86 ",
    "+1",
    "+852",
    "+44",
    "0",
    "12593",
    "17951",
    "400",
    "１",
]
digits = st.text(alphabet="0123456789", min_size=0, max_size=13)
separators = st.sampled_from(["", " ", "-", "(", ")", "．", "　"])


@settings(max_examples=2000)
@given(prefix=st.sampled_from(PREFIXES), body=digits, separator=separators)
def test_same_answer_as_normalize_phone(prefix: str, body: str, separator: str) -> None:
    text = prefix + separator.join([body[:3], body[3:7], body[7:]])
    assert answer(roster_phone, text) == answer(normalize_phone, text)


@pytest.mark.parametrize(
    "text",
    [
        "13800138000",
        "+8613912345678",
        "0883-4212345",
        "0871-65123456",
        "+86 139 1234 5678",
        "１３８００１３８０００",
        "4008001234",
        "10086",
        "12345678901",
        "+14155552671",
        "+852 6123 4567",
        "",
        "'",
        "phone",
        "95588",
    ],
)
def test_same_answer_for_known_numbers(text: str) -> None:
    assert answer(roster_phone, text) == answer(normalize_phone, text)


@pytest.mark.parametrize("lead", ["", "+86", "86", "+86 "])
def test_same_answer_for_every_four_digit_start(lead: str) -> None:
    # The unparsed path takes `1` and ten digits: each start, at both ends of the range
    # of the rest, must get what parsing gives (12593 and 17951 are IP-dialling prefixes).
    starts = [f"{n:04d}" for n in range(1000, 2000)]
    texts = [lead + start + rest for start in starts for rest in ("0000000", "9999999")]
    differing = [t for t in texts if answer(roster_phone, t) != answer(normalize_phone, t)]
    assert differing == []
