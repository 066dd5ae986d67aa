# ruff: noqa: RUF001  (Chinese text uses full-width punctuation on purpose)
"""Search finds articles by their words, in English and Chinese, best first, safely."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from desk.clock import FakeClock
from desk.db import create_engine, session_factory
from kb.articles import change_state, create_article, edit_article
from kb.categories import create_category
from kb.index import RankPlan, Scope, _statement, document_counts, rank_plan, rarest_terms
from kb.index_writer import recount_terms
from kb.options import KbOptions
from kb.records import ArticleState, Audience
from kb.search import SearchPage, scope_for, search_articles
from kb.shapes import ArticleDraft, ArticlePatch, CategoryDraft, SearchQuery, TransitionIn
from tests.conftest import Database
from tests.kb.conftest import Staff, publish

LIVE = Scope()


async def _titles(database: Database, q: str, **filters: object) -> list[str]:
    page = await _page(database, q=q, **filters)
    return [hit.article.title for hit in page.hits]


async def test_a_two_character_chinese_word_finds_the_sentence_it_is_in(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    await publish(
        database,
        staff,
        clock,
        options,
        title="如何重置您的账户密码",
        language="zh",
        body="打开设置页面，点击忘记密码，然后按照短信中的步骤操作。",
    )
    await publish(database, staff, clock, options, title="申请退款需要多长时间到账", language="zh")
    assert await _titles(database, "重置") == ["如何重置您的账户密码"]
    assert await _titles(database, "密码") == ["如何重置您的账户密码"]
    assert await _titles(database, "退款") == ["申请退款需要多长时间到账"]
    assert await _titles(database, "短信") == ["如何重置您的账户密码"]


async def _page(database: Database, scope: Scope = LIVE, **query: object) -> SearchPage:
    """Search as the API does: the query's filters narrow the scope."""
    wanted = SearchQuery.model_validate(query)
    async with database.sessions() as session:
        return await search_articles(session, wanted, await scope_for(session, wanted, scope))


