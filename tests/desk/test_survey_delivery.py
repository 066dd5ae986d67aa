"""Survey e-mail reaches a real SMTP server (aiosmtpd on localhost): once, after
the delay, with the five faces as links — and a burst written while the server
is down arrives, each message once, after it comes back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from desk.clock import FakeClock
from desk.customers import CustomerDraft, EmailIn, create_customer
from desk.events import EventBus, UnitOfWork
from desk.mail_sender import MailSender
from desk.models import Survey, TicketStatus
from desk.outbox import enqueue_mail, outbox_messages
from tests.conftest import Database
from tests.desk.mail_support import MailServer, relay_to
from tests.desk.survey_support import (
    BASE_URL,
    LINK,
    People,
    open_ticket_for,
    seed_people,
    set_status,
    solve,
    survey_settings,
    surveying_sessions,
)


@pytest.fixture
async def mail_server() -> AsyncIterator[MailServer]:
    server = await MailServer().start()
    yield server
    await server.stop()


async def _surveys(database: Database) -> list[Survey]:
    async with database.sessions() as session:
        return list(await session.scalars(select(Survey).order_by(Survey.id)))


def _sender(database: Database, clock: FakeClock, port: int) -> MailSender:
    return MailSender(
        sessions=database.sessions, clock=clock, relay=relay_to(port), jitter=lambda: 0.0
    )


async def test_solving_a_ticket_sends_exactly_one_survey_email_after_the_delay(
    database: Database, clock: FakeClock, mail_server: MailServer
) -> None:
    people = await seed_people(database, clock)
    sessions = surveying_sessions(database, survey_settings(mail_server.port))
    sender = _sender(database, clock, mail_server.port)
    ticket_id = await open_ticket_for(sessions, clock, people, subject="Invoice twice")
    await solve(sessions, clock, ticket_id)

    assert await sender.send_due() == 0
    clock.advance(timedelta(minutes=29, seconds=59))
    assert await sender.send_due() == 0
    clock.advance(timedelta(seconds=1))
    assert await sender.send_due() == 1
    clock.advance(timedelta(days=1))
    assert await sender.send_due() == 0

    [mail] = mail_server.received
    assert mail.rcpt_tos == ["erika@example.org"]
    assert str(mail.message["Subject"]) == f"How did we do? (request #{ticket_id})"
    text = mail.message.get_body(("plain",))
    html = mail.message.get_body(("html",))
    assert text is not None and html is not None
    plain = text.get_content()
    found = LINK.search(plain)
    assert found is not None
    for score in range(1, 6):
        assert f"{BASE_URL}/s/{found.group(1)}?csat={score}" in plain
        assert f'href="{BASE_URL}/s/{found.group(1)}?csat={score}"' in html.get_content()
    assert "Invoice twice" in plain and "Erika Mustermann" in plain


async def test_a_chinese_speaking_customer_gets_the_email_in_chinese(
    database: Database, clock: FakeClock, mail_server: MailServer
) -> None:
    people = await seed_people(database, clock, language="zh")
    sessions = surveying_sessions(database, survey_settings(mail_server.port))
    ticket_id = await open_ticket_for(sessions, clock, people)
    await solve(sessions, clock, ticket_id)
    clock.advance(timedelta(minutes=30))

    await _sender(database, clock, mail_server.port).send_due()

    [mail] = mail_server.received
    assert "我们的服务如何" in str(mail.message["Subject"])


async def _more_customers(database: Database, clock: FakeClock, count: int) -> list[int]:
    ids = []
    async with UnitOfWork(sessions=database.sessions, bus=EventBus()) as uow:
        for n in range(count):
            customer = await create_customer(
                uow,
                CustomerDraft(name=f"Customer {n}", emails=[EmailIn(address=f"c{n}@example.org")]),
                region="DE",
                now=clock.now(),
            )
            ids.append(customer.id)
        await uow.commit()
    return ids


async def test_smtp_down_during_a_burst_delivers_every_survey_once_after_it_returns(
    database: Database, clock: FakeClock, mail_server: MailServer
) -> None:
    people = await seed_people(database, clock)
    sessions = surveying_sessions(database, survey_settings(mail_server.port))
    customers = await _more_customers(database, clock, 25)
    for customer_id in customers:
        ticket_id = await open_ticket_for(
            sessions, clock, People(people.team, people.lead, people.agent, customer_id)
        )
        await solve(sessions, clock, ticket_id)
    clock.advance(timedelta(minutes=30))
    sender = _sender(database, clock, mail_server.port)
    await mail_server.stop()

    assert await sender.send_due() == 0  # every attempt failed, each kept for a retry
    await mail_server.start()
    clock.advance(timedelta(seconds=30))  # the first backoff
    delivered = await sender.send_due()
    clock.advance(timedelta(hours=2))
    delivered += await sender.send_due()

    assert delivered == 25
    recipients = sorted(to for mail in mail_server.received for to in mail.rcpt_tos)
    assert recipients == sorted(f"c{n}@example.org" for n in range(25))
    async with database.sessions() as session:
        rows = await outbox_messages(session)
    assert all(row.sent_at is not None and row.attempts == 2 for row in rows)


async def test_a_survey_mail_a_sender_has_tried_is_not_withdrawn(
    database: Database, clock: FakeClock, mail_server: MailServer
) -> None:
    people = await seed_people(database, clock)
    sessions = surveying_sessions(database, survey_settings(mail_server.port))
    ticket_id = await open_ticket_for(sessions, clock, people)
    await solve(sessions, clock, ticket_id)
    clock.advance(timedelta(minutes=30))
    await mail_server.stop()
    await _sender(database, clock, mail_server.port).send_due()  # tried, failed, retry kept
    await mail_server.start()

    await set_status(sessions, clock, ticket_id, TicketStatus.OPEN)

    [survey] = await _surveys(database)
    assert survey.withdrawn_at is None  # it may be on its way: its link keeps working
    clock.advance(timedelta(minutes=1))
    assert await _sender(database, clock, mail_server.port).send_due() == 1


async def test_a_not_before_time_in_the_past_is_refused(
    database: Database, clock: FakeClock
) -> None:
    async with database.sessions() as session:
        with pytest.raises(ValueError, match="not_before"):
            await enqueue_mail(
                session,
                dedupe_key="survey:1",
                to=["a@example.org"],
                subject="s",
                body="b",
                now=clock.now(),
                not_before=clock.now() - timedelta(seconds=1),
            )
