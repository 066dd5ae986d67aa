"""The SLA board: soonest breach first, breaches until answered, escalations by
level, backlog per team, weighted load per agent; and the feed that keeps it live."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from desk.clock import FakeClock
from routing.sla import ClockPhase
from routing.sla_board import (
    ClockFacts,
    SlaBoard,
    SlaBoardFeed,
    breached_tickets,
    read_board,
    tickets_at_risk,
)
from tests.conftest import Database
from tests.routing.sla_support import LEVELS, World, setup

T0 = datetime(2026, 3, 9, 9, tzinfo=UTC)  # a Monday
MINUTE = timedelta(minutes=1)
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


async def world_at(database: Database, clock: FakeClock) -> World:
    return await World.create(database, clock, setup([ROUND_THE_CLOCK], LEVELS))


async def board(world: World, **options: Any) -> SlaBoard:
    async with world.database.sessions() as session:
        return await read_board(session, now=world.clock.now(), **options)


def facts(**fields: Any) -> ClockFacts:
    values: dict[str, Any] = {
        "ticket_id": 1,
        "subject": "Router is down",
        "priority": "normal",
        "team_id": None,
        "assignee_id": None,
        "clock": "first_response",
        "policy": "Round the clock",
        "phase": ClockPhase.RUNNING,
        "due_at": T0 + 60 * MINUTE,
        "warn_at": T0 + 30 * MINUTE,
        "breached_at": None,
        **fields,
    }
    return ClockFacts(**values)


# --- pure decisions --------------------------------------------------------------------


def test_a_running_clock_past_its_due_time_is_breached_before_the_watcher_records_it() -> None:
    late = facts(due_at=T0 - MINUTE)
    assert tickets_at_risk([late], now=T0) == []
    (breach,) = breached_tickets([late], now=T0)
    assert (breach.breached_at, breach.seconds_overdue, breach.recorded) == (T0 - MINUTE, 60, False)


def test_a_clock_due_exactly_now_is_at_risk_with_no_time_left_not_breached() -> None:
    (risk,) = tickets_at_risk([facts(due_at=T0)], now=T0)
    assert risk.seconds_left == 0
    assert breached_tickets([facts(due_at=T0)], now=T0) == []


def test_a_paused_clock_is_not_at_risk_but_a_breach_it_carries_stays_on_the_board() -> None:
    paused = facts(phase=ClockPhase.PAUSED, due_at=None, warn_at=None, breached_at=T0 - MINUTE)
    assert tickets_at_risk([paused], now=T0) == []
    assert [b.ticket_id for b in breached_tickets([paused], now=T0)] == [1]


# --- over the database, with the real keeper and watcher ---------------------------------


async def test_tickets_at_risk_are_listed_soonest_breach_first_with_clock_and_seconds_left(
    database: Database,
) -> None:
    clock = FakeClock(T0)
    world = await world_at(database, clock)
    first = await world.open()  # first response due T0+2h, warned from T0+1h30
    clock.set(T0 + 30 * MINUTE)
    second = await world.open()  # due T0+2h30, warned from T0+2h
    clock.set(T0 + 90 * MINUTE)
    await world.open()  # due T0+3h30: beyond the hour's horizon
    clock.set(T0 + 100 * MINUTE)
    risks = (await board(world, horizon=timedelta(hours=1))).at_risk
    assert [(r.ticket_id, r.clock, r.seconds_left, r.warned) for r in risks] == [
        (first, "first_response", 1200.0, True),
        (second, "first_response", 3000.0, False),
    ]


async def test_a_breach_the_watcher_recorded_moves_the_ticket_from_at_risk_to_breached(
    database: Database,
) -> None:
    clock = FakeClock(T0)
    world = await world_at(database, clock)
    late = await world.open()
    clock.set(T0 + 30 * MINUTE)
    soon = await world.open()
    clock.set(T0 + 130 * MINUTE)
    await world.watcher().fire_due()
    shown = await board(world)
    assert [(b.ticket_id, b.clock, b.breached_at, b.recorded) for b in shown.breached] == [
        (late, "first_response", T0 + 120 * MINUTE, True)
    ]
    assert [(r.ticket_id, r.seconds_left) for r in shown.at_risk] == [(soon, 1200.0)]


async def test_an_answered_breach_leaves_the_board(database: Database) -> None:
    clock = FakeClock(T0)
    world = await world_at(database, clock)
    ticket = await world.open()
    clock.set(T0 + 130 * MINUTE)
    await world.watcher().fire_due()
    await world.reply(ticket)
    assert (await board(world)).breached == ()


async def test_open_escalations_show_the_highest_level_first_since_it_fired(
    database: Database,
) -> None:
    clock = FakeClock(T0)
    world = await world_at(database, clock)
    watcher = world.watcher()
    early = await world.open()  # breaches T0+2h: level 1 then, level 2 (team lead) at T0+4h
    clock.set(T0 + 60 * MINUTE)
    later = await world.open()  # breaches T0+3h: level 1 then
    clock.set(T0 + 125 * MINUTE)
    await watcher.fire_due()
    clock.set(T0 + 245 * MINUTE)
    await watcher.fire_due()
    shown = (await board(world)).escalations
    assert [(e.ticket_id, e.clock, e.level, e.since) for e in shown] == [
        (early, "first_response", 2, T0 + 245 * MINUTE),
        (later, "first_response", 1, T0 + 245 * MINUTE),
    ]


async def test_the_backlog_counts_unsolved_tickets_per_team_and_status(
    database: Database,
) -> None:
    world = await world_at(database, FakeClock(T0))
    await world.open()
    waiting = await world.open()
    await world.change(waiting, status="pending")
    done = await world.open()
    await world.change(done, status="solved")
    await world.open(team_id=None)
    teams = (await board(world)).teams
    assert [(t.team_id, t.name, t.new, t.open, t.pending, t.total) for t in teams] == [
        (world.ids["team"], "Support", 1, 0, 1, 2),
        (None, "(no team)", 1, 0, 0, 1),
    ]


async def test_agent_load_weighs_unsolved_tickets_by_priority(database: Database) -> None:
    world = await world_at(database, FakeClock(T0))
    await world.open(priority="urgent")
    await world.open(priority="normal")
    await world.open(priority="low")
    solved = await world.open(priority="urgent")
    await world.change(solved, status="solved")
    agents = (await board(world)).agents
    assert [(a.name, a.open_tickets, a.by_priority, a.load) for a in agents] == [
        ("Alice", 3, {"low": 1, "normal": 1, "urgent": 1}, 5.5),  # 0.5 + 1 + 4
        ("Tom Lead", 0, {}, 0.0),
    ]


# --- the live feed ---------------------------------------------------------------------------


class Boards:
    """What a feed published, as the app's notifier would receive it."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[SlaBoard] = asyncio.Queue()

    async def publish(self, board: SlaBoard) -> None:
        await self.queue.put(board)

    async def next(self) -> SlaBoard:
        return await asyncio.wait_for(self.queue.get(), timeout=5)


