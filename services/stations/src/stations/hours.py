"""Opening hours in OpenStreetMap's `opening_hours` syntax, evaluated with opening-hours-py.

A station's hours are evaluated in its own time zone: a naive time is read as local time there,
an aware one is converted.

Public holidays (`PH`) come from the library's built-in calendar for China (country code CN).
That calendar has one day per festival: New Year's Day, the first day of the Spring Festival,
Labour Day, the Dragon Boat and Mid-Autumn festivals and National Day (in 2026: 01-01, 02-17,
05-01, 06-19, 09-25, 10-01). It does not have Qingming, the longer holiday periods the State
Council announces each year (e.g. 1-7 October), nor the make-up working days (调休). So
`Mo-Fr 08:00-18:00; PH off` is closed on 1 October and open on Friday 2 October; a station that
closes for the whole Golden Week says so with dates (`Oct 01-07 off`).
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import opening_hours
from opening_hours import OpeningHours, State

from gonghui_shared.errors import Unprocessable

DEFAULT = "24/7"
DEFAULT_TIMEZONE = "Asia/Shanghai"
COUNTRY = "CN"  # for the public-holiday calendar

# What the parser raises on bad syntax (missing from the library's type stubs).
ParserError: type[Exception] = opening_hours.ParserError  # type: ignore[attr-defined]


class InvalidOpeningHours(Unprocessable):
    code = "invalid_opening_hours"
    message = "The opening hours are not valid OpenStreetMap opening_hours syntax"
    message_zh = (
        "营业时间格式无效（应为 OpenStreetMap opening_hours 格式，如 24/7、Mo-Fr 08:00-18:00）"
    )


class InvalidTimezone(Unprocessable):
    code = "invalid_timezone"
    message = "Unknown time zone (use an IANA name such as Asia/Shanghai)"
    message_zh = "时区无效（应为 IANA 时区名，如 Asia/Shanghai）"


def zone(tz: str) -> ZoneInfo:
    """The IANA time zone `tz`; InvalidTimezone if there is no such zone."""
    try:
        return _zone(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidTimezone(details={"field": "timezone", "value": tz}) from exc


@lru_cache(maxsize=256)
def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def validate(spec: str, field: str = "opening_hours") -> str:
    """The spec, stripped, if the parser accepts it; InvalidOpeningHours with its message if not."""
    text = spec.strip() if isinstance(spec, str) else ""
    # The parser accepts a blank string (always closed); for a station that is a typing error.
    if not text:
        raise InvalidOpeningHours(details={"field": field, "parser": "empty expression"})
    try:
        _parsed(text, DEFAULT_TIMEZONE)
    except ParserError as exc:
        raise InvalidOpeningHours(details={"field": field, "parser": str(exc)}) from exc
    return text


@lru_cache(maxsize=4096)
def _parsed(spec: str, tz: str) -> OpeningHours:
    # Parsing is the costly part and stations share a few specs ("24/7" above all): cache it.
    # Evaluation does not mutate the object, so sharing it is safe.
    return OpeningHours(
        spec, timezone=_zone(tz), country=COUNTRY, auto_country=False, auto_timezone=False
    )


def _local(at: datetime, tz: str) -> datetime:
    zone_info = _zone(tz)
    return at.replace(tzinfo=zone_info) if at.tzinfo is None else at.astimezone(zone_info)


def state(spec: str, at: datetime, tz: str = DEFAULT_TIMEZONE) -> str:
    """ "open", "closed" or "unknown" (e.g. `Mo-Fr 08:00-18:00 unknown`: call ahead)."""
    result, _comment = _parsed(spec, tz).state(_local(at, tz))
    if result == State.OPEN:
        return "open"
    return "unknown" if result == State.UNKNOWN else "closed"


def is_open(spec: str, at: datetime, tz: str = DEFAULT_TIMEZONE) -> bool:
    """Whether `spec` is open at `at` in time zone `tz` (naive `at` = local time there)."""
    return _parsed(spec, tz).is_open(_local(at, tz))


def next_change(spec: str, at: datetime, tz: str = DEFAULT_TIMEZONE) -> datetime | None:
    """When the state next changes, in `tz`; None if never (24/7) or beyond the horizon."""
    changed = _parsed(spec, tz).next_change(_local(at, tz))
    if changed is None:
        return None
    return _local(changed, tz)
