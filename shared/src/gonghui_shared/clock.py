"""China's calendar: dates on forms, member-number years and "today" are Beijing time.

China has kept UTC+8 without daylight saving since 1991; a fixed offset avoids
depending on the tz database, which slim container images often lack.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")


def _exists_in_utc_and_china(value: datetime) -> datetime:
    try:
        value.astimezone(UTC)
        value.astimezone(CHINA)
    except OverflowError:
        raise ValueError("the time is out of range once converted to UTC or China time") from None
    return value


# A moment given with its UTC offset that the database (storing UTC) and China's calendar can
# both hold: year 1 at +00:01, or 23:00 UTC on the last day of 9999, has no such equivalent and
# is refused as invalid input instead of failing deep in the service.
Instant = Annotated[AwareDatetime, AfterValidator(_exists_in_utc_and_china)]


def today_in_china() -> date:
    return datetime.now(CHINA).date()
