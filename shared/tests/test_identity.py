"""Tests of resident identity card numbers and phone numbers."""

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import ric

from gonghui_shared.identity import (
    IdNumber,
    InvalidIdNumber,
    InvalidPhone,
    normalize_phone,
    parse_id_number,
)
from gonghui_shared.vocabulary import Gender


def with_check_digit(first17: str) -> str:
    """A number completed with its correct check digit."""
    assert len(first17) == 17
    return first17 + ric.calc_check_digit(first17 + "0")


def test_valid_number_from_the_seed_county():
    number = with_check_digit("53092119900101123")

    parsed = parse_id_number(number)

    assert parsed == IdNumber(
        number=number, birth_date=date(1990, 1, 1), gender=Gender.MALE, region_code="530921"
    )


def test_adult_born_before_the_county_code_existed_is_accepted():
    # stdnum lists 530921 (凤庆县) as assigned from 2003; people born earlier hold it.
    parsed = parse_id_number(with_check_digit("53092119650615002"))

    assert parsed.birth_date == date(1965, 6, 15)
    assert parsed.gender is Gender.FEMALE


@pytest.mark.parametrize(
    ("sequence", "gender"),
    [("001", Gender.MALE), ("002", Gender.FEMALE), ("123", Gender.MALE), ("998", Gender.FEMALE)],
)
def test_gender_comes_from_the_17th_digit(sequence, gender):
    assert parse_id_number(with_check_digit("53092119900101" + sequence)).gender is gender


def test_lower_case_x_check_digit_is_normalised():
    # Find a sequence number whose check digit is X.
    first17 = next(
        f"53092119851203{seq:03d}"
        for seq in range(1000)
        if ric.calc_check_digit(f"53092119851203{seq:03d}0") == "X"
    )

    parsed = parse_id_number(first17 + "x")

    assert parsed.number == first17 + "X"


def test_separators_full_width_digits_and_excel_apostrophe_are_tolerated():
    number = with_check_digit("53092119900101123")
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in number)

    assert parse_id_number(f" {number[:6]} {number[6:14]} {number[14:]} ").number == number
    assert parse_id_number(full_width).number == number
    assert parse_id_number("'" + number).number == number


def _outcome(text: str) -> object:
    try:
        return parse_id_number(text, today=date(2026, 11, 27))
    except InvalidIdNumber as exc:
        return (exc.reason, str(exc))


@given(
    st.sampled_from(["530921", "530111", "110101", "999999"]),
    st.dates(date(1900, 1, 1), date(2030, 1, 1)),
    st.integers(0, 999),
    st.sampled_from([*"0123456789X"]),
)
def test_a_clean_number_gets_what_a_separated_one_gets(
    region: str, birth: date, sequence: int, last: str
) -> None:
    """Clean 18-character numbers skip the cleaning; the answer is the same as with it."""
    clean = f"{region}{birth:%Y%m%d}{sequence:03d}{last}"
    assert _outcome(clean) == _outcome(f"{clean[:6]}-{clean[6:14]} {clean[14:]}")


def test_wrong_check_digit():
    number = with_check_digit("53092119900101123")
    wrong = number[:-1] + ("0" if number[-1] != "0" else "1")

    with pytest.raises(InvalidIdNumber) as caught:
        parse_id_number(wrong)

    assert caught.value.code == "checksum"
    assert caught.value.reason == "checksum"
    assert "校验位" in caught.value.message_zh


@pytest.mark.parametrize(
    "first17",
    [
        "53092119900230123",  # 30 February
        "53092119901301123",  # month 13
        "53092118800101123",  # before 1900
    ],
)
def test_impossible_birth_date(first17):
    with pytest.raises(InvalidIdNumber) as caught:
        parse_id_number(with_check_digit(first17))

    assert caught.value.code == "birth_date"


def test_birth_date_in_the_future():
    number = with_check_digit("53092120300101123")

    with pytest.raises(InvalidIdNumber) as caught:
        parse_id_number(number, today=date(2025, 1, 1))

    assert caught.value.code == "birth_date"
    assert parse_id_number(number, today=date(2031, 1, 1)).birth_date == date(2030, 1, 1)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "53092119900101123",  # 17 characters
        "5309211990010112345",  # 19 characters
        "530921900101123",  # 15-digit first-generation number
        "53092119900101A234",
        "53092119900101123Y",
    ],
)
def test_bad_format(text):
    with pytest.raises(InvalidIdNumber) as caught:
        parse_id_number(text)

    assert caught.value.code == "format"
    assert caught.value.message
    assert caught.value.message_zh


@pytest.mark.parametrize("region", ["999999", "119999"])
def test_unknown_region(region):
    with pytest.raises(InvalidIdNumber) as caught:
        parse_id_number(with_check_digit(region + "19900101123"))

    assert caught.value.code == "region"
    assert region in caught.value.message


def test_errors_are_value_errors():
    with pytest.raises(ValueError, match="18"):
        parse_id_number("123")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("13800138000", "+8613800138000"),
        (" 138 0013 8000 ", "+8613800138000"),
        ("138-0013-8000", "+8613800138000"),
        ("+86 138 0013 8000", "+8613800138000"),
        ("8613800138000", "+8613800138000"),
        ("１３８００１３８０００", "+8613800138000"),
    ],
)
def test_mobile_numbers(text, expected):
    assert normalize_phone(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0871-65123456", "+8687165123456"),  # 昆明
        ("(0883)4212345", "+868834212345"),  # 临沧
        ("010 12345678", "+861012345678"),
    ],
)
def test_fixed_lines_with_area_code(text, expected):
    assert normalize_phone(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   ", "abc", "12345", "1380013800", "138001380001", "88888888", "4008123123"],
)
def test_invalid_phones(text):
    with pytest.raises(InvalidPhone) as caught:
        normalize_phone(text)

    assert caught.value.code == "phone"
    assert caught.value.message
    assert caught.value.message_zh


@pytest.mark.parametrize(
    ("text", "gender"),
    [
        ("男", Gender.MALE),
        ("男性", Gender.MALE),
        (" male ", Gender.MALE),
        ("女性", Gender.FEMALE),
        ("F", Gender.FEMALE),
    ],
)
def test_gender_vocabulary(text, gender):
    assert Gender.parse(text) is gender
    assert gender.label_zh in {"男", "女"}


def test_gender_vocabulary_lists_allowed_values():
    with pytest.raises(ValueError, match=r"male \(男\), female \(女\)"):
        Gender.parse("未知")
