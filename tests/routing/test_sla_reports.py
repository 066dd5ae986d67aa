"""SLA reports: compliance counts each clock once, in the period of its breach or
of its unbreached stop; times are the business time the clocks ran."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from desk.clock import FakeClock
from routing.sla_keeper import SlaBreached, SlaWarned
from routing.sla_reports import (
    ClockRecord,
    ReportDimension,
    build_report,
    compliance_percent,
    median,
    outcome_in,
    percentile,
    read_report,
    report_window_problems,
)
from tests.conftest import Database
from tests.routing.sla_support import LEVELS, World, berlin, setup

T0 = datetime(2026, 3, 9, 9, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
ROUND_THE_CLOCK: dict[str, Any] = {
    "name": "Round the clock",
    "tiers": ["standard", "gold", "platinum"],
    "priorities": ["low", "normal", "high", "urgent"],
    "calendar": "always",
    "targets": {
        "first_response": {"target": "2h", "warn_before": "30m"},
        "resolution": {"target": "8h", "warn_before": "1h"},
    },
}


EXAMPLE = "2026-03-01T00:00:00Z"


def record(clock: str = "first_response", **fields: Any) -> ClockRecord:
    values: dict[str, Any] = {
        "ticket_id": 1,
        "clock": clock,
        "stopped_at": None,
        "breached_at": None,
        "business": timedelta(0),
        **fields,
    }
    return ClockRecord(**values)


# --- the maths ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("met", "breached", "percent"),
    [
        (3, 1, 75.0),
        (1, 1, 50.0),  # a tie is half
        (2, 0, 100.0),
        (0, 2, 0.0),
        (1, 2, 33.33),
        (2, 1, 66.67),
        (0, 0, None),  # nothing measured: no percentage, not 0 %
    ],
)
def test_compliance_is_met_over_met_and_breached_in_percent(
    met: int, breached: int, percent: float | None
) -> None:
    assert compliance_percent(met, breached) == percent


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], None),
        ([5.0], 5.0),
        ([3.0, 1.0, 2.0], 2.0),  # odd count: the middle one
        ([4.0, 1.0, 3.0, 2.0], 2.5),  # even count: the mean of the middle two
        ([2.0, 2.0, 2.0, 9.0], 2.0),  # ties
    ],
)
def test_the_median_is_the_middle_value_or_the_mean_of_the_middle_two(
    values: list[float], expected: float | None
) -> None:
    assert median(values) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], None),
        ([7.0], 7.0),
        ([float(n) for n in range(1, 11)], 9.1),  # even count: between the 9th and 10th
        ([float(n) for n in range(1, 12)], 10.0),  # odd count: lands on the 10th
        ([5.0, 5.0, 5.0, 5.0], 5.0),  # ties
        ([100.0, 1.0], 90.1),
    ],
)
def test_p90_interpolates_linearly_between_ranks(
    values: list[float], expected: float | None
) -> None:
    result = percentile(values, 0.9)
    assert result == (None if expected is None else pytest.approx(expected))


START, END = T0, T0 + DAY


@pytest.mark.parametrize(
    ("fields", "outcome"),
    [
        ({"stopped_at": T0 + HOUR}, "met"),
        ({"stopped_at": START}, "met"),  # the start is inside
        ({"stopped_at": END}, None),  # the end is not
        ({"breached_at": T0 + HOUR}, "breached"),  # still running: counted at its breach
        ({"breached_at": T0 + HOUR, "stopped_at": T0 + 2 * HOUR}, "breached"),
        ({"breached_at": T0 - HOUR, "stopped_at": T0 + HOUR}, None),  # the earlier period's
        ({}, None),  # running, not breached: not decided yet
    ],
)
def test_a_clock_counts_in_the_period_of_its_breach_or_of_its_unbreached_stop(
    fields: dict[str, Any], outcome: str | None
) -> None:
    assert outcome_in(record(**fields), START, END) == outcome


def test_a_group_without_a_clock_shows_no_percentage_and_no_times() -> None:
    records = [
        record(team_id=1, team_name="Billing", stopped_at=T0, business=HOUR),
        record("resolution", team_id=2, team_name="Support", stopped_at=T0, business=HOUR),
    ]
    report = build_report(records, by=ReportDimension.TEAM, start=START, end=END)
    billing, _support = report.groups
    assert [c.clock for c in billing.clocks] == ["first_response", "resolution"]
    resolution = billing.clocks[1]
    assert (resolution.denominator, resolution.compliance_percent) == (0, None)
    assert (resolution.median_seconds, resolution.p90_seconds) == (None, None)


def test_groups_are_listed_by_name_with_tickets_without_a_team_last() -> None:
    records = [
        record(team_id=None, stopped_at=T0),
        record(team_id=7, team_name="Support", stopped_at=T0),
        record(team_id=3, team_name="Billing", stopped_at=T0),
    ]
    report = build_report(records, by=ReportDimension.TEAM, start=START, end=END)
    assert [(g.key, g.label) for g in report.groups] == [
        ("3", "Billing"),
        ("7", "Support"),
        (None, "(no team)"),
    ]


def test_grouped_by_clock_each_group_is_its_own_clock_in_clock_order() -> None:
    records = [
        record("resolution", stopped_at=T0, business=3 * HOUR),
        record("first_response", breached_at=T0),
        record("first_response", stopped_at=T0, business=HOUR),
    ]
    report = build_report(records, by=ReportDimension.CLOCK, start=START, end=END)
    assert [(g.key, [c.clock for c in g.clocks]) for g in report.groups] == [
        ("first_response", ["first_response"]),
        ("resolution", ["resolution"]),
    ]
    first = report.groups[0].clocks[0]
    assert (first.met, first.breached, first.denominator) == (1, 1, 2)


def test_times_are_of_the_clocks_that_stopped_in_the_period_breached_or_not() -> None:
    records = [
        record(stopped_at=T0, business=HOUR),
        record(stopped_at=T0, breached_at=T0 - HOUR, business=3 * HOUR),  # earlier breach
        record(breached_at=T0 + HOUR),  # breached, still running: no time yet
    ]
    (summary,) = build_report(records, by=ReportDimension.CLOCK, start=START, end=END).total.clocks
    assert (summary.met, summary.breached, summary.completed) == (1, 1, 2)
    assert summary.median_seconds == 2 * 3600


@pytest.mark.parametrize(
    ("start", "end", "problems"),
    [
        (T0, T0 + DAY, {}),
        (T0, T0 + timedelta(days=366), {}),
        (T0, T0, {"to": "must be after from"}),
        (T0, T0 - DAY, {"to": "must be after from"}),
        (T0, T0 + timedelta(days=366, seconds=1), {"to": "at most 366 days after from"}),
        (
            T0.replace(tzinfo=None),
            T0 + DAY,
            {"from": "needs a time zone, like 2026-03-01T00:00:00Z"},
        ),
    ],
)
def test_a_report_period_runs_forward_for_at_most_366_days(
    start: datetime, end: datetime, problems: dict[str, str]
) -> None:
    assert report_window_problems(start, end) == problems


# --- over the database, with the real keeper and watcher ---------------------------------


async def test_the_report_counts_what_the_keeper_met_and_breached_by_tier(
    database: Database,
) -> None:
    clock = FakeClock(T0)
    world = await World.create(database, clock, setup([ROUND_THE_CLOCK], LEVELS))
    watcher = world.watcher()
    quick = await world.open(customer_id=world.ids["gold"])
    slow = await world.open()
    clock.set(T0 + timedelta(minutes=30))
    await world.reply(quick)
    clock.set(T0 + timedelta(minutes=100))
    await watcher.fire_due()
    clock.set(T0 + timedelta(minutes=130))
    await watcher.fire_due()
    assert [e.ticket_id for e in world.of(SlaWarned) if e.clock == "first_response"] == [slow]
    assert [e.ticket_id for e in world.of(SlaBreached)] == [slow]
    await world.reply(slow)
    clock.set(T0 + 3 * HOUR)
    await world.change(quick, status="solved")
    await world.change(slow, status="solved")

    async with database.sessions() as session:
        report = await read_report(session, start=T0, end=T0 + DAY, by=ReportDimension.TIER)
    table = {
        (group.key, summary.clock): (
            summary.met,
            summary.breached,
            summary.compliance_percent,
            summary.median_seconds,
        )
        for group in report.groups
        for summary in group.clocks
    }
    assert table == {
        ("gold", "first_response"): (1, 0, 100.0, 1800.0),
        ("gold", "resolution"): (1, 0, 100.0, 10800.0),
        ("standard", "first_response"): (0, 1, 0.0, 7800.0),
        ("standard", "resolution"): (1, 0, 100.0, 10800.0),
    }
    first, _resolution = report.total.clocks
    assert (first.denominator, first.compliance_percent) == (2, 50.0)
    assert first.p90_seconds == pytest.approx(1800 + 0.9 * 6000)


async def test_an_answer_exactly_at_the_due_time_meets_the_target(database: Database) -> None:
    clock = FakeClock(T0)
    world = await World.create(database, clock, setup([ROUND_THE_CLOCK], LEVELS))
    ticket = await world.open()
    clock.set(T0 + 2 * HOUR)
    await world.reply(ticket)
    async with database.sessions() as session:
        report = await read_report(session, start=T0, end=T0 + DAY, by=ReportDimension.CLOCK)
    (first,) = report.total.clocks
    assert (first.met, first.breached, first.median_seconds) == (1, 0, 7200.0)


async def test_a_clock_breached_in_one_period_and_answered_in_the_next_counts_once(
    database: Database,
) -> None:
    clock = FakeClock(T0)
    world = await World.create(database, clock, setup([ROUND_THE_CLOCK], LEVELS))
    ticket = await world.open()
    clock.set(T0 + DAY + HOUR)
    await world.reply(ticket)  # the keeper records the breach (due T0 + 2h) on the way
    async with database.sessions() as session:
        first_day = await read_report(session, start=T0, end=T0 + DAY, by=ReportDimension.CLOCK)
        next_day = await read_report(
            session, start=T0 + DAY, end=T0 + 2 * DAY, by=ReportDimension.CLOCK
        )
    breached_day = next(c for c in first_day.total.clocks if c.clock == "first_response")
    assert (breached_day.met, breached_day.breached, breached_day.completed) == (0, 1, 0)
    answered_day = next(c for c in next_day.total.clocks if c.clock == "first_response")
    assert (answered_day.met, answered_day.breached, answered_day.completed) == (0, 0, 1)
    assert answered_day.compliance_percent is None


async def test_times_are_business_time_on_the_policys_calendar(database: Database) -> None:
    clock = FakeClock(berlin(2026, 3, 13, 17))  # Friday, an hour before the office closes
    world = await World.create(database, clock)  # the office calendar, 08:00-18:00
    ticket = await world.open()
    clock.set(berlin(2026, 3, 16, 9))  # Monday, an hour after it opens
    await world.reply(ticket)
    async with database.sessions() as session:
        report = await read_report(
            session,
            start=berlin(2026, 3, 9),
            end=berlin(2026, 3, 23),
            by=ReportDimension.AGENT,
        )
    assert report.time_basis == "business"
    (group,) = report.groups
    assert (group.key, group.label) == (str(world.ids["alice"]), "Alice")
    first = next(c for c in group.clocks if c.clock == "first_response")
    assert first.median_seconds == 2 * 3600  # not the 64 hours on the wall
