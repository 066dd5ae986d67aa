"""The SLA keeper: picks the policy, moves the clocks with each ticket change,
writes the audit trail, records breaches once and keeps the timers right."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from desk.clock import FakeClock
from desk.events import Recipients
from routing.sla import ClockState, Span
from routing.sla_keeper import (
    SlaBreached,
    SlaWarned,
    TicketEscalated,
    describe_duration,
    state_from_json,
    state_to_json,
)
from tests.conftest import Database
from tests.routing.sla_support import STANDARD, World, berlin, setup

MONDAY = berlin(2026, 3, 9, 10)
FIRST, NEXT, RESOLUTION = "first_response", "next_response", "resolution"


def _policy(name: str, **changes: Any) -> dict[str, Any]:
    return {**STANDARD, "name": name, **changes}


async def test_the_policy_follows_customer_tier_priority_and_category(
    database: Database,
) -> None:
    sla = setup(
        [
            _policy("Gold", tiers=["gold"]),
            _policy("Billing", categories=["billing"]),
            _policy("Standard"),
        ]
    )
    world = await World.create(database, FakeClock(MONDAY), sla)
    gold = await world.open(customer_id=world.ids["gold"])
    billing = await world.open(category="billing")
    plain = await world.open()
    anonymous = await world.open(customer_id=None)
    for ticket, policy in ((gold, "Gold"), (billing, "Billing"), (plain, "Standard")):
        assert {row.policy for row in (await world.clocks(ticket)).values()} == {policy}
    assert {row.policy for row in (await world.clocks(anonymous)).values()} == {"Standard"}


async def test_a_ticket_no_policy_covers_gets_no_clocks(database: Database) -> None:
    world = await World.create(
        database, FakeClock(MONDAY), setup([_policy("Gold", tiers=["gold"])])
    )
    ticket = await world.open()
    assert await world.clocks(ticket) == {}
    assert await world.timers(ticket) == []
    assert await world.sla_history(ticket) == []


async def test_a_priority_change_moves_the_ticket_to_another_policy_keeping_elapsed_time(
    database: Database,
) -> None:
    urgent = _policy(
        "Urgent",
        priorities=["urgent"],
        targets={"first_response": {"target": "2h"}, "resolution": {"target": "4h"}},
    )
    clock = FakeClock(MONDAY)
    world = await World.create(database, clock, setup([urgent, _policy("Standard")], {}))
    ticket = await world.open()
    assert (await world.clocks(ticket))[FIRST].due_at == berlin(2026, 3, 9, 18)
    clock.set(berlin(2026, 3, 9, 11))
    await world.change(ticket, priority="urgent")
    clocks = await world.clocks(ticket)
    # One hour already used: the 2h target is due at noon, resolution (4h) at 14:00.
    assert (clocks[FIRST].policy, clocks[FIRST].due_at) == ("Urgent", berlin(2026, 3, 9, 12))
    assert clocks[RESOLUTION].due_at == berlin(2026, 3, 9, 14)
    assert await world.pending(ticket) == [
        (FIRST, "breach", 0, berlin(2026, 3, 9, 12)),
        (RESOLUTION, "breach", 0, berlin(2026, 3, 9, 14)),
    ]
    clock.set(berlin(2026, 3, 9, 11, 30))
    await world.change(ticket, subject="Router is down again")  # no further switch
    switches = [row for row in await world.sla_history(ticket) if row[0] == "sla:policy"]
    assert switches == [("sla:policy", "Urgent")]
    assert (await world.clocks(ticket))[NEXT].due_at is None  # Urgent has no such clock


async def test_pending_and_on_hold_pause_the_clocks_and_the_pause_goes_on_the_audit_trail(
    database: Database,
) -> None:
    clock = FakeClock(MONDAY)
    world = await World.create(database, clock, setup(escalation={}))
    ticket = await world.open()
    await world.reply(ticket)  # 10:00: first response met, the ticket is open
    clock.set(berlin(2026, 3, 9, 12))
    await world.change(ticket, status="pending")
    assert await world.pending(ticket) == []
    assert (await world.clocks(ticket))[RESOLUTION].due_at is None
    clock.set(berlin(2026, 3, 10, 9, 30))
    await world.change(ticket, status="on_hold")  # still paused
    clock.set(berlin(2026, 3, 10, 10))
    await world.change(ticket, status="open")
    # Paused Monday 12:00-18:00 and Tuesday 08:00-10:00; 2h used of 30h, so due
    # after Tuesday's 8h, Wednesday's 10h and 10h on Thursday: Thursday 18:00.
    assert (await world.clocks(ticket))[RESOLUTION].due_at == berlin(2026, 3, 12, 18)
    assert [text for _, text in await world.sla_history(ticket)] == [
        "first response started",
        "resolution started",
        "first response stopped",
        "resolution paused",
        "resolution resumed after 8h business time",
    ]


async def test_a_breach_the_watcher_missed_is_recorded_once_by_the_next_change(
    database: Database,
) -> None:
    clock = FakeClock(MONDAY)
    world = await World.create(database, clock, setup(escalation={}))
    ticket = await world.open()
    clock.set(berlin(2026, 3, 10, 9))  # first response was due Monday 18:00
    await world.reply(ticket)
    (breach,) = world.of(SlaBreached)
    assert (breach.clock, breach.breached_at) == (FIRST, berlin(2026, 3, 9, 18))
    assert breach.recipients == Recipients(agents=(world.ids["alice_agent"],), supervisors=True)
    assert (await world.clocks(ticket))[FIRST].breached_at == berlin(2026, 3, 9, 18)
    history = [text for _, text in await world.sla_history(ticket)]
    assert history[-2:] == [
        "first response breached (due 2026-03-09T17:00:00+00:00)",
        "first response stopped",
    ]
    # The watcher, catching up later, finds nothing left to say about it.
    await world.watcher().fire_due()
    assert len(world.of(SlaBreached)) == 1
    assert world.of(SlaWarned) == []
    clock.set(berlin(2026, 3, 10, 10))
    await world.change(ticket, status="pending")
    assert len(world.of(SlaBreached)) == 1


async def test_a_solved_ticket_leaves_no_timer_to_fire(database: Database) -> None:
    clock = FakeClock(MONDAY)
    world = await World.create(database, clock)
    ticket = await world.open()
    await world.change(ticket, status="solved")
    assert await world.pending(ticket) == []
    clock.set(datetime(2026, 6, 1, tzinfo=UTC))
    assert await world.watcher().fire_due() == 0
    assert [e.name for e in world.events] == ["ticket_opened", "ticket_changed"]


def test_sla_events_reach_the_assignee_or_else_the_team_and_breaches_the_supervisors() -> None:
    common: dict[str, Any] = {
        "occurred_at": MONDAY,
        "ticket_id": 1,
        "clock": FIRST,
        "policy": "Standard",
        "due_at": MONDAY,
        "team_id": 7,
    }
    assert SlaWarned(warn_at=MONDAY, assignee_agent_id=3, **common).recipients == Recipients(
        agents=(3,)
    )
    assert SlaWarned(warn_at=MONDAY, assignee_agent_id=None, **common).recipients == Recipients(
        teams=(7,)
    )
    assert SlaBreached(breached_at=MONDAY, assignee_agent_id=3, **common).recipients == (
        Recipients(agents=(3,), supervisors=True)
    )
    escalated = TicketEscalated(
        level=2,
        who="team_lead",
        to_user_id=9,
        to_agent_id=4,
        to_team_id=None,
        to_name="team lead Tom",
        email_to=("tom@example.com",),
        assignee_agent_id=3,
        **common,
    )
    assert escalated.recipients == Recipients(agents=(4,), supervisors=True)
    assert "tom@example.com" not in str(escalated.payload())
    assert escalated.payload()["level"] == 2


def test_business_durations_read_as_hours_and_minutes() -> None:
    assert [
        describe_duration(timedelta(**parts))
        for parts in ({"hours": 26}, {"hours": 16, "minutes": 30}, {"minutes": 45}, {})
    ] == ["26h", "16h30m", "45m", "0m"]
    assert describe_duration(timedelta(hours=1, seconds=20)) == "1h0m20s"


MOMENTS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)
)


@settings(max_examples=50, deadline=None)
@given(
    moments=st.lists(MOMENTS, min_size=3, max_size=7, unique=True),
    micros=st.integers(0, 10**12),
)
def test_a_stored_clock_state_reads_back_exactly(moments: list[datetime], micros: int) -> None:
    moments.sort()
    spans = tuple(Span(a, b, timedelta(microseconds=micros)) for a, b in pairwise(moments))
    state = ClockState(
        paused_since=moments[-1], runs=spans, pauses=spans[:1], breached_at=moments[0]
    )
    assert state_from_json(state_to_json(state)) == state


async def test_a_change_stamped_before_the_clocks_last_change_is_kept_at_that_change(
    database: Database,
) -> None:
    # The system clock was set back (or another process's runs behind): the reply
    # still goes through, and the clocks do not run backwards.
    clock = FakeClock(berlin(2026, 3, 9, 11))
    world = await World.create(database, clock, setup(escalation={}))
    ticket = await world.open()
    clock.set(MONDAY)  # an hour before the ticket's clocks started

    await world.reply(ticket)

    clocks = await world.clocks(ticket)
    assert state_from_json(clocks[FIRST].state).stopped_at == berlin(2026, 3, 9, 11)
