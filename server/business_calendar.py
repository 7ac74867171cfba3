"""The business calendar: the business's time zone, its working days and hours, lunar dates.

Every period, "today" and service-level clock reads time through here: metrics buckets
and care moments by the local day, SLA deadlines in business hours on working days.
Statutory holidays and adjusted workdays (调休) come from `chinesecalendar`, which knows
the years the State Council has published; outside them a working day is Monday to
Friday. Lunar dates (Spring Festival, Mid-Autumn) are converted by `lunar_python`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar
from chinese_calendar.constants import holidays as statutory_holidays
from lunar_python import Lunar

from server.errors import ConfigError

DEFAULT_TIMEZONE = "Asia/Shanghai"
# A deadline further than this many days of business time away is a configuration error
# (no working hours at all), not something to search for forever.
MAX_SEARCH_DAYS = 3660
# The years for which the statutory calendar knows holidays and adjusted workdays.
STATUTORY_YEARS = range(
    min(day.year for day in statutory_holidays), max(day.year for day in statutory_holidays) + 1
)

Span = tuple[time, time]


def timezone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {name!r} (an IANA name such as Asia/Shanghai)"
        ) from None


def parse_hours(text: str) -> tuple[Span, ...]:
    """`09:00-12:00,13:00-18:00` → the working spans of a day, ascending, not overlapping."""
    spans: list[Span] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        start_text, sep, end_text = part.partition("-")
        try:
            if not sep:
                raise ValueError
            start, end = (
                time.fromisoformat(start_text.strip()),
                time.fromisoformat(end_text.strip()),
            )
        except ValueError:
            raise ConfigError(f"business hours {part!r} are not 'HH:MM-HH:MM'") from None
        if end <= start or (spans and start < spans[-1][1]):
            raise ConfigError(f"business hours {part!r} must be ascending and not overlap")
        spans.append((start, end))
    if not spans:
        raise ConfigError("business hours must name at least one span, e.g. 09:00-18:00")
    return tuple(spans)


def parse_days(text: str) -> frozenset[date]:
    """`2027-01-01;2027-02-05..2027-02-11` → those days (a `..` range includes both ends)."""
    days: set[date] = set()
    for part in filter(None, (p.strip() for p in text.split(";"))):
        first_text, _, last_text = part.partition("..")
        try:
            first = date.fromisoformat(first_text.strip())
            last = date.fromisoformat(last_text.strip()) if last_text else first
        except ValueError:
            raise ConfigError(
                f"day {part!r} is not 'YYYY-MM-DD' or 'YYYY-MM-DD..YYYY-MM-DD'"
            ) from None
        if last < first or (last - first).days > 366:
            raise ConfigError(f"day range {part!r} is backwards or longer than a year")
        days.update(first + timedelta(days=n) for n in range((last - first).days + 1))
    return frozenset(days)


@cache
def lunar_to_solar(year: int, month: int, day: int) -> date:
    """The Gregorian date of a lunar (month, day) in the lunar year `year`. Day 30 of a
    29-day month is its last day (New Year's Eve is the last day of the twelfth month)."""
    try:
        solar = Lunar.fromYmd(year, month, day).getSolar()
    except Exception:
        if day != 30:
            raise
        solar = Lunar.fromYmd(year, month, 29).getSolar()
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


def next_lunar_occurrence(month: int, day: int, start: date) -> date:
    """The first Gregorian date on or after `start` that is lunar (month, day)."""
    for year in (start.year - 1, start.year, start.year + 1):
        candidate = lunar_to_solar(year, month, day)
        if candidate >= start:
            return candidate
    raise AssertionError("a lunar date recurs within two years")


@dataclass(frozen=True)
class BusinessCalendar:
    """Local days and working time of the business.

    `statutory`: working days follow China's published calendar (holidays off, adjusted
    weekend workdays on) for the years it covers, else Monday to Friday. `extra_holidays`
    and `extra_workdays` override both, e.g. for a year the library does not know yet.
    """

    timezone: str = DEFAULT_TIMEZONE
    hours: tuple[Span, ...] = ((time(9), time(18)),)
    statutory: bool = True
    extra_holidays: frozenset[date] = field(default_factory=frozenset)
    extra_workdays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        timezone_of(self.timezone)

    @property
    def tz(self) -> ZoneInfo:
        return timezone_of(self.timezone)

    # --- days ---------------------------------------------------------------------------

    def local_date(self, instant: datetime) -> date:
        """The business's calendar day at `instant`."""
        return instant.astimezone(self.tz).date()

    def start_of(self, day: date) -> datetime:
        """The instant (UTC) the business's `day` begins: local midnight."""
        return datetime.combine(day, time(), self.tz).astimezone(UTC)

    def end_of(self, day: date) -> datetime:
        """The instant (UTC) just after the business's `day` ends."""
        return self.start_of(day + timedelta(days=1))

    def covers(self, day: date) -> bool:
        """Whether the statutory calendar knows `day`'s year."""
        return day.year in STATUTORY_YEARS

    def is_workday(self, day: date) -> bool:
        if day in self.extra_workdays:
            return True
        if day in self.extra_holidays:
            return False
        if self.statutory and self.covers(day):
            return bool(chinese_calendar.is_workday(day))
        return day.weekday() < 5

    def workdays(self, first: date, last: date) -> Iterable[date]:
        day = first
        while day <= last:
            if self.is_workday(day):
                yield day
            day += timedelta(days=1)

    # --- working time -------------------------------------------------------------------

    def _spans(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working spans of `day` as UTC instants (none on a day off)."""
        if not self.is_workday(day):
            return []
        tz = self.tz
        return [
            (
                datetime.combine(day, start, tz).astimezone(UTC),
                datetime.combine(day, end, tz).astimezone(UTC),
            )
            for start, end in self.hours
        ]

    def add_working_time(self, start: datetime, duration: timedelta) -> datetime:
        """The instant `duration` of working time after `start`.

        The clock runs only inside business hours on working days: a request at 17:00
        with 2 hours to answer is due at 10:00 on the next working day (09:00-18:00).
        """
        remaining = duration
        day = self.local_date(start)
        for _ in range(MAX_SEARCH_DAYS):
            for span_start, span_end in self._spans(day):
                begin = max(span_start, start)
                if begin >= span_end:
                    continue
                available = span_end - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
            day += timedelta(days=1)
        raise ConfigError("no working time within ten years: check the business hours and days")

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Working time from `start` to `end` (zero if `end` is not later)."""
        total = timedelta()
        day = self.local_date(start)
        last = self.local_date(end)
        while day <= last:
            for span_start, span_end in self._spans(day):
                begin, finish = max(span_start, start), min(span_end, end)
                if finish > begin:
                    total += finish - begin
            day += timedelta(days=1)
        return total
