"""China's calendar: dates on forms, member-number years and "today" are Beijing time.

China has kept UTC+8 without daylight saving since 1991; a fixed offset avoids
depending on the tz database, which slim container images often lack.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")


def today_in_china() -> date:
    return datetime.now(CHINA).date()
