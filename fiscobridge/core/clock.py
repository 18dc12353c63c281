"""The one place that reads the time, so tests can freeze it (time-machine patches it too)."""

import calendar
from datetime import UTC, date, datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar months, clamped to the month's end: 31 Jan + 1 month = 28/29 Feb, same time of day."""
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def parse_deadline(text: str) -> date | datetime:
    """An ISO date or date-time typed as a deadline (raises ValueError).

    A bare date comes back as a `date`: "through that day" in the partner's zone, which only the
    issuing service knows (`keys.issuance.redeem_by_moment`). A date-time without a zone is read
    as UTC.
    """
    text = text.strip()
    if len(text) == 10:
        day = date.fromisoformat(text)
        if day == date.max:  # 9999-12-31 has no next midnight: as refused as any bad date
            raise ValueError(f"{text} is past the last date this system can store")
        return day
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
