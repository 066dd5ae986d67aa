"""Articles and tickets: one-click links and inserts, and solved tickets as drafts."""

from __future__ import annotations

import pytest

from desk.clock import FakeClock
from desk.errors import Conflict
from desk.models import TicketStatus
from kb.options import KbOptions
from kb.records import Audience, LinkKind
from kb.ticket_links import draft_from_ticket, link_article, ticket_links
from tests.conftest import Database
from tests.kb.conftest import Staff, add_customer, add_ticket, publish


async def test_linking_an_article_to_a_ticket_counts_once(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    article = await publish(database, staff, clock, options, title="Router red light")
    ticket = await add_ticket(database, clock, subject="No internet")
    async with database.sessions() as session:
        first = await link_article(
            session, article.id, ticket, LinkKind.LINKED, actor=staff.agent, now=clock.now()
        )
        second = await link_article(
            session, article.id, ticket, LinkKind.LINKED, actor=staff.agent, now=clock.now()
        )
        await session.commit()
        assert (first.created, second.created, second.article.link_count) == (True, False, 1)
        assert second.article.last_used_at == clock.now()
        assert [(a.id, link.kind) for link, a in await ticket_links(session, ticket)] == [
            (article.id, "linked")
        ]


async def test_inserting_a_public_article_gives_the_text_for_the_reply(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    article = await publish(
        database, staff, clock, options, title="Router red light", summary="Restart the router."
    )
    ticket = await add_ticket(database, clock, subject="No internet")
    async with database.sessions() as session:
        outcome = await link_article(
            session, article.id, ticket, LinkKind.INSERTED, actor=staff.agent, now=clock.now()
        )
    assert outcome.reply_text == (
        "Router red light\n\nRestart the router.\n\n/help/en/articles/router-red-light"
    )


async def test_an_internal_article_is_never_inserted_into_a_reply(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    article = await publish(
        database, staff, clock, options, title="Goodwill limits", audience=Audience.INTERNAL
    )
    ticket = await add_ticket(database, clock, subject="Compensation")
    async with database.sessions() as session:
        with pytest.raises(Conflict):
            await link_article(
                session, article.id, ticket, LinkKind.INSERTED, actor=staff.agent, now=clock.now()
            )


async def test_a_solved_ticket_becomes_a_draft_in_one_step(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    customer = await add_customer(database, clock, language="zh")
    ticket = await add_ticket(
        database,
        clock,
        subject="路由器亮红灯",
        description="无法上网。",
        status=TicketStatus.SOLVED,
        customer_id=customer,
        replies=("请重启路由器。",),
    )
    async with database.sessions() as session:
        article, created = await draft_from_ticket(
            session, ticket, actor=staff.agent, now=clock.now(), options=options
        )
        again, created_again = await draft_from_ticket(
            session, ticket, actor=staff.agent, now=clock.now(), options=options
        )
        await session.commit()
        links = await ticket_links(session, ticket)
    assert (created, created_again, again.id) == (True, False, article.id)
    assert (article.title, article.language, article.state, article.audience) == (
        "路由器亮红灯",
        "zh",
        "draft",
        "internal",
    )
    assert article.body_md == "## Problem\n\n无法上网。\n\n## Solution\n\n请重启路由器。\n"
    assert article.source_ticket_id == ticket
    assert [link.kind for link, _ in links] == ["source"]


async def test_an_open_ticket_does_not_become_an_article(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    ticket = await add_ticket(database, clock, subject="Still broken")
    async with database.sessions() as session:
        with pytest.raises(Conflict):
            await draft_from_ticket(
                session, ticket, actor=staff.agent, now=clock.now(), options=options
            )
