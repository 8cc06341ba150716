"""Controlled vocabularies of the membership service, each with its Chinese label.

Every enum stores a stable English code (what the database, the API and the events
carry) and the label a union cadre sees on a form or in a roster (花名册).
``parse`` accepts either, plus the variants people actually type into spreadsheets.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum
from typing import Self

_LOOKUPS: dict[type, dict[str, object]] = {}


def _fold(text: str) -> str:
    """Normalise text for matching: NFKC (full-width to ASCII), no whitespace, casefolded."""
    return "".join(unicodedata.normalize("NFKC", text).split()).casefold()


class LabelledEnum(StrEnum):
    """A StrEnum whose members are declared as ``(code, label_zh, *aliases)``."""

    _label_zh: str
    _aliases: tuple[str, ...]

    def __new__(cls, code: str, label_zh: str, *aliases: str) -> Self:
        """Create a member whose value is ``code``."""
        member = str.__new__(cls, code)
        member._value_ = code
        member._label_zh = label_zh
        member._aliases = aliases
        return member

    @property
    def label_zh(self) -> str:
        """The Chinese label shown on forms and rosters."""
        return self._label_zh

    @classmethod
    def choices(cls) -> str:
        """The allowed values as ``code (中文)``, for error messages."""
        return ", ".join(f"{m.value} ({m.label_zh})" for m in cls)

    @classmethod
    def parse(cls, text: str) -> Self:
        """Return the member named by its code, its Chinese label or a common variant."""
        lookup = _LOOKUPS.get(cls)
        if lookup is None:
            lookup = {}
            for member in cls:
                for key in (member.value, member.label_zh, *member._aliases):
                    lookup[_fold(key)] = member
            _LOOKUPS[cls] = lookup
        found = lookup.get(_fold(text)) if isinstance(text, str) else None
        if found is None:
            raise ValueError(f"{text!r} is not a valid {cls.__name__}; allowed: {cls.choices()}")
        return found  # type: ignore[return-value]


class MemberCategory(LabelledEnum):
    """会员类别: the category a member is counted under in federation statistics."""

    MIGRANT_WORKER = ("migrant_worker", "农民工", "农民工会员", "进城务工人员", "外来务工人员")
    NEW_EMPLOYMENT = (
        "new_employment",
        "新就业形态劳动者",
        "新就业形态",
        "新就业形态劳动者会员",
        "新业态",
        "新业态劳动者",
    )
    EMPLOYEE = ("employee", "职工", "在职职工", "职工会员")
    OTHER = ("other", "其他", "其它")


class NewEmploymentSubtype(LabelledEnum):
    """新就业形态类型: the platform occupation of a new-employment-form worker."""

    RIDER = ("rider", "外卖骑手", "骑手", "外卖员", "外卖送餐员", "外卖配送员", "送餐员")
    COURIER = ("courier", "快递员", "快递小哥", "快递", "快递配送员")
    RIDE_HAILING_DRIVER = ("ride_hailing_driver", "网约车司机", "网约车", "网约车驾驶员")
    TRUCK_DRIVER = ("truck_driver", "货车司机", "货车驾驶员", "卡车司机", "货运司机")


class HouseholdType(LabelledEnum):
    """户籍类型: the kind of household registration (户口) a person holds."""

    URBAN = ("urban", "城镇", "非农业", "非农业户口", "城镇户口", "非农", "城市")
    RURAL = ("rural", "农村", "农业", "农业户口", "农村户口")


class Gender(LabelledEnum):
    """性别, as derived from the resident identity card number."""

    MALE = ("male", "男", "男性", "m")
    FEMALE = ("female", "女", "女性", "f")
