"""A tenant's local time: its IANA zone, how a moment is shown to people, and the local day and
month boundaries the rules count in (SPEC 8; docs/decisions.md "Local time").

Moments are stored and spoken by the API in UTC; only what people read is local. Pages get the
zone from `web.time_zone_middleware` (Django's active time zone, so `|date` converts); e-mails
and CSV files are made without a request and pass the tenant's zone to these helpers.
"""

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.utils import dateformat, timezone

DEFAULT_TIME_ZONE = "Pacific/Fiji"
# The markets (Fiji, Samoa, Vanuatu): listed first wherever a zone is chosen.
MARKET_TIME_ZONES = ("Pacific/Fiji", "Pacific/Apia", "Pacific/Efate")
TIME_ZONE_MAX_LENGTH = 64  # the longest IANA name today is 32 characters

# One format for every moment a person reads: "30 Nov 2026 14:05 +12". `T` is the zone's
# abbreviation from the tz database, which for the Pacific zones is the offset itself (+12, +13,
# +11) and for UTC is "UTC", so a reader never has to guess which clock is meant.
MOMENT_FORMAT = "j M Y H:i T"
DAY_FORMAT = "j M Y"


@lru_cache(maxsize=1)
def _available() -> frozenset[str]:
    return frozenset(available_timezones())


def is_time_zone(name: str) -> bool:
    return isinstance(name, str) and name in _available()


def time_zone_choices() -> list[tuple[str, str]]:
    """The three market zones, then every other zone A to Z."""
    rest = sorted(_available() - set(MARKET_TIME_ZONES))
    return [(name, name) for name in (*MARKET_TIME_ZONES, *rest)]


@lru_cache(maxsize=64)
def zone(name: str | None) -> ZoneInfo:
    """The ZoneInfo of a stored zone name; an unknown or empty one (never stored: the field is
    validated) falls back to the default rather than failing an e-mail or an export."""
    try:
        return ZoneInfo(name or DEFAULT_TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIME_ZONE)


def local(moment: datetime, zone_name: str | None) -> datetime:
    return moment.astimezone(zone(zone_name))


def moment_text(moment: datetime | None, zone_name: str | None = None) -> str:
    """ "30 Nov 2026 14:05 +12": in `zone_name`, or in the active zone (a page's tenant) if None."""
    if moment is None:
        return ""
    shown = local(moment, zone_name) if zone_name else timezone.localtime(moment)
    return dateformat.format(shown, MOMENT_FORMAT)


def day_text(moment: datetime | None, zone_name: str | None = None) -> str:
    """ "30 Nov 2026": the local date of a moment."""
    if moment is None:
        return ""
    shown = local(moment, zone_name) if zone_name else timezone.localtime(moment)
    return date_text(shown.date())


@lru_cache(maxsize=1024)
def date_text(day: date) -> str:
    """ "30 Nov 2026". Cached: lists show a few distinct days over many rows, and formatting one
    costs more than the rest of a row's cell (the partner keys list, issue 9). One language
    (settings.USE_I18N is off), so the text depends on the day alone."""
    return dateformat.format(day, DAY_FORMAT)


def iso_local(moment: datetime | None, zone_name: str | None) -> str:
    """ISO 8601 in the tenant's zone, with its offset (`2026-11-30T14:05:00+12:00`): a CSV cell a
    spreadsheet parses, that still reads as local time."""
    return local(moment, zone_name).isoformat(timespec="seconds") if moment else ""


def local_date(moment: datetime, zone_name: str | None) -> date:
    return local(moment, zone_name).date()


def start_of_day(day: date, zone_name: str | None) -> datetime:
    """The first moment of `day` in the zone (aware, in that zone). Midnight may be skipped by a
    daylight-saving change; zoneinfo then gives the moment after the gap."""
    return datetime.combine(day, time(0), tzinfo=zone(zone_name))


def end_of_day(day: date, zone_name: str | None) -> datetime:
    """ "Through that day": the next local midnight, as a moment (SPEC 8, redeem-by)."""
    return start_of_day(day + timedelta(days=1), zone_name)


def month_start(moment: datetime, zone_name: str | None) -> date:
    """The first day of the local calendar month of `moment` ("this month" for quotas)."""
    return local_date(moment, zone_name).replace(day=1)


def next_month_start(moment: datetime, zone_name: str | None) -> datetime:
    """The moment the next local calendar month begins."""
    first = month_start(moment, zone_name)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return start_of_day(following, zone_name)


def days_left(end: datetime, moment: datetime, zone_name: str | None) -> int:
    """Local calendar days from `moment` to `end` (0 on the last day itself)."""
    return (local_date(end, zone_name) - local_date(moment, zone_name)).days
