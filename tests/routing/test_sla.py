"""SLA policies and clocks: validation, policy choice, pure clock transitions,
and one ticket's life across a weekend and the Christmas holidays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desk.models import TicketStatus
from routing.calendar import BusinessCalendar, CalendarError, business_time_between
from routing.sla import (
    ClockError,
    ClockKind,
    ClockPhase,
    ClockState,
    PercentOfTarget,
    SlaError,
    SlaPolicy,
    SlaTarget,
    breached,
    choose_policy,
    clocks_after_agent_reply,
    clocks_after_customer_message,
    clocks_after_status_change,
    due_at,
    elapsed,
    parse_duration,
    pause,
    record_breach,
    remaining,
    resume,
    start,
    stop,
    warn_at,
)

BERLIN = ZoneInfo("Europe/Berlin")
OFFICE_CONFIG: dict[str, object] = {
    "time_zone": "Europe/Berlin",
    "hours": {day: ["08:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": {"country": "DE", "subdivision": "BE"},
    "closed": ["2026-12-24"],
}
OFFICE = BusinessCalendar.from_config(OFFICE_CONFIG)
FIRST, NEXT, RESOLUTION = ClockKind.FIRST_RESPONSE, ClockKind.NEXT_RESPONSE, ClockKind.RESOLUTION


def berlin(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=BERLIN)  # type: ignore[misc]


def hours(value: float) -> timedelta:
    return timedelta(hours=value)


def policy(name: str = "Standard", **overrides: object) -> SlaPolicy:
    config: dict[str, object] = {
        "name": name,
        "tiers": ["standard", "gold"],
        "priorities": ["normal", "high"],
        "calendar": OFFICE_CONFIG,
        "targets": {
            "first_response": {"target": "4h", "warn_before": "25%"},
            "next_response": {"target": "2h"},
            "resolution": {"target": "16h", "warn_before": "2h"},
        },
    }
    return SlaPolicy.from_config(config | overrides)


# --- validation ---------------------------------------------------------------


@pytest.mark.parametrize("target", [timedelta(0), timedelta(seconds=-1), hours(-4)])
def test_a_target_of_zero_or_less_is_refused(target: timedelta) -> None:
    with pytest.raises(SlaError, match="must be positive") as raised:
        SlaTarget(clock=FIRST, target=target)
    assert "targets.first_response.target" in raised.value.fields


BAD_POLICIES = [
    ("a zero target", {"targets": {"resolution": {"target": "0h"}}},
     "targets.resolution.target", "must be positive"),
    ("a negative target", {"targets": {"resolution": {"target": "-4h"}}},
     "targets.resolution.target", "must be positive"),
    ("a target in words", {"targets": {"resolution": {"target": "four hours"}}},
     "targets.resolution.target", "not a duration"),
    ("an unknown clock", {"targets": {"first_reply": {"target": "4h"}}},
     "targets.first_reply", "unknown clock"),
    ("a warning longer than the target", {"targets": {"resolution": {"target": "1h",
     "warn_before": "2h"}}}, "targets.resolution.warn_before", "between 0 and"),
    ("a warning of 100 percent", {"targets": {"resolution": {"target": "1h",
     "warn_before": "100%"}}}, "targets.resolution.warn_before", "percentage"),
    ("no targets", {"targets": {}}, "targets", "required"),
    ("an unknown tier", {"tiers": ["diamond"]}, "tiers", "unknown diamond"),
    ("no priorities", {"priorities": []}, "priorities", "at least one"),
    ("an empty category list", {"categories": []}, "categories", "leave it out"),
    ("an empty name", {"name": " "}, "name", "required"),
    ("a misspelt key", {"tier": ["gold"]}, "tier", "unknown key"),
    ("a calendar name that is not defined", {"calendar": "berlin"}, "calendar",
     "no calendar named"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [case[1:] for case in BAD_POLICIES],
    ids=[case[0] for case in BAD_POLICIES],
)
def test_a_bad_policy_is_a_clear_error_naming_the_field(
    overrides: dict[str, object], field: str, words: str
) -> None:
    with pytest.raises(SlaError, match=words) as raised:
        policy(**overrides)
    assert field in raised.value.fields


@pytest.mark.parametrize(
    ("calendar", "field", "words"),
    [
        ({**OFFICE_CONFIG, "time_zone": "Mars/Olympus"}, "calendar.time_zone", "unknown"),
        ({**OFFICE_CONFIG, "hours": {}}, "calendar.hours", "no working hours"),
        (
            {**OFFICE_CONFIG, "hours": {"mon": ["08:00-13:00", "12:00-17:00"]}},
            "calendar.hours.mon",
            "overlaps",
        ),
    ],
    ids=["a non-existent time zone", "an empty calendar", "overlapping business hours"],
)
def test_a_bad_policy_calendar_names_the_calendar_field(
    calendar: dict[str, object], field: str, words: str
) -> None:
    with pytest.raises(CalendarError, match=words) as raised:
        policy(calendar=calendar)
    assert field in raised.value.fields
    assert str(raised.value).startswith(f"{field}: ")


def test_durations_and_warnings_read_from_config() -> None:
    assert parse_duration("1h30m", field_name="t") == timedelta(minutes=90)
    assert parse_duration("45s", field_name="t") == timedelta(seconds=45)
    standard = policy()
    first = standard.target_for(FIRST)
    resolution = standard.target_for(RESOLUTION)
    assert first is not None and first.warn_before == PercentOfTarget(25)
    assert first.warn_after == hours(3)
    assert resolution is not None and resolution.warn_after == hours(14)
    assert standard.target_for(NEXT) is not None
    assert SlaTarget(clock=NEXT, target=hours(2)).warn_after is None


def test_a_named_calendar_is_shared() -> None:
    config = {
        "name": "Named",
        "tiers": ["gold"],
        "priorities": ["high"],
        "calendar": "berlin-office",
        "targets": {"resolution": {"target": "8h"}},
    }
    chosen = SlaPolicy.from_config(config, calendars={"berlin-office": OFFICE})
    assert chosen.calendar is OFFICE


# --- choosing a policy --------------------------------------------------------


def test_the_most_specific_policy_wins() -> None:
    generic = policy("Generic")
    also_generic = policy("Also generic")
    billing = policy("Billing", categories=["billing"])
    policies = [generic, also_generic, billing]

    def chosen(tier: str, priority: str, category: str | None) -> str | None:
        found = choose_policy(policies, tier=tier, priority=priority, category=category)
        return None if found is None else found.name

    assert chosen("gold", "high", "billing") == "Billing"  # category beats generic
    assert chosen("gold", "high", "returns") == "Generic"  # first generic in order
    assert chosen("gold", "high", None) == "Generic"  # category policy needs a category
    assert chosen("platinum", "high", "billing") is None  # tier not covered
    assert chosen("gold", "urgent", None) is None  # priority not covered


# --- clock transitions ----------------------------------------------------------


def test_clock_transitions_refuse_what_makes_no_sense() -> None:
    idle = ClockState()
    running = start(idle, berlin(2026, 1, 12, 9))
    with pytest.raises(ClockError, match="cannot pause"):
        pause(idle, berlin(2026, 1, 12, 9), calendar=OFFICE)
    with pytest.raises(ClockError, match="never started"):
        resume(idle, berlin(2026, 1, 12, 9), calendar=OFFICE)
    with pytest.raises(ClockError, match="never started"):
        stop(idle, berlin(2026, 1, 12, 9), calendar=OFFICE)
    with pytest.raises(ClockError, match="before the clock's last change"):
        pause(running, berlin(2026, 1, 12, 8), calendar=OFFICE)
    with pytest.raises(ClockError, match="not several"):
        ClockState(running_since=berlin(2026, 1, 12, 9), stopped_at=berlin(2026, 1, 12, 9))
    assert start(running, berlin(2026, 1, 12, 10)) is running
    paused = pause(running, berlin(2026, 1, 12, 10), calendar=OFFICE)
    assert pause(paused, berlin(2026, 1, 12, 11), calendar=OFFICE) is paused
    assert resume(running, berlin(2026, 1, 12, 10), calendar=OFFICE) is running


def test_a_clock_stopped_exactly_at_its_due_time_is_met() -> None:
    target = SlaTarget(clock=FIRST, target=hours(1))
    running = start(ClockState(), berlin(2026, 1, 12, 9))
    stopped = stop(running, berlin(2026, 1, 12, 10), calendar=OFFICE)
    assert record_breach(stopped, berlin(2026, 1, 13), target=target, calendar=OFFICE) == stopped
    late = stop(running, berlin(2026, 1, 12, 10, 0, 1), calendar=OFFICE)
    recorded = record_breach(late, berlin(2026, 1, 13), target=target, calendar=OFFICE)
    assert recorded.breached_at == berlin(2026, 1, 12, 10)


def test_a_deadline_at_closing_is_breached_after_closing() -> None:
    target = SlaTarget(clock=FIRST, target=hours(1))
    running = start(ClockState(), berlin(2026, 1, 12, 16))
    assert due_at(running, target, calendar=OFFICE) == berlin(2026, 1, 12, 17)
    at_due = record_breach(running, berlin(2026, 1, 12, 17), target=target, calendar=OFFICE)
    assert at_due.breached_at is None
    evening = berlin(2026, 1, 12, 18)
    after = record_breach(running, evening, target=target, calendar=OFFICE)
    assert after.breached_at == berlin(2026, 1, 12, 17)
    assert breached(after, evening)
    assert remaining(running, evening, target=target, calendar=OFFICE) == timedelta(0)


# --- one ticket's life ----------------------------------------------------------


def test_a_ticket_life_across_a_weekend_and_the_christmas_holidays() -> None:
    sla = policy()
    first = sla.target_for(FIRST)
    following = sla.target_for(NEXT)
    resolution = sla.target_for(RESOLUTION)
    assert first is not None and following is not None and resolution is not None
    cal = sla.calendar
    idle = {kind: ClockState() for kind in ClockKind}

    # Created Friday 16:30: first response and resolution start.
    created = berlin(2026, 12, 18, 16, 30)
    change = clocks_after_status_change(
        idle, old_status=None, new_status=TicketStatus.NEW, now=created, calendar=cal
    )
    clocks = change.clocks
    assert [note.text for note in change.notes] == ["first response started", "resolution started"]
    assert clocks[NEXT].phase is ClockPhase.IDLE
    # 30 min on Friday, 3 h 30 on Monday.
    assert due_at(clocks[FIRST], first, calendar=cal) == berlin(2026, 12, 21, 11, 30)
    assert warn_at(clocks[FIRST], first, calendar=cal) == berlin(2026, 12, 21, 10, 30)
    assert due_at(clocks[RESOLUTION], resolution, calendar=cal) == berlin(2026, 12, 22, 14, 30)
    assert warn_at(clocks[RESOLUTION], resolution, calendar=cal) == berlin(2026, 12, 22, 12, 30)

    # Monday 10:00: the agent replies and sets the ticket pending.
    monday = berlin(2026, 12, 21, 10)
    reply = clocks_after_agent_reply(clocks, now=monday, calendar=cal)
    assert [note.text for note in reply.notes] == ["first response stopped"]
    change = clocks_after_status_change(
        reply.clocks,
        old_status=TicketStatus.NEW,
        new_status=TicketStatus.PENDING,
        now=monday,
        calendar=cal,
    )
    clocks = change.clocks
    assert [(n.text, n.at) for n in change.notes] == [("resolution paused", monday)]
    assert elapsed(clocks[FIRST], monday, calendar=cal) == hours(2.5)
    assert record_breach(clocks[FIRST], monday, target=first, calendar=cal).breached_at is None
    assert due_at(clocks[RESOLUTION], resolution, calendar=cal) is None
    assert clocks[RESOLUTION].accumulated == hours(2.5)

    # The customer answers the Monday after Christmas, 09:00: the pause held
    # Mon 7 h + Tue 9 h + Wed 9 h + (Christmas Eve closed, Christmas, weekend) + Mon 1 h.
    back = berlin(2026, 12, 28, 9)
    change = clocks_after_status_change(
        clocks,
        old_status=TicketStatus.PENDING,
        new_status=TicketStatus.OPEN,
        now=back,
        calendar=cal,
    )
    (note,) = change.notes
    assert (note.text, note.at, note.paused_business) == ("resolution resumed", back, hours(26))
    message = clocks_after_customer_message(change.clocks, now=back)
    clocks = message.clocks
    assert [n.text for n in message.notes] == ["next response started"]
    assert clocks[RESOLUTION].pauses[0].business == hours(26)
    assert due_at(clocks[NEXT], following, calendar=cal) == berlin(2026, 12, 28, 11)
    # 13 h 30 left: Monday 8 h, Tuesday 08:00 + 5 h 30.
    due = due_at(clocks[RESOLUTION], resolution, calendar=cal)
    assert due == berlin(2026, 12, 29, 13, 30)
    assert due is not None and due.astimezone(UTC) == datetime(2026, 12, 29, 12, 30, tzinfo=UTC)

    # A second customer message does not move the next-response due time.
    again = clocks_after_customer_message(clocks, now=berlin(2026, 12, 28, 10))
    assert again.clocks[NEXT] == clocks[NEXT] and again.notes == ()

    # Tuesday 15:00 the scheduler notices the breach and stores it; the ticket is solved.
    late = berlin(2026, 12, 29, 15)
    clocks = {**clocks, RESOLUTION: record_breach(
        clocks[RESOLUTION], late, target=resolution, calendar=cal
    )}  # fmt: skip
    assert clocks[RESOLUTION].breached_at == berlin(2026, 12, 29, 13, 30)
    assert remaining(clocks[RESOLUTION], late, target=resolution, calendar=cal) == hours(-1.5)
    solved = clocks_after_status_change(
        clocks,
        old_status=TicketStatus.OPEN,
        new_status=TicketStatus.SOLVED,
        now=late,
        calendar=cal,
    )
    clocks = solved.clocks
    assert {n.text for n in solved.notes} == {"next response stopped", "resolution stopped"}
    assert clocks[NEXT].breached_at is None  # never recorded; the caller checks each clock

    # The stored breach stays put even if the calendar later changes.
    changed = BusinessCalendar.from_config({**OFFICE_CONFIG, "closed": ["2026-12-29"]})
    rechecked = record_breach(
        clocks[RESOLUTION], berlin(2027, 1, 5), target=resolution, calendar=changed
    )
    assert rechecked.breached_at == berlin(2026, 12, 29, 13, 30)
    assert breached(rechecked, berlin(2027, 1, 5))

    # Reopened Wednesday 30th: resolution restarts from its 17 h 30.
    reopened_at = berlin(2026, 12, 30, 9)
    reopened = clocks_after_status_change(
        clocks,
        old_status=TicketStatus.SOLVED,
        new_status=TicketStatus.OPEN,
        now=reopened_at,
        calendar=cal,
    )
    assert [n.text for n in reopened.notes] == ["resolution restarted"]
    state = reopened.clocks[RESOLUTION]
    assert state.phase is ClockPhase.RUNNING
    assert elapsed(state, reopened_at, calendar=cal) == hours(17.5)
    assert reopened.clocks[FIRST].phase is ClockPhase.STOPPED
    assert reopened.clocks[NEXT].phase is ClockPhase.STOPPED


def test_a_ticket_created_pending_starts_paused_and_reopening_into_pending_stays_paused() -> None:
    now = berlin(2026, 1, 12, 9)
    idle = {RESOLUTION: ClockState()}
    created = clocks_after_status_change(
        idle, old_status=None, new_status=TicketStatus.PENDING, now=now, calendar=OFFICE
    )
    assert [n.text for n in created.notes] == ["resolution started", "resolution paused"]
    stopped = clocks_after_status_change(
        created.clocks,
        old_status=TicketStatus.PENDING,
        new_status=TicketStatus.CLOSED,
        now=berlin(2026, 1, 12, 10),
        calendar=OFFICE,
    )
    (note,) = stopped.notes
    assert note.text == "resolution stopped" and note.paused_business == hours(1)
    reopened = clocks_after_status_change(
        stopped.clocks,
        old_status=TicketStatus.CLOSED,
        new_status=TicketStatus.ON_HOLD,
        now=berlin(2026, 1, 12, 11),
        calendar=OFFICE,
    )
    assert [n.text for n in reopened.notes] == ["resolution restarted", "resolution paused"]
    assert reopened.clocks[RESOLUTION].phase is ClockPhase.PAUSED
    unchanged = clocks_after_status_change(
        reopened.clocks,
        old_status=TicketStatus.ON_HOLD,
        new_status=TicketStatus.ON_HOLD,
        now=berlin(2026, 1, 12, 12),
        calendar=OFFICE,
    )
    assert unchanged.clocks == reopened.clocks and unchanged.notes == ()


# --- property: pauses never count ---------------------------------------------

MOMENTS = st.datetimes(
    min_value=datetime(2026, 3, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=60, deadline=None)
@given(moments=st.lists(MOMENTS, min_size=2, max_size=8, unique=True), target_h=st.integers(1, 60))
def test_paused_time_never_counts_and_the_due_time_spends_the_target_exactly(
    moments: list[datetime], target_h: int
) -> None:
    moments.sort()
    target = SlaTarget(clock=RESOLUTION, target=hours(target_h))
    state = start(ClockState(), moments[0])
    running_spans = []
    for index, moment in enumerate(moments[1:]):
        if index % 2 == 0:
            running_spans.append((state.running_since, moment))
            state = pause(state, moment, calendar=OFFICE)
        else:
            state = resume(state, moment, calendar=OFFICE)
    last = moments[-1] + timedelta(days=3)
    if state.running_since is not None:
        running_spans.append((state.running_since, last))
    expected = sum(
        (business_time_between(a, b, OFFICE) for a, b in running_spans if a is not None),
        timedelta(0),
    )
    assert elapsed(state, last, calendar=OFFICE) == expected
    paused = sum((span.business for span in state.pauses), timedelta(0))
    whole = business_time_between(moments[0], last, OFFICE)
    if state.paused_since is not None:
        paused += business_time_between(state.paused_since, last, OFFICE)
    assert expected + paused == whole
    due = due_at(state, target, calendar=OFFICE)
    if due is not None and due >= (state.since or due):
        assert elapsed(state, due, calendar=OFFICE) == target.target
