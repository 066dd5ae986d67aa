"""Writing articles: drafts, review, publishing, versions, restore, translations."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from desk.clock import FakeClock
from desk.errors import Conflict, InvalidInput, PermissionDenied, StaleWrite
from kb.articles import (
    add_translation,
    change_state,
    create_article,
    edit_article,
    get_article,
    translations,
)
from kb.diffs import diff_versions
from kb.history import restore_version, state_changes, versions
from kb.options import KbOptions
from kb.records import ArticleState, Audience, KbArticleTag
from kb.shapes import ArticleDraft, ArticlePatch, TransitionIn, TranslationDraft
from tests.conftest import Database
from tests.kb.conftest import Staff, publish


async def _draft(database: Database, staff: Staff, clock: FakeClock, options: KbOptions) -> int:
    async with database.sessions() as session:
        article = await create_article(
            session,
            ArticleDraft(title="Reset your password", body="Open **Settings**.", tags=["Login"]),
            actor=staff.agent,
            now=clock.now(),
            options=options,
        )
        await session.commit()
        return article.id


async def test_a_new_article_is_a_draft_with_its_first_version(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    article_id = await _draft(database, staff, clock, options)
    async with database.sessions() as session:
        article = await get_article(session, article_id)
        assert (article.state, article.head_version, article.live_version) == ("draft", 1, None)
        assert article.slug == "reset-your-password"
        assert article.body_html == "<p>Open <strong>Settings</strong>.</p>\n"
        assert article.summary == "Open Settings."
        assert article.tags == ["login"]
        assert [t.tag for t in await session.scalars(select(KbArticleTag))] == ["login"]
        assert [v.number for v in await versions(session, article_id)] == [1]


async def test_an_agent_submits_and_a_reviewer_publishes(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    article_id = await _draft(database, staff, clock, options)
    async with database.sessions() as session:
        await change_state(
            session,
            article_id,
            TransitionIn(to=ArticleState.IN_REVIEW, version=1),
            actor=staff.agent,
            now=clock.now(),
        )
        with pytest.raises(PermissionDenied):
            await change_state(
                session,
                article_id,
                TransitionIn(to=ArticleState.PUBLISHED, version=1),
                actor=staff.agent,
                now=clock.now(),
            )
        article = await change_state(
            session,
            article_id,
            TransitionIn(to=ArticleState.PUBLISHED, version=1, note="ok"),
            actor=staff.reviewer,
            now=clock.now(),
        )
        assert (article.state, article.live_version) == ("published", 1)
        trail = [(c.old, c.new, c.actor_id) for c in await state_changes(session, article_id)]
        assert trail == [
            ("draft", "in_review", staff.agent.id),
            ("in_review", "published", staff.reviewer.id),
        ]


async def test_editing_a_published_article_keeps_the_published_version_live_until_review(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    published = await publish(
        database, staff, clock, options, title="Reset your password", body="Old steps."
    )
    async with database.sessions() as session:
        article = await edit_article(
            session,
            published.id,
            ArticlePatch(version=1, body="New steps.", note="clearer"),
            actor=staff.agent,
            now=clock.now(),
        )
        assert (article.state, article.head_version, article.live_version) == ("draft", 2, 1)
        assert article.body_md == "Old steps."  # readers still see version 1
        article = await change_state(
            session,
            published.id,
            TransitionIn(to=ArticleState.PUBLISHED, version=2),
            actor=staff.reviewer,
            now=clock.now(),
        )
        assert (article.live_version, article.body_md) == (2, "New steps.")
        history = await versions(session, published.id)
        assert [(v.number, v.body_md) for v in history] == [(2, "New steps."), (1, "Old steps.")]


async def test_a_stale_edit_is_refused(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    article_id = await _draft(database, staff, clock, options)
    async with database.sessions() as session:
        await edit_article(
            session,
            article_id,
            ArticlePatch(version=1, title="First"),
            actor=staff.agent,
            now=clock.now(),
        )
        with pytest.raises(StaleWrite):
            await edit_article(
                session,
                article_id,
                ArticlePatch(version=1, title="Second"),
                actor=staff.agent,
                now=clock.now(),
            )


async def test_restoring_an_old_version_saves_it_as_the_newest(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    article_id = await _draft(database, staff, clock, options)
    async with database.sessions() as session:
        await edit_article(
            session,
            article_id,
            ArticlePatch(version=1, title="Wrong title", body="Wrong."),
            actor=staff.agent,
            now=clock.now(),
        )
        article = await restore_version(
            session, article_id, 1, seen=2, actor=staff.agent, now=clock.now()
        )
        assert (article.head_version, article.title, article.body_md) == (
            3,
            "Reset your password",
            "Open **Settings**.",
        )
        assert (await versions(session, article_id))[0].note == "restored version 1"


async def test_the_diff_shows_changed_fields_and_body_lines(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    article_id = await _draft(database, staff, clock, options)
    async with database.sessions() as session:
        await edit_article(
            session,
            article_id,
            ArticlePatch(
                version=1, title="Reset a password", body="Open **Settings**.\nThen Security."
            ),
            actor=staff.agent,
            now=clock.now(),
        )
        new, old = await versions(session, article_id)
        changes = {c.field: c for c in diff_versions(old, new)}
        assert set(changes) == {"title", "body_md"}
        assert changes["title"].new == "Reset a password"
        assert [(line.op, line.text) for line in changes["body_md"].lines] == [
            (" ", "Open **Settings**."),
            ("+", "Then Security."),
        ]


async def test_an_archived_article_is_not_edited_and_leaves_the_readers(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    published = await publish(database, staff, clock, options, title="Old promotion")
    async with database.sessions() as session:
        article = await change_state(
            session,
            published.id,
            TransitionIn(to=ArticleState.ARCHIVED, version=1),
            actor=staff.reviewer,
            now=clock.now(),
        )
        assert article.live_version is None
        with pytest.raises(Conflict):
            await edit_article(
                session,
                published.id,
                ArticlePatch(version=1, title="x"),
                actor=staff.agent,
                now=clock.now(),
            )


async def test_a_translation_is_linked_to_the_original_both_ways(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    original = await publish(database, staff, clock, options, title="Reset your password")
    async with database.sessions() as session:
        chinese = await add_translation(
            session,
            original.id,
            TranslationDraft(language="zh", title="重置密码", body="打开设置。"),
            actor=staff.agent,
            now=clock.now(),
            options=options,
        )
        assert chinese.slug == "重置密码"
        assert chinese.audience == Audience.PUBLIC
        assert [a.id for a in await translations(session, original)] == [chinese.id]
        assert [a.id for a in await translations(session, chinese)] == [original.id]
        with pytest.raises(Conflict):
            await add_translation(
                session,
                original.id,
                TranslationDraft(language="zh", title="又一个"),
                actor=staff.agent,
                now=clock.now(),
                options=options,
            )
        with pytest.raises(InvalidInput):
            await add_translation(
                session,
                original.id,
                TranslationDraft(language="fr", title="Réinitialiser"),
                actor=staff.agent,
                now=clock.now(),
                options=options,
            )


async def test_a_duplicate_slug_is_refused_and_a_slug_from_a_title_is_numbered(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    await _draft(database, staff, clock, options)
    async with database.sessions() as session:
        with pytest.raises(Conflict):
            await create_article(
                session,
                ArticleDraft(title="Other", slug="reset-your-password"),
                actor=staff.agent,
                now=clock.now(),
                options=options,
            )
        second = await create_article(
            session,
            ArticleDraft(title="Reset your password"),
            actor=staff.agent,
            now=clock.now(),
            options=options,
        )
        assert second.slug == "reset-your-password-2"
        other_language = await create_article(
            session,
            ArticleDraft(title="Reset your password", language="zh"),
            actor=staff.agent,
            now=clock.now(),
            options=options,
        )
        assert other_language.slug == "reset-your-password"
