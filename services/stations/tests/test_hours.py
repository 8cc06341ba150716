"""Opening hours (OSM `opening_hours`): a table of cases, holidays, time zones, validation."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from stations import hours
from stations.hours import InvalidOpeningHours, InvalidTimezone

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")

# 2026-11-23 is a Monday, 2026-11-28 a Saturday.
MON, TUE, SAT, SUN = 23, 24, 28, 29


def local(day: int, hh: int, mm: int = 0, month: int = 11) -> datetime:
    """A naive local time in November 2026: read in the station's time zone."""
    return datetime(2026, month, day, hh, mm)


CASES = [
    # 24/7
    ("24/7", local(MON, 0, 0), True),
    ("24/7", local(SAT, 3, 17), True),
    ("24/7", local(SUN, 23, 59), True),
    # weekdays, both ends: the start minute is open, the end minute is not
    ("Mo-Fr 08:00-18:00", local(MON, 7, 59), False),
    ("Mo-Fr 08:00-18:00", local(MON, 8, 0), True),
    ("Mo-Fr 08:00-18:00", local(MON, 17, 59), True),
    ("Mo-Fr 08:00-18:00", local(MON, 18, 0), False),
    ("Mo-Fr 08:00-18:00", local(SAT, 10, 0), False),
    ("Mo-Fr 08:00-18:00", local(SUN, 10, 0), False),
    # several ranges a day: breakfast and evening (爱心早餐 and after work)
    ("Mo-Su 06:00-09:00,17:00-21:00", local(MON, 6, 0), True),
    ("Mo-Su 06:00-09:00,17:00-21:00", local(MON, 8, 59), True),
    ("Mo-Su 06:00-09:00,17:00-21:00", local(MON, 9, 0), False),
    ("Mo-Su 06:00-09:00,17:00-21:00", local(MON, 12, 0), False),
    ("Mo-Su 06:00-09:00,17:00-21:00", local(MON, 16, 59), False),
    ("Mo-Su 06:00-09:00,17:00-21:00", local(SAT, 17, 0), True),
    ("Mo-Su 06:00-09:00,17:00-21:00", local(SAT, 21, 0), False),
    # crossing midnight: the night shift of a 24-hour rest stop
    ("Mo-Su 22:00-06:00", local(MON, 21, 59), False),
    ("Mo-Su 22:00-06:00", local(MON, 22, 0), True),
    ("Mo-Su 22:00-06:00", local(MON, 23, 30), True),
    ("Mo-Su 22:00-06:00", local(TUE, 0, 0), True),
    ("Mo-Su 22:00-06:00", local(TUE, 2, 0), True),
    ("Mo-Su 22:00-06:00", local(TUE, 5, 59), True),
    ("Mo-Su 22:00-06:00", local(TUE, 6, 0), False),
    ("Mo-Su 22:00-06:00", local(TUE, 12, 0), False),
    # crossing midnight from the last day of a weekday range: Friday night runs into Saturday
    ("Mo-Fr 22:00-06:00", local(27, 23, 0), True),  # Friday 23:00
    ("Mo-Fr 22:00-06:00", local(SAT, 2, 0), True),  # the same night, Saturday 02:00
    ("Mo-Fr 22:00-06:00", local(SAT, 23, 0), False),  # Saturday night: no shift
    ("Mo-Fr 22:00-06:00", local(MON, 2, 0), False),  # Sunday night did not start one
    # weekend differs
    ("Mo-Fr 08:00-18:00; Sa-Su 09:00-12:00", local(SAT, 11, 59), True),
    ("Mo-Fr 08:00-18:00; Sa-Su 09:00-12:00", local(SAT, 12, 0), False),
    # public holidays (the library's CN calendar; see hours.py): 1 October 2026 is a Thursday
    ("Mo-Fr 08:00-18:00; PH off", local(1, 10, month=10), False),
    ("Mo-Fr 08:00-18:00", local(1, 10, month=10), True),
    ("Mo-Fr 08:00-18:00; PH off", local(1, 10, month=5), False),  # Labour Day, a Friday
    ("Mo-Fr 08:00-18:00; PH off", local(17, 10, month=2), False),  # Spring Festival, Tuesday
    ("Mo-Fr 08:00-18:00; PH off", local(MON, 10), True),  # an ordinary Monday
    # only the festival day itself is PH in that calendar, not the whole Golden Week
    ("Mo-Fr 08:00-18:00; PH off", local(2, 10, month=10), True),
    ("Mo-Fr 08:00-18:00; PH off; Oct 01-07 off", local(2, 10, month=10), False),
    ("Mo-Fr 08:00-18:00; PH off; Oct 01-07 off", local(8, 10, month=10), True),
    # open on holidays only in the morning
    ("24/7; PH 08:00-12:00", local(1, 11, month=10), True),
    ("24/7; PH 08:00-12:00", local(1, 13, month=10), False),
    # off
    ("Mo-Sa 08:00-18:00; Su off", local(SUN, 10), False),
    ("Mo-Sa 08:00-18:00; Su off", local(SAT, 10), True),
]


