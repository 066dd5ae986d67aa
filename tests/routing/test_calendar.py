"""Business calendars: due times to the second across weekends, holidays,
midnight, lunch breaks, time zones and DST switches; and clear errors."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from routing.calendar import (
    BusinessCalendar,
    CalendarError,
    WorkingHours,
    add_business_time,
    business_time_between,
    is_open,
    next_opening,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SHANGHAI = ZoneInfo("Asia/Shanghai")
SYDNEY = ZoneInfo("Australia/Sydney")
SANTIAGO = ZoneInfo("America/Santiago")
WORKDAYS = ("mon", "tue", "wed", "thu", "fri")
EVERY_DAY = (*WORKDAYS, "sat", "sun")


def weekly(
    zone: str, ranges: list[str], days: tuple[str, ...] = WORKDAYS, **extra: object
) -> BusinessCalendar:
    return BusinessCalendar.from_config(
        {"time_zone": zone, "hours": dict.fromkeys(days, ranges), **extra}
    )


OFFICE = weekly(
    "Europe/Berlin",
    ["08:00-17:00"],
    holidays={"country": "DE", "subdivision": "BE"},
    closed=["2026-12-24"],
)
LUNCH = weekly("Europe/Berlin", ["08:00-12:00", "13:00-17:00"])
NIGHT_SHIFT = BusinessCalendar.from_config(
    {
        "time_zone": "America/New_York",
        "hours": {
            "mon": ["22:00-24:00"],
            "tue": ["00:00-06:00", "22:00-24:00"],
            "wed": ["00:00-06:00", "22:00-24:00"],
            "thu": ["00:00-06:00", "22:00-24:00"],
            "fri": ["00:00-06:00", "22:00-24:00"],
            "sat": ["00:00-06:00"],
        },
    }
)
SHANGHAI_OFFICE = weekly("Asia/Shanghai", ["09:00-18:00"])
SYDNEY_OFFICE = weekly("Australia/Sydney", ["09:00-17:00"])
BERLIN_ALWAYS = weekly("Europe/Berlin", ["00:00-24:00"], EVERY_DAY)
NEW_YORK_ALWAYS = weekly("America/New_York", ["00:00-24:00"], EVERY_DAY)
NEW_YORK_DAILY = weekly("America/New_York", ["08:00-17:00"], EVERY_DAY)
BERLIN_SUNDAY_NIGHT = weekly("Europe/Berlin", ["01:00-04:00"], ("sun",))
BERLIN_SUNDAY_GAP = weekly("Europe/Berlin", ["02:30-05:00"], ("sun",))
BERLIN_SUNDAY_REPEAT = weekly("Europe/Berlin", ["02:30-03:00"], ("sun",))
SANTIAGO_SUNDAY_NIGHT = weekly("America/Santiago", ["00:00-02:00"], ("sun",))


def at(zone: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=zone)  # type: ignore[misc]


def hours(value: float) -> timedelta:
    return timedelta(hours=value)


ADDING = [
    (
        "four hours from Friday 16:30 are due Monday 11:30",
        OFFICE, at(BERLIN, 2026, 1, 9, 16, 30), hours(4), at(BERLIN, 2026, 1, 12, 11, 30),
    ),
    (
        "a start on Saturday counts from Monday's opening",
        OFFICE, at(BERLIN, 2026, 1, 10, 10), hours(1), at(BERLIN, 2026, 1, 12, 9),
    ),
    (
        "a start before opening counts from the opening",
        OFFICE, at(BERLIN, 2026, 1, 12, 6), timedelta(minutes=30), at(BERLIN, 2026, 1, 12, 8, 30),
    ),
    (
        "an amount that fills the day is due at closing, not at the next opening",
        OFFICE, at(BERLIN, 2026, 1, 12, 8), hours(9), at(BERLIN, 2026, 1, 12, 17),
    ),
    (
        "zero is the start itself, even on a closed Saturday",
        OFFICE, at(BERLIN, 2026, 1, 10, 10), timedelta(0), at(BERLIN, 2026, 1, 10, 10),
    ),
    (
        "the custom closed Christmas Eve and Christmas Day are skipped",
        OFFICE, at(BERLIN, 2026, 12, 23, 16), hours(3), at(BERLIN, 2026, 12, 28, 10),
    ),
    (
        "New Year's Day 2027 is skipped",
        OFFICE, at(BERLIN, 2026, 12, 31, 16), hours(2), at(BERLIN, 2027, 1, 4, 9),
    ),
    (
        "the lunch break is skipped",
        LUNCH, at(BERLIN, 2026, 1, 12, 11, 30), hours(1), at(BERLIN, 2026, 1, 12, 13, 30),
    ),
    (
        "a start inside the lunch break counts from 13:00",
        LUNCH, at(BERLIN, 2026, 1, 12, 12, 15), hours(4.5), at(BERLIN, 2026, 1, 13, 8, 30),
    ),
    (
        "a night shift crosses midnight",
        NIGHT_SHIFT, at(NEW_YORK, 2026, 1, 12, 23), hours(3), at(NEW_YORK, 2026, 1, 13, 2),
    ),
    (
        "a night shift on Friday continues Saturday morning and then Monday night",
        NIGHT_SHIFT, at(NEW_YORK, 2026, 1, 16, 23, 30), hours(7), at(NEW_YORK, 2026, 1, 19, 22, 30),
    ),
    (
        "a UTC start is read in Shanghai's hours",
        SHANGHAI_OFFICE, at(UTC, 2026, 1, 9, 9), hours(2), at(UTC, 2026, 1, 12, 2),
    ),
    (
        "Sydney's autumn switch over the weekend keeps 09:00-17:00 wall hours",
        SYDNEY_OFFICE, at(SYDNEY, 2026, 4, 3, 16), hours(2), at(SYDNEY, 2026, 4, 6, 10),
    ),
    (
        "Sydney's spring switch over the weekend keeps 09:00-17:00 wall hours",
        SYDNEY_OFFICE, at(SYDNEY, 2026, 10, 2, 16), hours(2), at(SYDNEY, 2026, 10, 5, 10),
    ),
    (
        "24 hours over Berlin's spring-forward night end an hour later on the wall",
        BERLIN_ALWAYS, at(BERLIN, 2026, 3, 28, 12), hours(24), at(BERLIN, 2026, 3, 29, 13),
    ),
    (
        "24 hours over Berlin's fall-back night end an hour earlier on the wall",
        BERLIN_ALWAYS, at(BERLIN, 2026, 10, 24, 12), hours(24), at(BERLIN, 2026, 10, 25, 11),
    ),
    (
        "two real hours from 01:00 on Berlin's spring-forward night reach 04:00",
        BERLIN_SUNDAY_NIGHT, at(BERLIN, 2026, 3, 29, 1), hours(2), at(BERLIN, 2026, 3, 29, 4),
    ),
    (
        "24 hours over New York's spring-forward night end an hour later on the wall",
        NEW_YORK_ALWAYS, at(NEW_YORK, 2026, 3, 7, 12), hours(24), at(NEW_YORK, 2026, 3, 8, 13),
    ),
    (
        "24 hours over New York's fall-back night end an hour earlier on the wall",
        NEW_YORK_ALWAYS, at(NEW_YORK, 2026, 10, 31, 12), hours(24), at(NEW_YORK, 2026, 11, 1, 11),
    ),
    (
        "daytime hours on New York's switch day are still nine wall-clock hours",
        NEW_YORK_DAILY, at(NEW_YORK, 2026, 3, 7, 16), hours(2), at(NEW_YORK, 2026, 3, 8, 9),
    ),
    (
        "microseconds are kept",
        OFFICE,
        at(BERLIN, 2026, 1, 12, 10, 0, 0, 250_000),
        timedelta(seconds=1, microseconds=500_000),
        at(BERLIN, 2026, 1, 12, 10, 0, 1, 750_000),
    ),
    (
        "10,000 business hours are due to the second, years ahead",
        BERLIN_ALWAYS, at(UTC, 2026, 1, 1), hours(10_000), at(UTC, 2027, 2, 21, 16),
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("calendar", "start", "amount", "due"),
    [case[1:] for case in ADDING],
    ids=[case[0] for case in ADDING],
)
def test_due_times_to_the_second(
    calendar: BusinessCalendar, start: datetime, amount: timedelta, due: datetime
) -> None:
    result = add_business_time(start, amount, calendar)
    assert result == due
    assert result.tzinfo is UTC
    assert business_time_between(start, result, calendar) == amount


BETWEEN = [
    ("Friday afternoon to Monday morning is two hours", OFFICE,
     at(BERLIN, 2026, 1, 9, 16), at(BERLIN, 2026, 1, 12, 9), hours(2)),
    ("backwards the same span is minus two hours", OFFICE,
     at(BERLIN, 2026, 1, 12, 9), at(BERLIN, 2026, 1, 9, 16), hours(-2)),
    ("the Christmas week has three working days", OFFICE,
     at(BERLIN, 2026, 12, 21, 0), at(BERLIN, 2026, 12, 28, 0), hours(27)),
    ("a day with a lunch break is eight hours", LUNCH,
     at(BERLIN, 2026, 1, 12, 0), at(BERLIN, 2026, 1, 13, 0), hours(8)),
    ("Berlin's spring-forward Sunday is 23 hours", BERLIN_ALWAYS,
     at(BERLIN, 2026, 3, 29), at(BERLIN, 2026, 3, 30), hours(23)),
    ("Berlin's fall-back Sunday is 25 hours", BERLIN_ALWAYS,
     at(BERLIN, 2026, 10, 25), at(BERLIN, 2026, 10, 26), hours(25)),
    ("01:00-04:00 over spring-forward is two real hours", BERLIN_SUNDAY_NIGHT,
     at(BERLIN, 2026, 3, 28), at(BERLIN, 2026, 3, 30), hours(2)),
    ("01:00-04:00 over fall-back is four real hours", BERLIN_SUNDAY_NIGHT,
     at(BERLIN, 2026, 10, 24), at(BERLIN, 2026, 10, 26), hours(4)),
    ("an opening inside the skipped hour opens at the jump, 03:00", BERLIN_SUNDAY_GAP,
     at(BERLIN, 2026, 3, 28), at(BERLIN, 2026, 3, 30), hours(2)),
    ("an opening inside the repeated hour opens at its first occurrence", BERLIN_SUNDAY_REPEAT,
     at(BERLIN, 2026, 10, 24), at(BERLIN, 2026, 10, 26), hours(1.5)),
    ("New York's spring-forward Sunday is 23 hours", NEW_YORK_ALWAYS,
     at(NEW_YORK, 2026, 3, 8), at(NEW_YORK, 2026, 3, 9), hours(23)),
    ("New York's fall-back Sunday is 25 hours", NEW_YORK_ALWAYS,
     at(NEW_YORK, 2026, 11, 1), at(NEW_YORK, 2026, 11, 2), hours(25)),
    ("a night shift from Monday 22:00 to Tuesday 06:00 is eight hours", NIGHT_SHIFT,
     at(NEW_YORK, 2026, 1, 12, 12), at(NEW_YORK, 2026, 1, 13, 12), hours(8)),
    ("Santiago's Sunday 00:00-02:00 is one hour when midnight is skipped",
     SANTIAGO_SUNDAY_NIGHT, at(SANTIAGO, 2026, 9, 5), at(SANTIAGO, 2026, 9, 7), hours(1)),
    ("a span inside closed time is zero", OFFICE,
     at(BERLIN, 2026, 1, 10, 9), at(BERLIN, 2026, 1, 11, 9), hours(0)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("calendar", "a", "b", "expected"),
    [case[1:] for case in BETWEEN],
    ids=[case[0] for case in BETWEEN],
)
def test_business_time_between(
    calendar: BusinessCalendar, a: datetime, b: datetime, expected: timedelta
) -> None:
    assert business_time_between(a, b, calendar) == expected


OPENINGS = [
    ("open at the opening minute", OFFICE, at(BERLIN, 2026, 1, 12, 8), True,
     at(BERLIN, 2026, 1, 12, 8)),
    ("closed at the closing minute; next opening is the next morning", OFFICE,
     at(BERLIN, 2026, 1, 12, 17), False, at(BERLIN, 2026, 1, 13, 8)),
    ("closed at lunch; reopens at 13:00", LUNCH, at(BERLIN, 2026, 1, 12, 12, 30), False,
     at(BERLIN, 2026, 1, 12, 13)),
    ("closed on the custom closed day", OFFICE, at(BERLIN, 2026, 12, 24, 10), False,
     at(BERLIN, 2026, 12, 28, 8)),
    ("closed on Friday evening; next opening is Monday", OFFICE,
     at(BERLIN, 2026, 1, 9, 18), False, at(BERLIN, 2026, 1, 12, 8)),
    ("open just after midnight in a night shift", NIGHT_SHIFT,
     at(NEW_YORK, 2026, 1, 13, 0, 0, 1), True, at(NEW_YORK, 2026, 1, 13, 0, 0, 1)),
    ("a skipped midnight in Santiago opens at 01:00", SANTIAGO_SUNDAY_NIGHT,
     at(SANTIAGO, 2026, 9, 5, 12), False, at(SANTIAGO, 2026, 9, 6, 1)),
    ("closed inside the skipped hour; opens at the jump", BERLIN_SUNDAY_GAP,
     at(UTC, 2026, 3, 29, 0, 30), False, at(BERLIN, 2026, 3, 29, 3)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("calendar", "moment", "open_now", "opening"),
    [case[1:] for case in OPENINGS],
    ids=[case[0] for case in OPENINGS],
)
def test_is_open_and_next_opening(
    calendar: BusinessCalendar, moment: datetime, open_now: bool, opening: datetime
) -> None:
    assert is_open(moment, calendar) is open_now
    assert next_opening(moment, calendar) == opening


def test_a_calendar_reads_from_toml_with_native_dates() -> None:
    config = tomllib.loads(
        """
        time_zone = "Europe/Berlin"
        closed = [2026-12-24, "2026-12-31"]
        holidays = { country = "DE", subdivision = "BE" }
        [hours]
        mon = ["13:00-17:00", "08:00-12:00"]
        sat = ["10:00-24:00"]
        """
    )
    calendar = BusinessCalendar.from_config(config)
    assert calendar.hours[0] == (
        WorkingHours(time(8), time(12)),
        WorkingHours(time(13), time(17)),
    )
    assert calendar.hours[5] == (WorkingHours(time(10), time(0)),)
    assert calendar.closed == {date(2026, 12, 24), date(2026, 12, 31)}
    assert calendar.is_closed_day(date(2026, 12, 25))
    assert not calendar.is_closed_day(date(2026, 12, 23))
    assert BusinessCalendar.from_config(calendar.to_config()) == calendar


def test_the_holiday_years_are_looked_up_as_needed() -> None:
    assert OFFICE.is_closed_day(date(2031, 12, 25))
    assert OFFICE.is_closed_day(date(2026, 4, 3))  # Good Friday
    assert not OFFICE.is_closed_day(date(2026, 4, 2))


GOOD = {"time_zone": "Europe/Berlin", "hours": {"mon": ["08:00-17:00"]}}

BAD_CONFIGS = [
    ("a time zone that does not exist", {**GOOD, "time_zone": "Europe/Atlantis"}, "time_zone",
     "unknown time zone"),
    ("a missing time zone", {"hours": GOOD["hours"]}, "time_zone", "required"),
    ("an empty week", {**GOOD, "hours": {}}, "hours", "calendar has no working hours"),
    ("a week of empty days", {**GOOD, "hours": {"mon": [], "tue": []}}, "hours",
     "calendar has no working hours"),
    ("overlapping hours", {**GOOD, "hours": {"tue": ["08:00-12:00", "11:30-17:00"]}},
     "hours.tue", "overlaps"),
    ("an interval that ends before it starts", {**GOOD, "hours": {"mon": ["17:00-08:00"]}},
     "hours.mon[0]", "ends before it starts"),
    ("an empty interval", {**GOOD, "hours": {"mon": ["08:00-08:00"]}}, "hours.mon[0]",
     "ends before it starts"),
    ("a malformed range", {**GOOD, "hours": {"mon": ["8 to 5"]}}, "hours.mon[0]",
     "not a time range"),
    ("an hour past 24", {**GOOD, "hours": {"mon": ["08:00-25:00"]}}, "hours.mon[0]",
     "not a time of day"),
    ("an unknown weekday", {**GOOD, "hours": {"monday": ["08:00-17:00"]}}, "hours.monday",
     "unknown weekday"),
    ("hours that are not a list", {**GOOD, "hours": {"mon": "08:00-17:00"}}, "hours.mon",
     "a list of ranges"),
    ("an unknown holiday country", {**GOOD, "holidays": {"country": "XX"}}, "holidays",
     "unknown holiday calendar"),
    ("an unknown subdivision", {**GOOD, "holidays": {"country": "DE", "subdivision": "ZZ"}},
     "holidays", "unknown holiday calendar"),
    ("a subdivision without a country", {**GOOD, "holidays": {"subdivision": "BE"}},
     "holidays.country", "required"),
    ("a closed day that is not a date", {**GOOD, "closed": ["2026-02-30"]}, "closed[0]",
     "not a date"),
    ("a misspelt key", {**GOOD, "timezone": "UTC"}, "timezone", "unknown key"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("config", "field", "words"),
    [case[1:] for case in BAD_CONFIGS],
    ids=[case[0] for case in BAD_CONFIGS],
)
def test_bad_calendar_config_is_a_clear_error_naming_the_field(
    config: dict[str, object], field: str, words: str
) -> None:
    with pytest.raises(CalendarError, match=words) as raised:
        BusinessCalendar.from_config(config)
    assert field in raised.value.fields
    assert str(raised.value).startswith(f"{field}: ")


def test_a_week_must_have_seven_days() -> None:
    with pytest.raises(CalendarError, match="7 weekdays"):
        BusinessCalendar(time_zone="UTC", hours=((WorkingHours(time(8), time(9)),),))


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="time-zone aware"):
        add_business_time(datetime(2026, 1, 12, 9), hours(1), OFFICE)
    with pytest.raises(ValueError, match="time-zone aware"):
        business_time_between(at(UTC, 2026, 1, 12), datetime(2026, 1, 13), OFFICE)


def test_a_negative_amount_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        add_business_time(at(UTC, 2026, 1, 12), hours(-1), OFFICE)


def test_a_calendar_closed_for_a_decade_says_so() -> None:
    start = date(2026, 1, 1)
    closed = [(start + timedelta(days=n)).isoformat() for n in range(3700)]
    calendar = BusinessCalendar.from_config({**GOOD, "closed": closed})
    with pytest.raises(CalendarError, match="no working time"):
        add_business_time(at(UTC, 2026, 1, 1), hours(1), calendar)
    assert business_time_between(at(UTC, 2026, 1, 1), at(UTC, 2040, 1, 1), calendar) > hours(0)
