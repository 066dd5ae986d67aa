"""The SLA watcher: wakes at the next due time or when poked, survives clock
jumps and restarts, fires each timer exactly once, and is wired into the app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from desk.clock import FakeClock, SystemClock
from desk.db import create_engine, session_factory
from desk.events import DomainEvent, EventBus
from desk.mail_sender import MailSender
from desk.models import SlaTimer
from desk.outbox import outbox_messages
from desk.settings import Settings
from routing.sla_keeper import SlaBreached, SlaEvent, SlaWarned, TicketEscalated
from routing.watcher import SlaWatcher
from tests.conftest import Database
from tests.desk.mail_support import MailServer, relay_to
from tests.routing.sla_support import World, setup
from tests.web.conftest import PASSWORD, _seed_people
from web.app import create_app

# FakeClock's default start is Monday 5 January 2026, 10:00 in Berlin.  The
# standard policy's first response (8h, warn at 80 %) warns at 16:24 and is due
# at 18:00 that day (15:24 and 17:00 UTC).
WARNING = datetime(2026, 1, 5, 15, 24, tzinfo=UTC)
BREACH = datetime(2026, 1, 5, 17, tzinfo=UTC)
SECOND = timedelta(seconds=1)
FAST = {
    "name": "Fast",
    "tiers": ["standard"],
    "priorities": ["normal"],
    "calendar": "always",
    "targets": {"first_response": {"target": "1s"}},
}


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.fixture
async def watchers() -> AsyncIterator[list[SlaWatcher]]:
    """Watchers a test starts; stopped (task cancelled and awaited) at the end."""
    started: list[SlaWatcher] = []
    yield started
    for watcher in started:
        await watcher.stop()


def running(watchers: list[SlaWatcher], watcher: SlaWatcher) -> SlaWatcher:
    watchers.append(watcher)
    watcher.start()
    return watcher


async def test_the_watcher_sleeps_until_the_next_due_time_rather_than_scanning(
    database: Database, watchers: list[SlaWatcher]
) -> None:
    clock = SystemClock()
    world = await World.create(database, FakeClock(), setup([FAST], {}))
    world.clock = clock  # type: ignore[assignment]
    ticket = await world.open()
    (due,) = [when for *_, when in await world.pending(ticket)]
    watcher = running(watchers, world.watcher(interval=60))
    await until(lambda: bool(world.of(SlaBreached)), timeout=5)
    (breach,) = world.of(SlaBreached)
    assert breach.ticket_id == ticket and breach.breached_at == due
    assert breach.occurred_at >= due
    # One round at start, one at the due time (maybe one more if the timer
    # woke a hair early): no polling in between, though the interval is 60 s.
    assert watcher.rounds <= 4


async def test_a_poke_wakes_the_watcher_at_once(
    database: Database, clock: FakeClock, watchers: list[SlaWatcher]
) -> None:
    world = await World.create(database, clock)
    await world.open()
    watcher = running(watchers, world.watcher(interval=60))
    await until(lambda: watcher.rounds >= 1)
    clock.set(WARNING)
    watcher.poke()
    await until(lambda: bool(world.of(SlaWarned)), timeout=2)
    assert [event.clock for event in world.of(SlaWarned)] == ["first_response"]


async def test_a_round_asked_for_while_the_loop_holds_a_batch_returns_once_it_is_announced(
    database: Database, clock: FakeClock
) -> None:
    world = await World.create(database, clock)
    await world.open()
    clock.set(WARNING)
    release, holding = asyncio.Event(), asyncio.Event()

    async def slow_listener(_event: DomainEvent) -> None:
        holding.set()
        await release.wait()

    world.bus.subscribe(SlaWarned, slow_listener)
    watcher = world.watcher(interval=60)
    first = asyncio.create_task(watcher.fire_due())
    await asyncio.wait_for(holding.wait(), timeout=5)

    second = asyncio.create_task(watcher.fire_due())
    returned_early, _ = await asyncio.wait({second}, timeout=0.5)
    release.set()

    # It waited for the batch in flight to be announced (and so counted, say by
    # /metrics) rather than finding its timers taken and returning at once.
    assert returned_early == set()
    assert (await first, await second) == (1, 0)


async def test_pokes_with_nothing_due_open_no_write_transaction(
    database: Database, clock: FakeClock, watchers: list[SlaWatcher]
) -> None:
    world = await World.create(database, clock)
    await world.open()
    readers = create_engine(database.url, readers=True)
    writes: list[object] = []
    sqlalchemy_event.listen(database.engine.sync_engine, "begin", writes.append)
    try:
        watcher = running(watchers, world.watcher(interval=60, reads=session_factory(readers)))
        await until(lambda: watcher.rounds >= 1)
        for n in range(2, 7):
            watcher.poke()
            await until(lambda n=n: watcher.rounds >= n)  # type: ignore[misc]
    finally:
        await readers.dispose()
    # Every ticket change pokes the watcher; on SQLite a needless claim would take
    # the one write connection from the pops each time.
    assert writes == []


async def test_a_clock_jump_is_noticed_within_the_wake_interval_without_a_poke(
    database: Database, clock: FakeClock, watchers: list[SlaWatcher]
) -> None:
    world = await World.create(database, clock)
    await world.open()
    watcher = running(watchers, world.watcher(interval=0.05))
    await until(lambda: watcher.rounds >= 1)
    clock.set(BREACH + SECOND)
    await until(lambda: bool(world.of(SlaBreached)), timeout=2)
    assert [type(e).__name__ for e in world.events[1:]] == [
        "SlaWarned",
        "SlaBreached",
        "TicketEscalated",
    ]


OtherServer = Callable[..., SlaWatcher]


@pytest.fixture
async def other_server(database: Database) -> AsyncIterator[OtherServer]:
    """Watchers of other servers: each with its own engine and connections."""
    engines: list[AsyncEngine] = []

    def make(world: World, **options: Any) -> SlaWatcher:
        engine = create_engine(database.url)
        engines.append(engine)
        return SlaWatcher(
            sessions=session_factory(engine),
            bus=world.bus,
            clock=world.clock,
            setup=world.keeper.setup,
            **options,
        )

    yield make
    for engine in engines:
        await engine.dispose()


async def test_a_restart_between_warning_and_breach_gives_one_warning_and_one_breach(
    database: Database,
    clock: FakeClock,
    watchers: list[SlaWatcher],
    other_server: OtherServer,
) -> None:
    world = await World.create(database, clock)
    ticket = await world.open()
    first = running(watchers, other_server(world, interval=60))
    clock.set(WARNING + SECOND)
    first.poke()
    await until(lambda: bool(world.of(SlaWarned)))
    await first.stop()

    clock.set(BREACH + SECOND)
    second = running(watchers, other_server(world, interval=60))
    await until(lambda: bool(world.of(TicketEscalated)))
    await asyncio.sleep(0.1)  # anything more would show up now
    assert (len(world.of(SlaWarned)), len(world.of(SlaBreached))) == (1, 1)
    assert first.fired == 1 and second.fired == 2
    lines = [text or "" for _, text in await world.sla_history(ticket)]
    assert sum("warning" in line for line in lines) == 1
    assert sum("breached" in line for line in lines) == 1


async def test_after_a_long_outage_the_missed_steps_fire_once_each_in_order(
    database: Database, clock: FakeClock
) -> None:
    world = await World.create(database, clock)
    ticket = await world.open()
    clock.set(datetime(2026, 1, 20, tzinfo=UTC))
    watcher = world.watcher(batch=2)
    assert await watcher.fire_due() == 10
    assert await watcher.fire_due() == 0
    fired = [
        (e.clock, type(e).__name__, getattr(e, "level", 0))
        for e in world.events
        if isinstance(e, SlaEvent)
    ]
    assert fired == [
        ("first_response", "SlaWarned", 0),
        ("first_response", "SlaBreached", 0),
        ("first_response", "TicketEscalated", 1),
        ("first_response", "TicketEscalated", 2),
        ("first_response", "TicketEscalated", 3),
        ("resolution", "SlaWarned", 0),
        ("resolution", "SlaBreached", 0),
        ("resolution", "TicketEscalated", 1),
        ("resolution", "TicketEscalated", 2),
        ("resolution", "TicketEscalated", 3),
    ]
    assert await world.pending(ticket) == []
    assert (await world.clocks(ticket))["first_response"].breached_at == BREACH


async def test_two_watchers_on_one_database_fire_each_timer_once(
    database: Database, clock: FakeClock, other_server: OtherServer
) -> None:
    world = await World.create(database, clock)
    for _ in range(8):
        await world.open()
    clock.set(datetime(2026, 2, 1, tzinfo=UTC))
    one = other_server(world, batch=3)
    two = other_server(world, batch=3)
    counts = await asyncio.gather(one.fire_due(), two.fire_due())
    assert sum(counts) == 80
    fired = [
        (e.ticket_id, e.clock, e.name, getattr(e, "level", 0))
        for e in world.events
        if isinstance(e, SlaWarned | SlaBreached | TicketEscalated)
    ]
    assert len(fired) == len(set(fired)) == 80
    async with database.sessions() as session:
        unfired = await session.scalar(
            select(func.count()).select_from(SlaTimer).where(SlaTimer.fired_at.is_(None))
        )
    assert unfired == 0


async def test_an_escalation_is_recorded_and_its_mail_kept_while_the_mail_server_is_down(
    database: Database, clock: FakeClock
) -> None:
    world = await World.create(database, clock)
    ticket = await world.open()
    sender = MailSender(
        sessions=database.sessions, clock=clock, relay=relay_to(MailServer().port)
    )  # nothing listens on that port
    clock.set(BREACH + timedelta(hours=16))  # Tuesday: level 2 (2h past breach) is due
    await world.watcher(mail=sender).fire_due()
    assert await sender.send_due() == 0
    assert [e.level for e in world.of(TicketEscalated)] == [1, 2]
    assert "first response escalated to level 2: team lead Tom Lead" in [
        text for _, text in await world.sla_history(ticket)
    ]
    async with database.sessions() as session:
        (mail,) = await outbox_messages(session)
    assert (mail.to, mail.attempts, mail.sent_at) == (["tom@example.com"], 1, None)
    assert mail.next_attempt_at is not None and mail.next_attempt_at > clock.now()


async def test_stopping_the_watcher_cancels_and_awaits_its_task(
    database: Database, clock: FakeClock
) -> None:
    world = await World.create(database, clock)
    watcher = world.watcher(interval=60)
    watcher.start()
    await until(lambda: watcher.rounds >= 1)
    assert watcher.running
    await watcher.stop()
    assert not watcher.running


async def test_the_app_keeps_clocks_for_api_tickets_and_a_change_pokes_its_watcher(
    settings: Settings, database: Database, clock: FakeClock
) -> None:
    ids = await _seed_people(database, clock)
    bus = EventBus()
    seen: list[DomainEvent] = []

    async def keep(event: DomainEvent) -> None:
        seen.append(event)

    bus.subscribe(DomainEvent, keep)
    client = TestClient(TestServer(create_app(settings, clock=clock, bus=bus)))
    await client.start_server()
    try:
        login = await client.post(
            "/api/v1/auth/login", json={"username": "alice", "password": PASSWORD}
        )
        headers = {"Authorization": f"Bearer {(await login.json())['token']}"}
        created = await client.post(
            "/api/v1/tickets",
            json={"subject": "No dial tone", "assignee_id": ids["alice"]},
            headers=headers,
        )
        ticket = await created.json()
        history = await (
            await client.get(f"/api/v1/tickets/{ticket['id']}/history", headers=headers)
        ).json()
        assert ("sla:first_response", "first response started") in [
            (h["field"], h["new"]) for h in history["items"]
        ]
        clock.set(WARNING)
        changed = await client.patch(
            f"/api/v1/tickets/{ticket['id']}",
            json={"version": ticket["version"], "subject": "No dial tone at all"},
            headers=headers,
        )
        assert changed.status == 200
        await until(lambda: any(isinstance(e, SlaWarned) for e in seen), timeout=2)
        (warned,) = [e for e in seen if isinstance(e, SlaWarned)]
        assert warned.recipients.agents == (ids["alice_agent"],)
        assert warned.due_at == BREACH
    finally:
        await client.close()