async def test_a_title_match_ranks_above_a_body_match(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    await publish(
        database, staff, clock, options, title="Shipping costs", body="Mentions the router once."
    )
    await publish(database, staff, clock, options, title="Router lights explained", body="Lights.")
    assert await _titles(database, "router") == ["Router lights explained", "Shipping costs"]


@pytest.mark.parametrize("typed", ["router\x00", "\x07router\x1b", "xplained\x00", "\x00xplained"])
async def test_control_characters_in_a_query_are_left_out_and_cause_no_error(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions, typed: str
) -> None:
    await publish(database, staff, clock, options, title="Router lights explained", body="Lights.")
    assert await _titles(database, typed) == ["Router lights explained"]


async def test_results_show_snippets_with_the_matched_words_marked(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    await publish(
        database,
        staff,
        clock,
        options,
        title="Refunds",
        body="A refund <b>reaches</b> your card within ten days.",
    )
    page = await _page(database, q="refund card")
    assert page.hits[0].title_html == "<mark>Refunds</mark>"
    assert page.hits[0].snippet_html == (
        "A <mark>refund</mark> &lt;b&gt;reaches&lt;/b&gt; your <mark>card</mark> within ten days."
    )


async def test_filters_narrow_by_category_with_its_children_tag_language_and_audience(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    async with database.sessions() as session:
        billing = await create_category(
            session,
            CategoryDraft(slug="billing", names={"en": "Billing"}),
            now=clock.now(),
            options=options,
        )
        refunds = await create_category(
            session,
            CategoryDraft(slug="refunds", names={"en": "Refunds"}, parent_id=billing.id),
            now=clock.now(),
            options=options,
        )
        await session.commit()
    await publish(
        database, staff, clock, options, title="Card refund", category_id=refunds.id, tags=["card"]
    )
    await publish(database, staff, clock, options, title="Card update", tags=["card"])
    await publish(database, staff, clock, options, title="Card notes", audience=Audience.INTERNAL)
    await publish(database, staff, clock, options, title="Card 卡", language="zh")
    assert await _titles(database, "card", category="billing") == ["Card refund"]
    assert await _titles(database, "card", tag="card") == ["Card refund", "Card update"]
    assert await _titles(database, "card", language="zh") == ["Card 卡"]
    assert await _titles(database, "card", audience="internal") == ["Card notes"]


async def test_results_come_in_pages_with_the_total(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    for n in range(5):
        await publish(database, staff, clock, options, title=f"Modem guide {n}")
    first = await _page(database, q="modem", per_page=2)
    third = await _page(database, q="modem", per_page=2, page=3)
    assert (first.total, first.pages, len(first.hits)) == (5, 3, 2)
    assert len(third.hits) == 1
    shown = {h.article.id for h in first.hits} | {h.article.id for h in third.hits}
    assert len(shown) == 3


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '""',
        '"reset',
        'reset"',
        "reset*",
        "*",
        "NEAR",
        "NEAR(reset password)",
        "reset AND",
        "OR",
        "NOT reset",
        "-reset",
        "^reset",
        "title:reset",
        "{title}: reset",
        "(reset",
        "reset)",
        "reset + password",
        "'",
        "a'b",
        "\\",
        "%",
        "_",
        "::",
        "!@#$%^&*()",
        '重置"密码',
        "x" * 500,
    ],
)
async def test_search_syntax_in_a_query_is_searched_literally_without_errors(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions, query: str
) -> None:
    await publish(database, staff, clock, options, title="Reset your password", body="Near.")
    page = await _page(database, q=query)
    assert page.matched in ("all", "any", "partial", "none")


async def test_a_quoted_or_starred_word_finds_the_word(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    await publish(database, staff, clock, options, title="Reset your password")
    assert await _titles(database, '"reset') == ["Reset your password"]
    assert await _titles(database, "password*") == ["Reset your password"]


async def test_drafts_and_archived_articles_are_not_found_by_readers(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    archived = await publish(database, staff, clock, options, title="Router old model")
    async with database.sessions() as session:
        await create_article(
            session,
            ArticleDraft(title="Router draft"),
            actor=staff.agent,
            now=clock.now(),
            options=options,
        )
        await change_state(
            session,
            archived.id,
            TransitionIn(to=ArticleState.ARCHIVED, version=1),
            actor=staff.reviewer,
            now=clock.now(),
        )
        await session.commit()
    assert await _titles(database, "router") == []
    assert await _titles(database, "router", state="draft") == ["Router draft"]


async def test_the_index_follows_an_edit_in_the_same_transaction_and_a_rollback_leaves_it(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    async with database.sessions() as session:
        article = await create_article(
            session,
            ArticleDraft(title="Modem lights"),
            actor=staff.agent,
            now=clock.now(),
            options=options,
        )
        await session.commit()
    drafts = Scope(live=False)
    async with database.sessions() as session:
        await edit_article(
            session,
            article.id,
            ArticlePatch(version=1, title="Fibre box lights"),
            actor=staff.agent,
            now=clock.now(),
        )
        page = await search_articles(session, SearchQuery(q="fibre"), drafts)
        assert [h.article.id for h in page.hits] == [article.id]  # same transaction sees it
        await session.rollback()
    assert [h.article.title for h in (await _page(database, drafts, q="modem")).hits] == [
        "Modem lights"
    ]
    assert (await _page(database, drafts, q="fibre")).hits == []


async def test_when_no_article_has_every_word_those_with_some_are_shown(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    await publish(database, staff, clock, options, title="Router restart")
    page = await _page(database, q="router zebra")
    assert ([h.article.title for h in page.hits], page.matched) == (["Router restart"], "any")


async def test_part_of_a_word_or_code_finds_the_title_that_contains_it(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    await publish(database, staff, clock, options, title="Error 0x80070005 during update")
    page = await _page(database, q="80070005")
    assert ([h.article.title for h in page.hits], page.matched) == (
        ["Error 0x80070005 during update"],
        "partial",
    )


async def test_an_error_code_with_a_hyphen_is_found(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    await publish(database, staff, clock, options, title="Error E-1042 when uploading files")
    assert await _titles(database, "E-1042") == ["Error E-1042 when uploading files"]


async def test_an_empty_query_lists_the_most_helpful_articles(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    await publish(database, staff, clock, options, title="B article")
    await publish(database, staff, clock, options, title="A article")
    page = await _page(database, q="")
    assert ([h.article.title for h in page.hits], page.matched) == (
        ["A article", "B article"],
        "browse",
    )


async def test_the_count_of_articles_per_term_stays_exact_through_edits(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    first = await publish(database, staff, clock, options, title="Router light", body="Red.")
    await publish(database, staff, clock, options, title="Router reset", body="Press 重置.")
    async with database.sessions() as session:
        await edit_article(
            session,
            first.id,
            ArticlePatch(version=1, title="Modem light"),
            actor=staff.agent,
            now=clock.now(),
        )
        await change_state(
            session,
            first.id,
            TransitionIn(to=ArticleState.PUBLISHED, version=2),
            actor=staff.reviewer,
            now=clock.now(),
        )
        await session.commit()
        kept = await document_counts(session, ["router", "modem", "light", "red", "重置", "reset"])
        await recount_terms(session)
        recounted = await document_counts(session, list(kept))
    assert kept == {"router": 1, "modem": 1, "light": 1, "red": 1, "重置": 1, "reset": 1}
    assert recounted == kept


async def test_suggestions_search_the_rarest_words_of_a_ticket(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    for n in range(3):
        await publish(database, staff, clock, options, title=f"Account page {n}")
    await publish(database, staff, clock, options, title="Account locked")
    async with database.sessions() as session:
        assert await rarest_terms(session, ["account", "lock", "zebra"], budget=2) == ["lock"]
        assert await rarest_terms(session, ["account", "lock"], budget=10) == ["account", "lock"]


async def test_when_even_the_rarest_word_is_too_common_the_two_rarest_are_ranked_together(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    for n in range(3):
        await publish(database, staff, clock, options, title=f"Account page {n}")
    await publish(database, staff, clock, options, title="Account locked")
    async with database.sessions() as session:
        assert await rank_plan(session, ["account", "lock", "zebra"], budget=0) == RankPlan(
            ["lock", "account"], both=True
        )
        assert await rank_plan(session, ["account", "lock"], budget=10) == RankPlan(
            ["account", "lock"]
        )
        assert await rank_plan(session, ["lock", "zebra"], budget=0) == RankPlan(["lock"])


async def test_a_very_common_word_is_counted_up_to_the_cap_and_ranked_by_titles_first(
    database: Database,
    staff: Staff,
    clock: FakeClock,
    options: KbOptions,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("kb.index.COUNT_CAP", 2)
    monkeypatch.setattr("kb.search.COUNT_CAP", 2)
    await publish(database, staff, clock, options, title="Modem", body="router " * 50)
    await publish(database, staff, clock, options, title="Router lights")
    await publish(database, staff, clock, options, title="Router reset")
    page = await _page(database, q="router", per_page=2)
    assert (page.total, page.capped, page.pages) == (3, True, 1)
    assert sorted(h.article.title for h in page.hits) == ["Router lights", "Router reset"]


async def test_sqlite_searches_from_the_index_even_with_planner_statistics(
    sqlite_template: Path, tmp_path: Path, clock: FakeClock, options: KbOptions
) -> None:
    path = tmp_path / "analyzed.db"
    shutil.copy(sqlite_template, path)
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    async with session_factory(engine)() as session:
        for n in range(3):
            await create_article(
                session,
                ArticleDraft(title=f"Router {n}"),
                actor=None,
                now=clock.now(),
                options=options,
            )
        await session.execute(text("ANALYZE"))
        source, condition, _, params = _statement(
            session, [("router",)], Scope(languages=("en",)), match_all=True, columns=()
        )
        plan = (
            await session.execute(
                text(f"EXPLAIN QUERY PLAN SELECT a.id FROM {source} WHERE {condition}"), params
            )
        ).all()
    await engine.dispose()
    assert "kb_search VIRTUAL TABLE" in plan[0][-1]
