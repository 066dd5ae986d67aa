"""Business calendars and exact business-time arithmetic.

A ``BusinessCalendar`` says when a desk works: wall-clock working hours per
weekday in one time zone, minus public holidays (from the ``holidays`` package)
and custom closed dates.  The maths walks the calendar day by day over whole
working intervals — never second by second — so a target of 10,000 business
hours costs a few thousand cheap steps.

Semantics, decided once:

* Every result is a UTC datetime, exact to the microsecond; inputs must be
  time-zone aware (any zone).
* Working intervals are half-open ``[opening, closing)``.  ``add_business_time``
  may land exactly on a closing time (a due time of 17:00, not 08:00 next day).
* ``add_business_time(start, 0)`` is ``start`` itself, even when closed; a
  positive amount starting outside hours counts from the next opening.
  Negative amounts raise ``ValueError``.
* ``business_time_between(a, b)`` is antisymmetric: negative when ``b < a``.
* Working hours are wall-clock times in the calendar's zone; the business time
  of an interval is the real (UTC) time between its two wall-clock instants, so
  an interval spanning a DST switch is an hour shorter (spring) or longer (fall).
* Edge times that do not exist (skipped by spring-forward) resolve to the moment
  the clocks jump (02:30 → 03:00 in Berlin); ambiguous edge times (repeated by
  fall-back) resolve to their first occurrence (``fold=0``).  Both rules keep
  wall-clock order, so intervals never overlap after resolution.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from desk.errors import InvalidInput

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MIDNIGHT = time(0)
# A calendar closed this long in a row (after its start) has no usable working time.
MAX_CLOSED_RUN_DAYS = 3660
_RANGE = re.compile(r"^\s*(\d{1,2}:\d{2}(?::\d{2})?)\s*[-\u2013]\s*(\d{1,2}:\d{2}(?::\d{2})?)\s*$")
_CONFIG_KEYS = ("time_zone", "hours", "holidays", "closed")


class CalendarError(InvalidInput):
    code = "invalid_calendar"


def _fail(field_name: str, problem: str) -> CalendarError:
    return CalendarError(f"{field_name}: {problem}", fields={field_name: problem})


def _micros(moment: time) -> int:
    seconds = moment.hour * 3600 + moment.minute * 60 + moment.second
    return seconds * 1_000_000 + moment.microsecond


@dataclass(frozen=True)
class WorkingHours:
    """One wall-clock working interval of a day; an ``end`` of 00:00 means 24:00."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise _fail("hours", "working hours are wall-clock times without a zone")
        if self.end_micros <= _micros(self.start):
            raise _fail("hours", f"{self} ends before it starts")

    @property
    def end_micros(self) -> int:
        return 86_400_000_000 if self.end == MIDNIGHT else _micros(self.end)

    @classmethod
    def parse(cls, text: str, *, field_name: str = "hours") -> WorkingHours:
        """Read ``"08:00-17:00"`` (seconds optional; ``24:00`` allowed as an end)."""
        match = _RANGE.match(text)
        if match is None:
            raise _fail(field_name, f"{text!r} is not a time range like '08:00-17:00'")
        start, end = (_parse_time(part, field_name) for part in match.groups())
        if start is None:
            raise _fail(field_name, f"{text!r} cannot start at 24:00")
        return cls(start, end or MIDNIGHT)

    def __str__(self) -> str:
        end = "24:00" if self.end == MIDNIGHT else _format_time(self.end)
        return f"{_format_time(self.start)}-{end}"


def _parse_time(text: str, field_name: str) -> time | None:
    """A ``time``, or None for 24:00."""
    hour, minute, second = (int(part) for part in (*text.split(":"), "0")[:3])
    if hour == 24 and minute == second == 0:
        return None
    try:
        return time(hour, minute, second)
    except ValueError:
        raise _fail(field_name, f"{text!r} is not a time of day") from None


def _format_time(moment: time) -> str:
    return moment.strftime("%H:%M:%S" if moment.second else "%H:%M")


@lru_cache(maxsize=512)
def _public_holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year))


