"""Survey test set-up: settings with surveys and e-mail on, people, a customer, and
tickets solved through desk's own change path."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from desk.clock import FakeClock
from desk.customers import CustomerDraft, EmailIn, create_customer
from desk.db import session_factory
from desk.events import EventBus, UnitOfWork
from desk.models import Role, TicketChannel, TicketStatus
from desk.outbox import Delivery
from desk.settings import Settings
from desk.survey_policy import SurveyPolicy
from desk.survey_tokens import TokenKey
from desk.surveys import SurveyScheduler, attach
from desk.ticket_changes import TicketPatch, change_ticket
from desk.tickets import TicketDraft, get_ticket, open_ticket
from desk.users import AgentIn, TeamDraft, UserDraft, create_team, create_user
from tests.conftest import Database
from tests.desk.mail_support import mail_settings

BASE_URL = "https://desk.example.com"
LINK = re.compile(re.escape(BASE_URL) + r"/s/([A-Za-z0-9_-]+)")


def survey_settings(port: int = 2525, **overrides: Any) -> Settings:
    return mail_settings(
        port,
        surveys_enabled=True,
        surveys_base_url=BASE_URL,
        **overrides,
    )


@dataclass
class CountedDelivery:
    """Stands in for the mail sender: counts how often it was told mail waits."""

    pokes: int = 0

    def poke(self) -> None:
        self.pokes += 1


def scheduler_for(settings: Settings, delivery: Delivery | None = None) -> SurveyScheduler:
    return SurveyScheduler(
        policy=SurveyPolicy.from_settings(settings),
        key=TokenKey.from_secret(settings.secret_key.get_secret_value()),
        delivery=delivery,
    )


def surveying_sessions(
    database: Database, settings: Settings, delivery: Delivery | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions whose writes trigger surveys, as the app's are."""
    sessions = session_factory(database.engine)
    attach(sessions, scheduler_for(settings, delivery))
    return sessions


@dataclass
class People:
    team: int
    lead: int
    agent: int  # a user id
    customer: int


async def seed_people(
    database: Database, clock: FakeClock, *, language: str = "en", email: str = "erika@example.org"
) -> People:
    """A team led by Tom (a supervisor), Alice its agent, and Erika, a customer."""
    async with database.sessions() as session:
        lead = await create_user(
            session,
            UserDraft(
                username="tom",
                display_name="Tom Lead",
                password="correct horse battery",
                role=Role.SUPERVISOR,
            ),
            now=clock.now(),
        )
        team = await create_team(
            session, TeamDraft(name="Support", lead_user_id=lead.id), now=clock.now()
        )
        agent = await create_user(
            session,
            UserDraft(
                username="alice",
                display_name="Alice",
                password="correct horse battery",
                agent=AgentIn(extension="1001", team_id=team.id),
            ),
            now=clock.now(),
        )
        await session.commit()
    async with UnitOfWork(sessions=database.sessions, bus=EventBus()) as uow:
        customer = await create_customer(
            uow,
            CustomerDraft(
                name="Erika Mustermann",
                language=language,
                emails=[EmailIn(address=email)] if email else [],
            ),
            region="DE",
            now=clock.now(),
        )
        await uow.commit()
    return People(team=team.id, lead=lead.id, agent=agent.id, customer=customer.id)


async def open_ticket_for(
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    people: People,
    *,
    subject: str = "Invoice twice",
    customer_id: int | None = -1,
) -> int:
    async with sessions() as session:
        ticket, _ = await open_ticket(
            session,
            TicketDraft(
                subject=subject,
                channel=TicketChannel.EMAIL,
                customer_id=people.customer if customer_id == -1 else customer_id,
                assignee_id=people.agent,
            ),
            actor_id=people.agent,
            now=clock.now(),
        )
        await session.commit()
        return ticket.id


async def set_status(
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    ticket_id: int,
    status: TicketStatus,
    **extra: Any,
) -> None:
    async with sessions() as session:
        ticket = await get_ticket(session, ticket_id)
        await change_ticket(
            session,
            ticket_id,
            TicketPatch(version=ticket.version, status=status, **extra),
            actor=None,
            now=clock.now(),
        )
        await session.commit()


async def solve(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, ticket_id: int
) -> None:
    await set_status(sessions, clock, ticket_id, TicketStatus.SOLVED)


HALF_HOUR = timedelta(minutes=30)
