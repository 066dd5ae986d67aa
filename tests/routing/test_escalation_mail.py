"""Escalation e-mail: the watcher writes it into the outbox in the transaction
that fires the escalation, once per ticket, clock, cycle and level, and the
mail sender delivers it to a real SMTP server (aiosmtpd on localhost)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from desk.clock import FakeClock
from desk.db import create_engine, session_factory
from desk.mail_sender import MailSender
from desk.models import OutboxMessage, SlaTimer
from desk.outbox import outbox_messages
from routing.sla_keeper import TicketEscalated
from routing.watcher import SlaWatcher
from tests.conftest import Database
from tests.desk.mail_support import MailServer, relay_to
from tests.routing.sla_support import World

# The standard policy's first response is breached on Monday 5 January 2026 at
# 18:00 in Berlin; 16 hours later (Tuesday 10:00) two business hours have run
# past it, so level 1 (the assignee, no e-mail) and level 2 (the team lead,
# Tom, by e-mail) are due, and level 3 (the supervisors, 10h) is not.
BREACH = datetime(2026, 1, 5, 17, tzinfo=UTC)
LEVEL_2_DUE = BREACH + timedelta(hours=16)


@pytest.fixture
async def mail_server() -> AsyncIterator[MailServer]:
    server = await MailServer().start()
    yield server
    await server.stop()


def mail_sender(world: World, port: int) -> MailSender:
    return MailSender(sessions=world.database.sessions, clock=world.clock, relay=relay_to(port))


async def outbox(database: Database) -> list[OutboxMessage]:
    async with database.sessions() as session:
        return await outbox_messages(session)


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_an_escalation_that_asks_for_e_mail_is_delivered_to_the_person_it_reaches(
    database: Database, clock: FakeClock, mail_server: MailServer
) -> None:
    world = await World.create(database, clock)
    ticket = await world.open()
    sender = mail_sender(world, mail_server.port)
    clock.set(LEVEL_2_DUE)
    await world.watcher(mail=sender).fire_due()
    assert await sender.send_due() == 1

    (mail,) = mail_server.received
    assert mail.rcpt_tos == ["tom@example.com"]
    assert mail.message["Subject"] == f"Ticket #{ticket} escalated (level 2): first response"
    assert mail.message.get_content() == (
        f"Ticket #{ticket}: first response under policy 'Standard', "
        "due 2026-01-05T17:00:00+00:00, escalated to team lead Tom Lead.\n"
    )


async def test_the_escalation_and_its_mail_are_written_in_one_transaction(
    database: Database, clock: FakeClock, mail_server: MailServer
) -> None:
    world = await World.create(database, clock)
    ticket = await world.open()
    clock.set(LEVEL_2_DUE)
    await world.watcher(mail=mail_sender(world, mail_server.port)).fire_due()
    # Before any sender ran: the escalation is on the audit trail and its mail in the outbox.
    assert "first response escalated to level 2: team lead Tom Lead" in [
        text for _, text in await world.sla_history(ticket)
    ]
    (message,) = await outbox(database)
    assert message.dedupe_key == f"escalation:{ticket}:first_response:1:2"  # cycle 1, level 2
    assert (message.to, message.created_at, message.next_attempt_at) == (
        ["tom@example.com"],
        LEVEL_2_DUE,
        LEVEL_2_DUE,
    )


async def test_with_e_mail_off_an_escalation_writes_no_mail(
    database: Database, clock: FakeClock
) -> None:
    world = await World.create(database, clock)
    await world.open()
    clock.set(LEVEL_2_DUE)
    await world.watcher().fire_due()
    assert [event.level for event in world.of(TicketEscalated)] == [1, 2]
    assert await outbox(database) == []


async def test_two_watchers_firing_at_once_deliver_one_escalation_e_mail(
    database: Database, clock: FakeClock, mail_server: MailServer
) -> None:
    world = await World.create(database, clock)
    await world.open()
    sender = mail_sender(world, mail_server.port)
    clock.set(LEVEL_2_DUE)
    engines = [create_engine(database.url) for _ in range(2)]
    try:
        watchers = [
            SlaWatcher(
                sessions=session_factory(engine),
                bus=world.bus,
                clock=clock,
                setup=world.keeper.setup,
                batch=1,
                mail=sender,
            )
            for engine in engines
        ]
        await asyncio.gather(*(watcher.fire_due() for watcher in watchers))
        await asyncio.gather(*(watcher.fire_due() for watcher in watchers))
    finally:
        for engine in engines:
            await engine.dispose()
    await sender.send_due()
    await sender.send_due()
    assert [mail.rcpt_tos for mail in mail_server.received] == [["tom@example.com"]]


async def test_an_escalation_fired_again_in_the_same_clock_cycle_is_not_mailed_again(
    database: Database, clock: FakeClock, mail_server: MailServer
) -> None:
    world = await World.create(database, clock)
    await world.open()
    sender = mail_sender(world, mail_server.port)
    watcher = world.watcher(mail=sender)
    clock.set(LEVEL_2_DUE)
    await watcher.fire_due()
    await sender.send_due()
    # As if the claim of the escalation had been lost and the timer fired again.
    async with database.sessions() as session, session.begin():
        await session.execute(update(SlaTimer).values(fired_at=None))
    clock.advance(60)
    await watcher.fire_due()
    await sender.send_due()
    assert [event.level for event in world.of(TicketEscalated)] == [1, 2, 1, 2]
    assert len(mail_server.received) == 1
    assert len(await outbox(database)) == 1


async def test_the_running_watcher_pokes_the_running_sender_after_its_commit(
    database: Database, clock: FakeClock, mail_server: MailServer
) -> None:
    world = await World.create(database, clock)
    await world.open()
    sender = mail_sender(world, mail_server.port)
    watcher = world.watcher(interval=60, mail=sender)
    sender.start()
    watcher.start()
    try:
        await until(lambda: watcher.rounds >= 1 and sender.rounds >= 1)
        clock.set(LEVEL_2_DUE)
        watcher.poke()  # both now sleep up to 60 s unless woken
        await until(lambda: len(mail_server.received) == 1, timeout=3)
    finally:
        await watcher.stop()
        await sender.stop()
    assert mail_server.received[0].rcpt_tos == ["tom@example.com"]