@dataclass(frozen=True, kw_only=True)
class BusinessCalendar:
    """Working hours (``hours[0]`` is Monday) in ``time_zone``, minus closed days."""

    time_zone: str
    hours: tuple[tuple[WorkingHours, ...], ...]
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    closed: frozenset[date] = frozenset()
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "zone", _zone(self.time_zone))
        if len(self.hours) != 7:
            raise _fail("hours", f"needs 7 weekdays (Monday first), got {len(self.hours)}")
        week = tuple(tuple(sorted(day, key=lambda h: h.start)) for day in self.hours)
        for name, day in zip(WEEKDAYS, week, strict=True):
            for before, after in pairwise(day):
                if _micros(after.start) < before.end_micros:
                    raise _fail(f"hours.{name}", f"{before} overlaps {after}")
        if not any(week):
            raise _fail("hours", "calendar has no working hours")
        object.__setattr__(self, "hours", week)
        object.__setattr__(self, "closed", frozenset(self.closed))
        if self.holiday_subdivision is not None and self.holiday_country is None:
            raise _fail("holidays.subdivision", "a subdivision needs a country")
        if self.holiday_country is not None:
            try:
                holidays.country_holidays(self.holiday_country, subdiv=self.holiday_subdivision)
            except NotImplementedError as error:
                raise _fail("holidays", f"unknown holiday calendar: {error}") from None

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> BusinessCalendar:
        """Build from a TOML-shaped mapping; every error names its field::

        {"time_zone": "Europe/Berlin", "hours": {"mon": ["08:00-12:00", "13:00-17:00"]},
         "holidays": {"country": "DE", "subdivision": "BE"}, "closed": ["2026-12-24"]}

        Weekdays missing from ``hours`` are closed.
        """
        for key in config:
            if key not in _CONFIG_KEYS:
                raise _fail(key, f"unknown key (expected one of {', '.join(_CONFIG_KEYS)})")
        zone_name = config.get("time_zone")
        if not isinstance(zone_name, str):
            raise _fail("time_zone", "required, a name like 'Europe/Berlin'")
        country, subdivision = _holidays_from_config(config.get("holidays"))
        return cls(
            time_zone=zone_name,
            hours=_hours_from_config(config.get("hours")),
            holiday_country=country,
            holiday_subdivision=subdivision,
            closed=_closed_from_config(config.get("closed", [])),
        )

    def to_config(self) -> dict[str, object]:
        """The TOML-shaped mapping ``from_config`` reads back."""
        config: dict[str, object] = {
            "time_zone": self.time_zone,
            "hours": {
                name: [str(hours) for hours in day]
                for name, day in zip(WEEKDAYS, self.hours, strict=True)
                if day
            },
        }
        if self.holiday_country is not None:
            config["holidays"] = {"country": self.holiday_country} | (
                {"subdivision": self.holiday_subdivision} if self.holiday_subdivision else {}
            )
        if self.closed:
            config["closed"] = [day.isoformat() for day in sorted(self.closed)]
        return config

    def is_closed_day(self, day: date) -> bool:
        """A public holiday or a custom closed date (whatever the weekday)."""
        if day in self.closed:
            return True
        return self.holiday_country is not None and day in _public_holidays(
            self.holiday_country, self.holiday_subdivision, day.year
        )


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail("time_zone", f"unknown time zone {name!r}") from None


def _hours_from_config(raw: object) -> tuple[tuple[WorkingHours, ...], ...]:
    if not isinstance(raw, Mapping):
        raise _fail("hours", "required, a table of weekday = ['08:00-17:00', ...]")
    for key in raw:
        if key not in WEEKDAYS:
            raise _fail(f"hours.{key}", f"unknown weekday (expected {', '.join(WEEKDAYS)})")
    week: list[tuple[WorkingHours, ...]] = []
    for name in WEEKDAYS:
        ranges = raw.get(name, [])
        if isinstance(ranges, str) or not isinstance(ranges, Sequence):
            raise _fail(f"hours.{name}", "a list of ranges like ['08:00-17:00']")
        day: list[WorkingHours] = []
        for index, text in enumerate(ranges):
            where = f"hours.{name}[{index}]"
            if not isinstance(text, str):
                raise _fail(where, "a range like '08:00-17:00'")
            try:
                day.append(WorkingHours.parse(text, field_name=where))
            except CalendarError as error:
                if where in error.fields:
                    raise
                raise _fail(where, f"{text!r} ends before it starts") from None
        week.append(tuple(day))
    return tuple(week)


def _holidays_from_config(raw: object) -> tuple[str | None, str | None]:
    if raw is None:
        return None, None
    if isinstance(raw, str):
        return raw, None
    if not isinstance(raw, Mapping):
        raise _fail("holidays", "a table like {country = 'DE', subdivision = 'BE'}")
    for key in raw:
        if key not in ("country", "subdivision"):
            raise _fail(f"holidays.{key}", "unknown key (expected country, subdivision)")
    country, subdivision = raw.get("country"), raw.get("subdivision")
    if not isinstance(country, str):
        raise _fail("holidays.country", "required, a country code like 'DE'")
    if subdivision is not None and not isinstance(subdivision, str):
        raise _fail("holidays.subdivision", "a subdivision code like 'BE'")
    return country, subdivision


