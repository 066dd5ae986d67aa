"""Suggestions beside a ticket and in the screen pop, each with its reason."""

from __future__ import annotations

import pytest

from desk.clock import FakeClock
from desk.models import TicketStatus
from kb.articles import change_state, create_article
from kb.index import RANK_BUDGET
from kb.options import KbOptions
from kb.records import ArticleState, Audience
from kb.shapes import ArticleDraft, TransitionIn
from kb.suggestions import key_terms, pop_articles, suggest_for_customer, suggest_for_text
from tests.conftest import Database
from tests.kb.conftest import Staff, add_customer, add_ticket, publish


def test_key_terms_take_the_subject_first_then_the_descriptions_frequent_words() -> None:
    terms = key_terms(
        "Charged twice for order 12345",
        "My card was charged twice. The second charge appeared on my card yesterday.",
    )
    assert terms[:2] == ["charg", "twic"]
    assert "card" in terms
    assert "12345" not in terms


async def test_a_ticket_being_written_gets_the_matching_articles_with_a_reason(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    refund = await publish(
        database,
        staff,
        clock,
        options,
        title="I was charged twice",
        body="A second charge is usually a pending authorisation.",
    )
    await publish(database, staff, clock, options, title="Router lights")
    async with database.sessions() as session:
        found = await suggest_for_text(
            session, "Double charge on my card", "I was charged twice for one order."
        )
    assert [s.article_id for s in found] == [refund.id]
    assert found[0].reason == "matches “charge”, “twice”"
    assert found[0].url == f"/help/en/articles/{refund.slug}"


async def test_internal_articles_are_suggested_to_agents_with_their_api_address(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    note = await publish(
        database,
        staff,
        clock,
        options,
        title="Refund exceptions for VIPs",
        audience=Audience.INTERNAL,
    )
    async with database.sessions() as session:
        found = await suggest_for_text(session, "VIP refund", "")
    assert [(s.article_id, s.url) for s in found] == [(note.id, f"/api/v1/kb/articles/{note.id}")]


async def test_the_pop_suggests_from_the_callers_open_tickets_only(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    router = await publish(database, staff, clock, options, title="Router shows a red light")
    await publish(database, staff, clock, options, title="Change the delivery address")
    customer = await add_customer(database, clock)
    open_one = await add_ticket(
        database,
        clock,
        subject="Router red light again",
        description="No internet since this morning.",
        customer_id=customer,
    )
    await add_ticket(
        database,
        clock,
        subject="Delivery address wrong",
        status=TicketStatus.SOLVED,
        customer_id=customer,
    )
    async with database.sessions() as session:
        found = await suggest_for_customer(session, customer)
    assert [(s.article_id, s.ticket_id) for s in found] == [(router.id, open_one)]
    assert found[0].reason == (
        f"matches “Router”, “red”, “light” in open ticket #{open_one} “Router red light again”"
    )


async def test_a_caller_without_open_tickets_gets_no_suggestions(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    await publish(database, staff, clock, options, title="Router shows a red light")
    customer = await add_customer(database, clock)
    async with database.sessions() as session:
        assert await suggest_for_customer(session, customer) == []


async def test_the_pop_sees_an_article_published_a_moment_ago_and_forgets_an_archived_one(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    customer = await add_customer(database, clock)
    await add_ticket(database, clock, subject="退款什么时候到账", customer_id=customer)
    async with database.sessions() as session:
        assert await suggest_for_customer(session, customer) == []
    article = await publish(
        database, staff, clock, options, title="申请退款需要多长时间到账", language="zh"
    )
    async with database.sessions() as session:
        found = await suggest_for_customer(session, customer)
        assert [s.article_id for s in found] == [article.id]
        assert "退款" in found[0].matched
        await change_state(
            session,
            article.id,
            TransitionIn(to=ArticleState.ARCHIVED, version=1),
            actor=staff.reviewer,
            now=clock.now(),
        )
        await session.commit()
    async with database.sessions() as session:
        assert await suggest_for_customer(session, customer) == []


async def test_the_pop_gets_its_articles_as_plain_data(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    router = await publish(database, staff, clock, options, title="Router shows a red light")
    customer = await add_customer(database, clock)
    ticket = await add_ticket(database, clock, subject="Router light is red", customer_id=customer)
    async with database.sessions() as session:
        found = await pop_articles(session, customer_id=customer, language="zh")
    assert found == [
        {
            "article_id": router.id,
            "title": "Router shows a red light",
            "slug": "router-shows-a-red-light",
            "language": "en",
            "audience": "public",
            "summary": "",
            "url": "/help/en/articles/router-shows-a-red-light",
            "reason": f"matches “Router”, “light”, “red” in open ticket #{ticket} "
            "“Router light is red”",
            "matched": ["router", "light", "red"],
            "ticket_id": ticket,
        }
    ]


async def test_drafts_that_rank_first_are_passed_over_for_live_articles(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    async with database.sessions() as session:
        for n in range(12):
            await create_article(
                session,
                ArticleDraft(title=f"Router router draft {n}"),
                actor=staff.agent,
                now=clock.now(),
                options=options,
            )
        await session.commit()
    live = await publish(database, staff, clock, options, title="Modem", body="Also a router.")
    async with database.sessions() as session:
        found = await suggest_for_text(session, "router", "")
    assert [s.article_id for s in found] == [live.id]


async def test_a_pop_whose_words_are_all_common_suggests_the_articles_with_two_of_them(
    database: Database,
    staff: Staff,
    clock: FakeClock,
    options: KbOptions,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A budget of one article makes every word "common", as thousands of matches would.
    monkeypatch.setitem(RANK_BUDGET, "sqlite", 1)
    monkeypatch.setitem(RANK_BUDGET, "postgresql", 1)
    both = await publish(database, staff, clock, options, title="Printer paper jam")
    await publish(database, staff, clock, options, title="Printer offline")
    await publish(database, staff, clock, options, title="Toner", body="printer")
    paper = await publish(database, staff, clock, options, title="Paper sizes")
    customer = await add_customer(database, clock)
    await add_ticket(database, clock, subject="Printer paper stuck", customer_id=customer)
    async with database.sessions() as session:
        found = [s.article_id for s in await suggest_for_customer(session, customer)]
    # "paper" (2 articles) is rarer than "printer" (3): the one article with both words
    # first; as too few have both, then those with "paper" in the title.
    assert found == [both.id, paper.id]
