"""An article's past: its saved versions, its workflow trail, and restoring an old version."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from desk.models import User
from kb.articles import edit_article, get_article, get_version
from kb.records import KbArticle, KbArticleVersion, KbStateChange
from kb.shapes import ArticlePatch


async def restore_version(
    session: AsyncSession,
    article_id: int,
    number: int,
    *,
    seen: int,
    actor: User | None,
    now: datetime,
    note: str = "",
) -> KbArticle:
    """Save an old version's content as the newest version (nothing is lost)."""
    old = await get_version(session, article_id, number)
    patch = ArticlePatch(
        version=seen,
        title=old.title,
        body=old.body_md,
        summary=old.summary,
        slug=old.slug,
        category_id=old.category_id,
        clear_category=old.category_id is None,
        tags=list(old.tags),
        note=note or f"restored version {number}",
    )
    return await edit_article(session, article_id, patch, actor=actor, now=now)


async def versions(session: AsyncSession, article_id: int) -> list[KbArticleVersion]:
    await get_article(session, article_id)
    rows = await session.scalars(
        select(KbArticleVersion)
        .where(KbArticleVersion.article_id == article_id)
        .order_by(KbArticleVersion.number.desc())
    )
    return list(rows)


async def state_changes(session: AsyncSession, article_id: int) -> list[KbStateChange]:
    rows = await session.scalars(
        select(KbStateChange)
        .where(KbStateChange.article_id == article_id)
        .order_by(KbStateChange.id)
    )
    return list(rows)