def _closed_from_config(raw: object) -> frozenset[date]:
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise _fail("closed", "a list of dates like ['2026-12-24']")
    days: set[date] = set()
    for index, item in enumerate(raw):
        if isinstance(item, date) and not isinstance(item, datetime):
            days.add(item)
            continue
        try:
            days.add(date.fromisoformat(item if isinstance(item, str) else ""))
        except ValueError:
            raise _fail(f"closed[{index}]", f"{item!r} is not a date like 2026-12-24") from None
    return frozenset(days)


# --- the arithmetic ---------------------------------------------------------


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be time-zone aware, got {moment!r}")
    return moment.astimezone(UTC)


def _wall_to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a naive wall-clock time: first occurrence if repeated,
    the jump itself if skipped."""
    earlier = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if earlier.astimezone(zone).replace(tzinfo=None) == wall:
        return earlier
    # In a gap: the earliest instant whose wall clock reads ``wall`` or later.
    later = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    low, high = min(earlier, later), max(earlier, later)
    while high - low > timedelta(microseconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high


def _day_openings(calendar: BusinessCalendar, day: date) -> list[tuple[datetime, datetime]]:
    """The working intervals of one local date as UTC ``(opening, closing)`` pairs."""
    if calendar.is_closed_day(day):
        return []
    openings = []
    for hours in calendar.hours[day.weekday()]:
        opening = _wall_to_utc(datetime.combine(day, hours.start), calendar.zone)
        end_day = day + timedelta(days=1) if hours.end == MIDNIGHT else day
        closing = _wall_to_utc(datetime.combine(end_day, hours.end), calendar.zone)
        if closing > opening:
            openings.append((opening, closing))
    return openings


def _openings(
    calendar: BusinessCalendar, at: datetime, *, until: datetime | None = None
) -> Iterator[tuple[datetime, datetime]]:
    """Working intervals ending after ``at`` (UTC), in order, day by day.

    Earlier local dates cannot matter: their intervals end by the local midnight
    that starts ``at``'s date.  Without ``until`` the walk is unbounded but
    gives up after ``MAX_CLOSED_RUN_DAYS`` closed days in a row.
    """
    day = at.astimezone(calendar.zone).date()
    last = until.astimezone(calendar.zone).date() if until is not None else None
    closed_run = 0
    while last is None or day <= last:
        found = False
        for opening, closing in _day_openings(calendar, day):
            if closing > at:
                found = True
                yield opening, closing
        closed_run = 0 if found else closed_run + 1
        if last is None and closed_run > MAX_CLOSED_RUN_DAYS:
            raise CalendarError(f"calendar has no working time for ten years after {day}")
        day += timedelta(days=1)


def add_business_time(start: datetime, amount: timedelta, calendar: BusinessCalendar) -> datetime:
    """The instant ``amount`` of business time after ``start`` (see module notes)."""
    at = _aware(start, "start")
    if amount < timedelta(0):
        raise ValueError(f"amount must not be negative, got {amount}")
    if not amount:
        return at
    left = amount
    for opening, closing in _openings(calendar, at):
        begin = max(opening, at)
        if left <= closing - begin:
            return begin + left
        left -= closing - begin
    raise AssertionError("unreachable: _openings is unbounded")  # pragma: no cover


def business_time_between(a: datetime, b: datetime, calendar: BusinessCalendar) -> timedelta:
    """Business time in ``[a, b)``; negative (``-between(b, a)``) when ``b < a``."""
    a, b = _aware(a, "a"), _aware(b, "b")
    if b < a:
        return -business_time_between(b, a, calendar)
    total = timedelta(0)
    for opening, closing in _openings(calendar, a, until=b):
        if opening >= b:
            break
        total += min(closing, b) - max(opening, a)
    return total


def is_open(moment: datetime, calendar: BusinessCalendar) -> bool:
    at = _aware(moment, "moment")
    day = at.astimezone(calendar.zone).date()
    return any(opening <= at < closing for opening, closing in _day_openings(calendar, day))


def next_opening(moment: datetime, calendar: BusinessCalendar) -> datetime:
    """``moment`` itself (in UTC) when open, else the start of the next working interval."""
    at = _aware(moment, "moment")
    opening, _ = next(_openings(calendar, at))
    return max(opening, at)
