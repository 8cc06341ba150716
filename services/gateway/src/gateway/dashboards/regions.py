"""Statistical region codes (统计用区划代码), the little the dashboards need of them.

The same rules as membership's `membership.units.statistical_codes` (the gateway never
imports another service's code): a 12-digit code nests province (2 digits), city (2),
county (2), township (3) and village (3); trailing zeros mark the level.
"""

from __future__ import annotations

LEVELS = ("province", "city", "county", "township", "village")
_PREFIX_DIGITS = {"province": 2, "city": 4, "county": 6, "township": 9, "village": 12}


def unit_level(code: str) -> str | None:
    """The level of a unit, or None when `code` is not a 12-digit region code."""
    if len(code) != 12 or not code.isascii() or not code.isdigit() or code[:2] == "00":
        return None
    if code[2:] == "0" * 10:
        return "province"
    if code[4:] == "0" * 8:
        return "city"
    if code[6:] == "0" * 6:
        return "county"
    if code[9:] == "000":
        return "township"
    return "village"


def region_prefix(code: str, level: str) -> str:
    """The leading digits every unit inside this one shares (530921 for 凤庆县)."""
    return code[: _PREFIX_DIGITS[level]]


def levels_below(level: str) -> tuple[str, ...]:
    """The levels under `level`, top down; empty for a village."""
    return LEVELS[LEVELS.index(level) + 1 :]