@pytest.mark.parametrize(("spec", "at", "expected"), CASES, ids=[f"{c[0]} @ {c[1]}" for c in CASES])
def test_is_open_table(spec: str, at: datetime, expected: bool) -> None:
    assert hours.validate(spec) == spec
    assert hours.is_open(spec, at, "Asia/Shanghai") is expected
    # the same local time given with the zone attached is the same question
    assert hours.is_open(spec, at.replace(tzinfo=SHANGHAI), "Asia/Shanghai") is expected


def test_the_same_instant_in_utc_and_in_shanghai() -> None:
    spec = "Mo-Fr 08:00-18:00"
    instant = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # Monday 01:00 UTC = 09:00 in Shanghai
    assert hours.is_open(spec, instant, "Asia/Shanghai") is True
    assert hours.is_open(spec, instant, "UTC") is False  # a station keeping UTC: 01:00, closed
    assert hours.is_open(spec, instant.astimezone(SHANGHAI), "Asia/Shanghai") is True
    # 10:30 UTC = 18:30 in Shanghai: closed there, open for the UTC station
    evening = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
    assert hours.is_open(spec, evening, "Asia/Shanghai") is False
    assert hours.is_open(spec, evening, "UTC") is True


def test_a_naive_time_is_local_to_the_station() -> None:
    spec = "Mo-Fr 08:00-18:00"
    assert hours.is_open(spec, datetime(2026, 11, 23, 9, 0), "Asia/Shanghai") is True
    assert hours.is_open(spec, datetime(2026, 11, 23, 9, 0), "Asia/Urumqi") is True
    # Friday 23:00 UTC is already Saturday 07:00 in Shanghai
    friday_night = datetime(2026, 11, 27, 23, 0, tzinfo=UTC)
    assert hours.is_open("Mo-Fr 00:00-24:00", friday_night, "UTC") is True
    assert hours.is_open("Mo-Fr 00:00-24:00", friday_night, "Asia/Shanghai") is False


def test_next_change() -> None:
    tz = "Asia/Shanghai"
    assert hours.next_change("24/7", local(MON, 10), tz) is None
    changed = hours.next_change("Mo-Fr 08:00-18:00", local(MON, 10), tz)
    assert changed == datetime(2026, 11, 23, 18, 0, tzinfo=SHANGHAI)
    assert changed is not None and changed.utcoffset() == SHANGHAI.utcoffset(changed)
    # Friday evening -> Monday morning
    assert hours.next_change("Mo-Fr 08:00-18:00", local(27, 19), tz) == datetime(
        2026, 11, 30, 8, 0, tzinfo=SHANGHAI
    )
    # inside a night shift: it ends at 06:00 the next morning
    assert hours.next_change("Mo-Su 22:00-06:00", local(MON, 23, 30), tz) == datetime(
        2026, 11, 24, 6, 0, tzinfo=SHANGHAI
    )
    # asked in UTC, answered in the station's zone
    asked = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    assert hours.next_change("Mo-Fr 08:00-18:00", asked, tz) == datetime(
        2026, 11, 23, 18, 0, tzinfo=SHANGHAI
    )


def test_state_unknown_is_not_open() -> None:
    spec = "Mo-Fr 08:00-18:00 unknown"
    assert hours.state(spec, local(MON, 10)) == "unknown"
    assert hours.is_open(spec, local(MON, 10)) is False
    assert hours.state(spec, local(MON, 20)) == "closed"
    assert hours.state("24/7", local(MON, 20)) == "open"


@pytest.mark.parametrize(
    "spec",
    ["Mo-Fx 08:00-18:00", "Mo-Fr 25:00-26:00", "24/24", "open sometimes", "Mo-Fr 08:00-", "", "  "],
)
def test_invalid_syntax_is_refused_with_the_parsers_message(spec: str) -> None:
    with pytest.raises(InvalidOpeningHours) as caught:
        hours.validate(spec)
    assert caught.value.status_code == 422 and caught.value.code == "invalid_opening_hours"
    details = caught.value.details
    assert isinstance(details, dict) and details["field"] == "opening_hours" and details["parser"]


def test_validate_strips_and_accepts_common_forms() -> None:
    assert hours.validate("  24/7 ") == "24/7"
    for spec in ("Mo-Fr 08:00-18:00; PH off", "Mo-Su 06:00-09:00,17:00-21:00", "sunrise-sunset"):
        assert hours.validate(spec) == spec


def test_time_zones() -> None:
    assert hours.zone("Asia/Shanghai") == SHANGHAI
    for bad in ("Mars/Olympus", "../etc/passwd", ""):
        with pytest.raises(InvalidTimezone):
            hours.zone(bad)
