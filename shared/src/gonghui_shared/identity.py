"""Resident identity card numbers (公民身份号码) and phone numbers of applicants.

Pure parsing and validation; every failure is a typed error carrying a stable
``code``, an English ``message`` and a Chinese ``message_zh``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumberType
from stdnum import numdb
from stdnum.cn import ric

from gonghui_shared.vocabulary import Gender

# Nobody alive was born before this; a smaller year is a typing error.
_EARLIEST_BIRTH_YEAR = 1900

_PERSONAL_PHONE_TYPES = frozenset(
    {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


class IdentityError(ValueError):
    """Base of the validation errors of this module."""

    def __init__(self, code: str, message: str, message_zh: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.message_zh = message_zh


class InvalidIdNumber(IdentityError):
    """The text is not a valid 18-digit resident identity card number.

    ``code`` (also ``reason``) is one of ``format``, ``checksum``, ``birth_date``, ``region``.
    """

    def __init__(self, reason: str, message: str, message_zh: str = "") -> None:
        super().__init__(reason, message, message_zh or message)

    @property
    def reason(self) -> str:
        """Alias of ``code``."""
        return self.code


class InvalidPhone(IdentityError):
    """The text is not a usable mobile or fixed-line phone number."""

    def __init__(self, message: str, message_zh: str = "") -> None:
        super().__init__("phone", message, message_zh or message)


@dataclass(frozen=True, slots=True)
class IdNumber:
    """A validated resident identity card number and what it encodes."""

    number: str
    birth_date: date
    gender: Gender
    region_code: str


@lru_cache(maxsize=8192)
def _region_known(region_code: str) -> bool:
    """Whether the 6-digit administrative code appears in stdnum's code list, in any period.

    We do not call ``ric.get_birth_place``: in python-stdnum 2.2 it rejects a code
    unless the birth year falls inside the code's validity period, and codes created
    later are issued to people born earlier (凤庆县 530921 is listed as ``[2003-]``,
    so every adult member of the seed county would be rejected). It also raises
    ``KeyError`` instead of ``InvalidComponent`` for an unknown county code inside a
    known province. Only "this code was never assigned" is a reliable signal.
    """
    try:
        results = numdb.get("cn/loc").info(region_code)
    except Exception:  # noqa: BLE001 - stdnum data problems must read as "unknown"
        return False
    info = {key: value for _part, props in results for key, value in props.items()}
    return bool(info.get("county"))


_LAST = frozenset("0123456789X")


def parse_id_number(text: str, *, today: date | None = None) -> IdNumber:
    """Parse and validate an 18-digit resident identity card number.

    Only the 18-digit (second generation) number is accepted: the 15-digit numbers
    of first-generation cards expired with those cards and carry no check digit.
    Separators (spaces, dashes), full-width characters and the apostrophe Excel
    users type to force text are tolerated; a lower-case ``x`` check digit is
    normalised to ``X``.
    """
    if not isinstance(text, str):
        raise InvalidIdNumber("format", "ID number must be text", "身份证号码必须为文本")
    if len(text) == 18 and text.isascii() and text[:17].isdigit() and text[17] in _LAST:
        number = text  # already clean, as nearly every row of an import is: skip the cleaning
    else:
        number = ric.compact(unicodedata.normalize("NFKC", text)).lstrip("'")
        number = "".join(number.split()).replace("-", "")
    if len(number) != 18 or not number[:17].isascii() or not number[:17].isdigit():
        raise InvalidIdNumber(
            "format",
            "ID number must have 18 characters, 17 digits then a digit or X "
            f"(got {len(number)} characters)",
            "身份证号码应为18位：前17位为数字，最后一位为数字或X",
        )
    if not (number[17].isascii() and (number[17].isdigit() or number[17] == "X")):
        raise InvalidIdNumber(
            "format",
            "the last character of an ID number must be a digit or X",
            "身份证号码最后一位应为数字或X",
        )
    if number[17] != ric.calc_check_digit(number):
        raise InvalidIdNumber(
            "checksum",
            "ID number check digit does not match; please check for typing errors",
            "身份证号码校验位不正确，请核对是否录入有误",
        )
    try:
        # What `ric.get_birth_date` reads, without its second cleaning of a clean number.
        birth_date = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidIdNumber(
            "birth_date",
            f"ID number contains an impossible birth date ({number[6:14]})",
            f"身份证号码中的出生日期无效（{number[6:14]}）",
        ) from None
    if birth_date.year < _EARLIEST_BIRTH_YEAR or birth_date > (today or date.today()):
        raise InvalidIdNumber(
            "birth_date",
            f"ID number contains an implausible birth date ({birth_date.isoformat()})",
            f"身份证号码中的出生日期不合理（{birth_date.isoformat()}）",
        )
    region_code = number[:6]
    if not _region_known(region_code):
        raise InvalidIdNumber(
            "region",
            f"ID number starts with an unknown administrative region code ({region_code})",
            f"身份证号码前6位行政区划代码不存在（{region_code}）",
        )
    gender = Gender.MALE if int(number[16]) % 2 == 1 else Gender.FEMALE
    return IdNumber(number=number, birth_date=birth_date, gender=gender, region_code=region_code)


def normalize_phone(text: str, *, default_region: str = "CN") -> str:
    """Return the phone number in E.164 form (``+8613800138000``).

    Accepts Chinese mobile numbers and fixed lines written with their area code
    (``0871-65123456``), and numbers of other countries written with ``+`` and their
    country code. Service numbers (400/800, short codes) are refused: the roster
    asks for a number that reaches the member.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidPhone("phone number is empty", "手机号码为空")
    cleaned = unicodedata.normalize("NFKC", text).strip()
    try:
        parsed = phonenumbers.parse(cleaned, default_region)
    except phonenumbers.NumberParseException:
        raise InvalidPhone(
            f"{cleaned!r} is not a phone number", f"“{cleaned}”不是有效的电话号码"
        ) from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhone(
            f"{cleaned!r} is not a valid phone number (fixed lines need their area code)",
            f"“{cleaned}”不是有效的电话号码（固定电话需加区号）",
        )
    if phonenumbers.number_type(parsed) not in _PERSONAL_PHONE_TYPES:
        raise InvalidPhone(
            f"{cleaned!r} is not a mobile or fixed-line number",
            f"“{cleaned}”不是手机或固定电话号码",
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
