"""Escalation levels from config, and the pure timer schedule of a clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.calendar import BusinessCalendar
from routing.escalation import (
    Anchor,
    EscalationError,
    EscalationPolicy,
    PlannedTimer,
    TimerKind,
    Who,
    timer_schedule,
)
from routing.sla import ClockKind, ClockState, SlaTarget, pause, record_breach, resume, start, stop
from tests.routing.sla_support import OFFICE, berlin

CALENDAR = BusinessCalendar.from_config(OFFICE)
RESOLUTION = SlaTarget(
    clock=ClockKind.RESOLUTION, target=timedelta(hours=10), warn_before=timedelta(hours=1)
)
LEVELS = EscalationPolicy.from_config(
    {
        "levels": [
            {"who": "assignee", "past": "warning", "after": "30m"},
            {"who": "team_lead", "past": "breach", "email": True},
            {"who": "supervisors", "past": "breach", "after": "4h", "clocks": ["resolution"]},
        ]
    }
)
W, B, E = TimerKind.WARNING, TimerKind.BREACH, TimerKind.ESCALATION


def test_levels_are_numbered_in_order_with_breach_and_no_delay_by_default() -> None:
    policy = EscalationPolicy.from_config({"levels": [{"who": "team_lead"}]})
    (level,) = policy.levels
    assert (level.level, level.who, level.past, level.after, level.email, level.clocks) == (
        1,
        Who.TEAM_LEAD,
        Anchor.BREACH,
        timedelta(0),
        False,
        None,
    )
    assert [level.level for level in LEVELS.levels] == [1, 2, 3]
    assert LEVELS.level(2) is LEVELS.levels[1] and LEVELS.level(4) is None
    assert EscalationPolicy.from_config({}).levels == ()


BAD_LEVELS = [
    ("an unknown person", {"who": "ceo"}, "levels[0].who", "unknown 'ceo'"),
    ("no person", {"past": "breach"}, "levels[0].who", "required"),
    ("an unknown anchor", {"who": "assignee", "past": "due"}, "levels[0].past", "unknown"),
    ("a negative delay", {"who": "assignee", "after": "-1h"}, "levels[0].after", "positive"),
    ("a delay in words", {"who": "assignee", "after": "soon"}, "levels[0].after", "duration"),
    ("e-mail as text", {"who": "assignee", "email": "yes"}, "levels[0].email", "true or false"),
    ("an unknown clock", {"who": "assignee", "clocks": ["lunch"]}, "levels[0].clocks",
     "unknown 'lunch'"),
    ("no clocks", {"who": "assignee", "clocks": []}, "levels[0].clocks", "non-empty"),
    ("a misspelt key", {"who": "assignee", "afer": "1h"}, "levels[0].afer", "unknown key"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("level", "field", "words"),
    [case[1:] for case in BAD_LEVELS],
    ids=[case[0] for case in BAD_LEVELS],
)
def test_a_bad_level_is_a_clear_error_naming_the_field(
    level: dict[str, object], field: str, words: str
) -> None:
    with pytest.raises(EscalationError, match=words) as raised:
        EscalationPolicy.from_config({"levels": [level]})
    assert field in raised.value.fields


def test_levels_must_be_a_list_and_nothing_else_is_known() -> None:
    with pytest.raises(EscalationError, match="levels: a list"):
        EscalationPolicy.from_config({"levels": "assignee"})
    with pytest.raises(EscalationError, match="unknown key"):
        EscalationPolicy.from_config({"level": []})


def test_a_running_clock_gets_warning_breach_and_levels_in_firing_order() -> None:
    # Started Friday 16:00: 2h on Friday, Monday 08:00 onwards.
    state = start(ClockState(), berlin(2026, 3, 6, 16))
    assert timer_schedule(state, RESOLUTION, LEVELS, calendar=CALENDAR) == (
        PlannedTimer(W, 0, berlin(2026, 3, 9, 15)),
        PlannedTimer(E, 1, berlin(2026, 3, 9, 15, 30)),
        PlannedTimer(B, 0, berlin(2026, 3, 9, 16)),
        PlannedTimer(E, 2, berlin(2026, 3, 9, 16)),
        # 4h past breach: 2h on Monday, Tuesday 08:00 + 2h.
        PlannedTimer(E, 3, berlin(2026, 3, 10, 10)),
    )


def test_only_a_running_clock_has_timers() -> None:
    running = start(ClockState(), berlin(2026, 3, 9, 8))
    paused = pause(running, berlin(2026, 3, 9, 9), calendar=CALENDAR)
    stopped = stop(running, berlin(2026, 3, 9, 9), calendar=CALENDAR)
    for state in (ClockState(), paused, stopped):
        assert timer_schedule(state, RESOLUTION, LEVELS, calendar=CALENDAR) == ()


def test_paused_business_time_pushes_every_timer_back() -> None:
    running = start(ClockState(), berlin(2026, 3, 9, 8))
    paused = pause(running, berlin(2026, 3, 9, 10), calendar=CALENDAR)
    resumed = resume(paused, berlin(2026, 3, 9, 13), calendar=CALENDAR)
    before = timer_schedule(running, RESOLUTION, LEVELS, calendar=CALENDAR)
    after = timer_schedule(resumed, RESOLUTION, LEVELS, calendar=CALENDAR)
    assert [timer.key for timer in before] == [timer.key for timer in after]
    assert [timer.due_at for timer in before] == [
        berlin(2026, 3, 9, 17),
        berlin(2026, 3, 9, 17, 30),
        berlin(2026, 3, 9, 18),
        berlin(2026, 3, 9, 18),
        berlin(2026, 3, 10, 12),
    ]
    # Paused 10:00-13:00 on Monday: each moment is 3 business hours later.
    assert [timer.due_at for timer in after] == [
        berlin(2026, 3, 10, 10),
        berlin(2026, 3, 10, 10, 30),
        berlin(2026, 3, 10, 11),
        berlin(2026, 3, 10, 11),
        berlin(2026, 3, 10, 15),
    ]


def test_a_recorded_breach_is_not_scheduled_again_and_levels_skip_other_clocks() -> None:
    state = start(ClockState(), berlin(2026, 3, 9, 8))
    breached = record_breach(state, berlin(2026, 3, 10, 9), target=RESOLUTION, calendar=CALENDAR)
    assert breached.breached_at == berlin(2026, 3, 9, 18)
    keys = [t.key for t in timer_schedule(breached, RESOLUTION, LEVELS, calendar=CALENDAR)]
    assert keys == [(W, 0), (E, 1), (E, 2), (E, 3)]
    first = SlaTarget(clock=ClockKind.FIRST_RESPONSE, target=timedelta(hours=2))
    keys = [t.key for t in timer_schedule(state, first, LEVELS, calendar=CALENDAR)]
    # No warning on this target, so no level anchored on it; level 3 is for resolution.
    assert keys == [(B, 0), (E, 2)]


MOMENTS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=40, deadline=None)
@given(started=MOMENTS, target_minutes=st.integers(1, 6000), after_minutes=st.integers(0, 900))
def test_timers_come_in_order_and_never_before_their_anchor(
    started: datetime, target_minutes: int, after_minutes: int
) -> None:
    target = SlaTarget(
        clock=ClockKind.RESOLUTION, target=timedelta(minutes=target_minutes), warn_before=None
    )
    levels = EscalationPolicy.from_config(
        {"levels": [{"who": "assignee", "after": f"{after_minutes}m"}]}
    )
    timers = timer_schedule(start(ClockState(), started), target, levels, calendar=CALENDAR)
    (breach, level) = timers
    assert breach.kind is B and level.kind is E
    assert started < breach.due_at <= level.due_at