async def test_the_feed_publishes_a_fresh_board_when_poked(database: Database) -> None:
    clock = FakeClock(T0)
    world = await world_at(database, clock)
    boards = Boards()
    feed = SlaBoardFeed(
        sessions=database.sessions, clock=clock, publish=boards.publish, interval=3600, min_gap=0
    )
    feed.start()
    try:
        assert (await boards.next()).teams[0].total == 0  # the first board, at start
        await world.open()
        feed.poke()
        fresh = await boards.next()
        assert fresh.teams[0].total == 1
        assert feed.latest is fresh
    finally:
        await feed.stop()


async def test_the_feed_recomputes_every_interval_without_being_poked(
    database: Database,
) -> None:
    clock = FakeClock(T0)
    await world_at(database, clock)
    boards = Boards()
    feed = SlaBoardFeed(
        sessions=database.sessions, clock=clock, publish=boards.publish, interval=0.05, min_gap=0
    )
    feed.start()
    try:
        await boards.next()
        clock.set(T0 + MINUTE)
        while (await boards.next()).at != T0 + MINUTE:
            pass
    finally:
        await feed.stop()


async def test_stopping_the_feed_cancels_its_task_and_waits_for_it(database: Database) -> None:
    boards = Boards()
    feed = SlaBoardFeed(
        sessions=database.sessions, clock=FakeClock(T0), publish=boards.publish, interval=3600
    )
    feed.start()
    await boards.next()
    assert feed.running
    await feed.stop()
    assert not feed.running
    feed.poke()
    await asyncio.sleep(0.05)
    assert boards.queue.empty()


async def test_a_failing_publisher_does_not_stop_the_feed(database: Database) -> None:
    boards = Boards()
    failed = asyncio.Event()

    async def flaky(board: SlaBoard) -> None:
        if not failed.is_set():
            failed.set()
            raise ConnectionError("the socket.io manager is away")
        await boards.publish(board)

    feed = SlaBoardFeed(
        sessions=database.sessions, clock=FakeClock(T0), publish=flaky, interval=3600, min_gap=0
    )
    feed.start()
    try:
        await asyncio.wait_for(failed.wait(), timeout=5)
        feed.poke()
        await boards.next()
        assert feed.running
    finally:
        await feed.stop()
