"""Two server processes, one database, many due timers: every warning, breach
and escalation fires exactly once (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite:
an atomic UPDATE … RETURNING claim)."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from desk.clock import FakeClock
from desk.db import create_engine, session_factory
from desk.events import DomainEvent, EventBus
from desk.models import SlaTimer, TicketChange
from routing.sla_keeper import SlaEvent, TicketEscalated
from routing.watcher import SlaWatcher
from tests.conftest import Database
from tests.routing.sla_support import World, setup

ROOT = Path(__file__).resolve().parents[2]
TICKETS = 30
TIMERS_PER_TICKET = 10  # two clocks, each: warning, breach, three escalation levels
LATER = datetime(2026, 3, 2, tzinfo=UTC)  # weeks after the tickets were opened
CHILD = "from tests.routing.test_two_processes import child; child()"


def child() -> None:
    """One 'server': says ready, waits for go (stdin), runs a watcher task on the
    database until nothing is left to fire, and prints what it announced."""
    print(json.dumps(asyncio.run(_serve(sys.argv[1]))), flush=True)


async def _serve(url: str) -> list[list[object]]:
    engine = create_engine(url)
    bus = EventBus()
    fired: list[list[object]] = []

    async def keep(event: DomainEvent) -> None:
        if isinstance(event, SlaEvent):
            level = event.level if isinstance(event, TicketEscalated) else 0
            fired.append([event.ticket_id, event.clock, event.name, level])

    bus.subscribe(DomainEvent, keep)
    watcher = SlaWatcher(
        sessions=session_factory(engine),
        bus=bus,
        clock=FakeClock(LATER),
        setup=setup(),
        interval=0.05,
        batch=5,
    )
    await watcher.next_due()  # connected
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    watcher.start()
    try:
        while await watcher.next_due() is not None:
            await asyncio.sleep(0.02)
    finally:
        await watcher.stop()
        await engine.dispose()
    return fired


async def test_two_server_processes_on_one_database_fire_every_timer_exactly_once(
    database: Database, clock: FakeClock
) -> None:
    world = await World.create(database, clock)
    for _ in range(TICKETS):
        await world.open()
    servers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD,
            database.url,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    try:
        for server in servers:
            assert server.stdout is not None
            ready = await asyncio.wait_for(server.stdout.readline(), 30)
            assert ready.strip() == b"ready"
        for server in servers:  # both start claiming at the same moment
            assert server.stdin is not None
            server.stdin.write(b"go\n")
        results = [await asyncio.wait_for(server.communicate(), 60) for server in servers]
    finally:
        for server in servers:
            if server.returncode is None:
                server.kill()
                await server.wait()
    for server, (_, errors) in zip(servers, results, strict=True):
        assert server.returncode == 0, errors.decode()
    fired = [json.loads(out) for out, _ in results]
    everything = [tuple(item) for items in fired for item in items]
    assert len(everything) == len(set(everything)) == TICKETS * TIMERS_PER_TICKET
    if database.backend == "postgres":
        # Both claim side by side, skipping each other's rows (on SQLite one
        # writer at a time may well take every batch).
        assert all(fired), "both servers should have had timers to fire"

    async with database.sessions() as session:
        unfired = await session.scalar(
            select(func.count()).select_from(SlaTimer).where(SlaTimer.fired_at.is_(None))
        )
        steps = await session.scalar(
            select(func.count())
            .select_from(TicketChange)
            .where(
                TicketChange.field.like("sla:%"),
                TicketChange.new.like("%warning (%")
                | TicketChange.new.like("%breached (%")
                | TicketChange.new.like("%escalated to level%"),
            )
        )
    assert unfired == 0
    assert steps == TICKETS * TIMERS_PER_TICKET
