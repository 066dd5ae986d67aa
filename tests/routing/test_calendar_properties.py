"""Properties of business-time arithmetic over random calendars: random hours
per weekday (midnight-touching, several per day), zones with and without DST
(including switches at midnight and 30-minute switches), public and custom
holidays; starts drawn anywhere and close to the zone's DST switches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from routing.calendar import (
    WEEKDAYS,
    BusinessCalendar,
    add_business_time,
    business_time_between,
    is_open,
    next_opening,
)

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Shanghai",
    "Australia/Sydney",
    "America/Santiago",  # switches at midnight
    "Australia/Lord_Howe",  # 30-minute switches
    "Asia/Kolkata",
]
HOLIDAYS = [None, {"country": "DE", "subdivision": "BE"}, {"country": "US"}, {"country": "CN"}]
FIRST, LAST = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 12, 31, tzinfo=UTC)
EXAMPLES = settings(max_examples=80, deadline=None)


@cache
def switches(zone_name: str) -> tuple[datetime, ...]:
    """The zone's UTC-offset changes in 2026-2027, exactly."""
    zone, found = ZoneInfo(zone_name), []
    day = FIRST - timedelta(days=1)
    while day < LAST + timedelta(days=1):
        low, high = day, day + timedelta(days=1)
        if low.astimezone(zone).utcoffset() != high.astimezone(zone).utcoffset():
            while high - low > timedelta(microseconds=1):
                middle = low + (high - low) / 2
                same = middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset()
                low, high = (middle, high) if same else (low, middle)
            found.append(high)
        day += timedelta(days=1)
    return tuple(found)


def clock_text(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


day_hours = st.lists(st.integers(0, 1440), max_size=6, unique=True).map(
    lambda cuts: sorted(cuts)[: len(cuts) // 2 * 2]
)


@dataclass(frozen=True)
class Case:
    calendar: BusinessCalendar
    week_total: timedelta  # nominal working time of one week, for sizing amounts

    def near_switch_or_anywhere(self) -> st.SearchStrategy[datetime]:
        anywhere = st.datetimes(
            min_value=datetime(2026, 1, 1),
            max_value=datetime(2027, 12, 1),
            timezones=st.just(UTC),
        )
        near = switches(self.calendar.time_zone)
        if not near:
            return anywhere
        around = st.timedeltas(min_value=-timedelta(hours=30), max_value=timedelta(hours=30))
        return anywhere | st.builds(lambda t, d: t + d, st.sampled_from(near), around)

    def amounts(self) -> st.SearchStrategy[timedelta]:
        return st.timedeltas(min_value=timedelta(0), max_value=self.week_total * 3)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    week = draw(st.lists(day_hours, min_size=7, max_size=7).filter(any))
    hours = {
        name: [
            f"{clock_text(a)}-{clock_text(b)}" for a, b in zip(cuts[::2], cuts[1::2], strict=True)
        ]
        for name, cuts in zip(WEEKDAYS, week, strict=True)
    }
    closed = draw(st.lists(st.dates(date(2026, 1, 1), date(2027, 12, 31)), max_size=40))
    config: dict[str, object] = {
        "time_zone": draw(st.sampled_from(ZONES)),
        "hours": hours,
        "closed": [day.isoformat() for day in closed],
    }
    holidays = draw(st.sampled_from(HOLIDAYS))
    if holidays is not None:
        config["holidays"] = holidays
    total = sum(b - a for cuts in week for a, b in zip(cuts[::2], cuts[1::2], strict=True))
    return Case(BusinessCalendar.from_config(config), timedelta(minutes=total))


@EXAMPLES
@given(data=st.data())
def test_adding_then_measuring_gives_the_amount_back_and_lands_in_working_time(
    data: st.DataObject,
) -> None:
    case = data.draw(cases())
    start = data.draw(case.near_switch_or_anywhere())
    amount = data.draw(case.amounts())
    due = add_business_time(start, amount, case.calendar)
    assert business_time_between(start, due, case.calendar) == amount
    assert business_time_between(next_opening(start, case.calendar), due, case.calendar) == amount
    if not amount:
        assert due == start
    else:
        assert due >= next_opening(start, case.calendar)
        assert is_open(due - timedelta(microseconds=1), case.calendar)


@EXAMPLES
@given(data=st.data())
def test_adding_is_monotone_and_additive(data: st.DataObject) -> None:
    case = data.draw(cases())
    start = data.draw(case.near_switch_or_anywhere())
    a, b = data.draw(case.amounts()), data.draw(case.amounts())
    first = add_business_time(start, a, case.calendar)
    both = add_business_time(start, a + b, case.calendar)
    assert first <= both
    assert add_business_time(first, b, case.calendar) == both


@EXAMPLES
@given(data=st.data())
def test_elapsed_over_a_split_is_the_sum_of_the_parts(data: st.DataObject) -> None:
    case = data.draw(cases())
    x, y, z = (data.draw(case.near_switch_or_anywhere()) for _ in range(3))
    whole = business_time_between(x, z, case.calendar)
    assert whole == business_time_between(x, y, case.calendar) + business_time_between(
        y, z, case.calendar
    )
    assert business_time_between(z, x, case.calendar) == -whole
    assert abs(whole) <= abs(z - x)


@EXAMPLES
@given(data=st.data())
def test_the_next_opening_is_open_and_no_business_time_away(data: st.DataObject) -> None:
    case = data.draw(cases())
    moment = data.draw(case.near_switch_or_anywhere())
    opening = next_opening(moment, case.calendar)
    assert opening >= moment
    assert is_open(opening, case.calendar)
    assert business_time_between(moment, opening, case.calendar) == timedelta(0)
    assert (opening == moment) is is_open(moment, case.calendar)


def open_by_the_wall_clock(moment: datetime, calendar: BusinessCalendar) -> bool:
    """An independent reading: the local wall time falls inside that weekday's hours."""
    local = moment.astimezone(calendar.zone)
    if calendar.is_closed_day(local.date()):
        return False
    wall = local.time().replace(tzinfo=None)
    return any(
        hours.start <= wall and (hours.end == time(0) or wall < hours.end)
        for hours in calendar.hours[local.weekday()]
    )


@EXAMPLES
@given(data=st.data())
def test_away_from_dst_switches_openness_follows_the_wall_clock(data: st.DataObject) -> None:
    case = data.draw(cases())
    moment = data.draw(case.near_switch_or_anywhere())
    near = switches(case.calendar.time_zone)
    if any(abs(moment - switch) < timedelta(days=1) for switch in near):
        return
    assert is_open(moment, case.calendar) is open_by_the_wall_clock(moment, case.calendar)
