"""The one place that reads the time, so tests can freeze it (time-machine patches it too)."""

import calendar
from datetime import UTC, datetime, time, timedelta

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


def parse_deadline(text: str) -> datetime:
    """An ISO date or date-time as a UTC deadline (raises ValueError).

    A bare date means "through that day": the deadline is the next midnight UTC. A date-time
    without a zone is read as UTC.
    """
    text = text.strip()
    if len(text) == 10:
        day = datetime.fromisoformat(text).date()
        try:
            return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)
        except OverflowError:  # 9999-12-31 has no next midnight: as refused as any bad date
            raise ValueError(f"{text} is past the last date this system can store") from None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
