"""Knowledge-base fixtures: people who write and review, and a way to write articles fast."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from desk.clock import FakeClock
from desk.models import Customer, MessageKind, Role, Ticket, TicketMessage, TicketStatus, User
from desk.users import AgentIn, UserDraft, create_user
from kb.articles import change_state, create_article
from kb.options import KbOptions
from kb.records import ArticleState, Audience, KbArticle
from kb.shapes import ArticleDraft, TransitionIn
from tests.conftest import Database


@dataclass
class Staff:
    agent: User
    reviewer: User


@pytest.fixture
def options() -> KbOptions:
    return KbOptions()


@pytest.fixture
async def staff(database: Database, clock: FakeClock) -> Staff:
    async with database.sessions() as session:
        agent = await create_user(
            session,
            UserDraft(
                username="writer",
                display_name="Wendy Writer",
                password="correct horse battery",
                agent=AgentIn(extension="2001"),
            ),
            now=clock.now(),
        )
        reviewer = await create_user(
            session,
            UserDraft(
                username="reviewer",
                display_name="Rita Reviewer",
                password="correct horse battery",
                role=Role.SUPERVISOR,
            ),
            now=clock.now(),
        )
        await session.commit()
        return Staff(agent, reviewer)


async def publish(
    database: Database,
    staff: Staff,
    clock: FakeClock,
    options: KbOptions,
    *,
    title: str,
    body: str = "",
    language: str = "en",
    audience: Audience = Audience.PUBLIC,
    tags: list[str] | None = None,
    summary: str = "",
    category_id: int | None = None,
) -> KbArticle:
    """Write an article as the agent and publish it as the reviewer, committed."""
    async with database.sessions() as session:
        article = await create_article(
            session,
            ArticleDraft(
                title=title,
                body=body,
                language=language,
                audience=audience,
                tags=tags or [],
                summary=summary,
                category_id=category_id,
            ),
            actor=staff.agent,
            now=clock.now(),
            options=options,
        )
        await change_state(
            session,
            article.id,
            TransitionIn(to=ArticleState.PUBLISHED, version=article.head_version),
            actor=staff.reviewer,
            now=clock.now(),
        )
        await session.commit()
        return article


async def add_customer(database: Database, clock: FakeClock, *, language: str = "en") -> int:
    async with database.sessions() as session:
        customer = Customer(
            kind="person",
            name="Chen Jing",
            search_name="chen jing",
            language=language,
            created_at=clock.now(),
            updated_at=clock.now(),
        )
        session.add(customer)
        await session.commit()
        return customer.id


async def add_ticket(
    database: Database,
    clock: FakeClock,
    *,
    subject: str,
    description: str = "",
    status: TicketStatus = TicketStatus.OPEN,
    customer_id: int | None = None,
    replies: tuple[str, ...] = (),
) -> int:
    async with database.sessions() as session:
        ticket = Ticket(
            subject=subject,
            description=description,
            status=status.value,
            priority="normal",
            channel="phone",
            customer_id=customer_id,
            tags=[],
            created_at=clock.now(),
            updated_at=clock.now(),
        )
        session.add(ticket)
        await session.flush()
        for body in replies:
            session.add(
                TicketMessage(
                    ticket_id=ticket.id,
                    kind=MessageKind.PUBLIC_REPLY.value,
                    body=body,
                    created_at=clock.now(),
                )
            )
        await session.commit()
        return ticket.id
