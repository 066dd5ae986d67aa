"""Writing articles: create, edit, move through review, translate, restore.

Every save writes a new numbered version; the article's columns (and so the
search index) show the live version while one is published, else the newest.
The index is written in the caller's transaction, so a rolled-back edit leaves
it as it was.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from desk.errors import Conflict, InvalidInput, NotFound, PermissionDenied, StaleWrite
from desk.models import User
from kb.index_writer import write_index
from kb.options import KbOptions
from kb.records import (
    ArticleState,
    KbArticle,
    KbArticleTag,
    KbArticleVersion,
    KbCategory,
    KbFamily,
    KbStateChange,
)
from kb.rendering import first_sentences, plain_text, render_html
from kb.shapes import ArticleDraft, ArticlePatch, TransitionIn, TranslationDraft, slugify
from kb.workflow import check_transition, is_reviewer, state_after_edit


async def get_article(session: AsyncSession, article_id: int) -> KbArticle:
    article = await session.get(KbArticle, article_id)
    if article is None:
        raise NotFound(f"no article {article_id}")
    return article


async def get_version(session: AsyncSession, article_id: int, number: int) -> KbArticleVersion:
    version = await session.scalar(
        select(KbArticleVersion).where(
            KbArticleVersion.article_id == article_id, KbArticleVersion.number == number
        )
    )
    if version is None:
        raise NotFound(f"article {article_id} has no version {number}")
    return version


async def _check_language(language: str, options: KbOptions) -> None:
    if language not in options.languages:
        raise InvalidInput(
            f"language {language!r} is not one of {', '.join(options.languages)}",
            fields={"language": "not a configured language"},
        )


async def _check_category(session: AsyncSession, category_id: int | None) -> None:
    if category_id is not None and await session.get(KbCategory, category_id) is None:
        raise InvalidInput("no such category", fields={"category_id": "no such category"})


async def _slug_taken(
    session: AsyncSession, language: str, slug: str, *, other_than: int | None = None
) -> bool:
    query = select(KbArticle.id).where(KbArticle.language == language, KbArticle.slug == slug)
    if other_than is not None:
        query = query.where(KbArticle.id != other_than)
    return await session.scalar(query.limit(1)) is not None


async def _free_slug(session: AsyncSession, language: str, wanted: str | None, title: str) -> str:
    """The slug asked for (refused if taken), or one made from the title (numbered if taken)."""
    if wanted is not None:
        if await _slug_taken(session, language, wanted):
            raise Conflict(
                f"another {language} article already uses the slug {wanted!r}",
                fields={"slug": "taken"},
            )
        return wanted
    base = slugify(title)
    slug, n = base, 1
    while await _slug_taken(session, language, slug):
        n += 1
        slug = f"{base}-{n}"
    return slug


async def _join_family(session: AsyncSession, key: str, language: str) -> KbFamily | None:
    """The family named ``key`` (an imported translation_key), if it exists; refused when
    it already has an article in ``language``."""
    family = await session.scalar(select(KbFamily).where(KbFamily.key == key))
    if family is None:
        return None
    taken = await session.scalar(
        select(KbArticle.slug).where(
            KbArticle.family_id == family.id, KbArticle.language == language
        )
    )
    if taken is not None:
        raise Conflict(
            f"translation {key!r} already has a {language} article ({taken})",
            fields={"translation_key": "language taken"},
        )
    return family


async def _family(session: AsyncSession, key: str, now: datetime) -> KbFamily:
    key, n = key[:190], 1
    wanted = key
    while await session.scalar(select(KbFamily.id).where(KbFamily.key == wanted)) is not None:
        n += 1
        wanted = f"{key}-{n}"
    family = KbFamily(key=wanted, created_at=now)
    session.add(family)
    await session.flush()
    return family


def _apply_content(article: KbArticle, version: KbArticleVersion) -> None:
    """Show ``version`` to readers: copy it into the article's columns."""
    article.slug = version.slug
    article.title = version.title
    article.body_md = version.body_md
    article.body_html = render_html(version.body_md)
    article.body_text = plain_text(article.body_html)
    article.summary = version.summary or first_sentences(article.body_text)
    article.tags = list(version.tags)
    article.category_id = version.category_id
    article.audience = version.audience


async def _sync_tags(session: AsyncSession, article: KbArticle) -> None:
    await session.execute(delete(KbArticleTag).where(KbArticleTag.article_id == article.id))
    session.add_all(KbArticleTag(article_id=article.id, tag=tag) for tag in article.tags)


async def _show(session: AsyncSession, article: KbArticle, version: KbArticleVersion) -> None:
    _apply_content(article, version)
    await session.flush()
    await _sync_tags(session, article)
    await session.flush()
    await write_index(session, article)


async def create_article(
    session: AsyncSession,
    draft: ArticleDraft,
    *,
    actor: User | None,
    now: datetime,
    options: KbOptions,
    family_key: str | None = None,
    source_ticket_id: int | None = None,
) -> KbArticle:
    await _check_language(draft.language, options)
    await _check_category(session, draft.category_id)
    slug = await _free_slug(session, draft.language, draft.slug, draft.title)
    family = await _join_family(session, family_key, draft.language) if family_key else None
    family = family or await _family(session, family_key or slug, now)
    return await _new_article(
        session,
        family_id=family.id,
        language=draft.language,
        slug=slug,
        title=draft.title,
        body=draft.body,
        summary=draft.summary,
        category_id=draft.category_id,
        tags=draft.tags,
        audience=draft.audience.value,
        actor=actor,
        now=now,
        source_ticket_id=source_ticket_id,
    )


async def _new_article(
    session: AsyncSession,
    *,
    family_id: int,
    language: str,
    slug: str,
    title: str,
    body: str,
    summary: str,
    category_id: int | None,
    tags: list[str],
    audience: str,
    actor: User | None,
    now: datetime,
    source_ticket_id: int | None = None,
) -> KbArticle:
    article = KbArticle(
        family_id=family_id,
        language=language,
        slug=slug,
        title=title,
        audience=audience,
        state=ArticleState.DRAFT.value,
        owner_id=actor.id if actor else None,
        source_ticket_id=source_ticket_id,
        head_version=1,
        live_version=None,
        created_at=now,
        updated_at=now,
        tags=[],
    )
    session.add(article)
    await session.flush()
    version = KbArticleVersion(
        article_id=article.id,
        number=1,
        slug=slug,
        title=title,
        summary=summary,
        body_md=body,
        tags=tags,
        category_id=category_id,
        audience=audience,
        author_id=actor.id if actor else None,
        created_at=now,
        note="created",
    )
    session.add(version)
    await _show(session, article, version)
    return article


async def add_translation(
    session: AsyncSession,
    original_id: int,
    draft: TranslationDraft,
    *,
    actor: User | None,
    now: datetime,
    options: KbOptions,
) -> KbArticle:
    original = await get_article(session, original_id)
    await _check_language(draft.language, options)
    taken = await session.scalar(
        select(KbArticle.id).where(
            KbArticle.family_id == original.family_id, KbArticle.language == draft.language
        )
    )
    if taken is not None:
        raise Conflict(
            f"article {original_id} already has a {draft.language} translation ({taken})",
            fields={"language": "already translated"},
        )
    head = await get_version(session, original.id, original.head_version)
    slug = await _free_slug(session, draft.language, draft.slug, draft.title)
    return await _new_article(
        session,
        family_id=original.family_id,
        language=draft.language,
        slug=slug,
        title=draft.title,
        body=draft.body,
        summary=draft.summary,
        category_id=head.category_id,
        tags=draft.tags if draft.tags is not None else list(head.tags),
        audience=head.audience,
        actor=actor,
        now=now,
    )


async def translations(session: AsyncSession, article: KbArticle) -> list[KbArticle]:
    """The other languages of the article, in no particular order."""
    rows = await session.scalars(
        select(KbArticle).where(
            KbArticle.family_id == article.family_id, KbArticle.id != article.id
        )
    )
    return list(rows)


async def _claim_next_version(session: AsyncSession, article: KbArticle, seen: int) -> int:
    """Move head_version from ``seen`` to the next number, or refuse a stale writer."""
    if seen != article.head_version:
        raise StaleWrite(
            f"article {article.id} is at version {article.head_version}, you sent {seen}; reload",
            fields={"version": "stale"},
        )
    claimed = await session.execute(
        update(KbArticle)
        .where(KbArticle.id == article.id, KbArticle.head_version == seen)
        .values(head_version=seen + 1)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise StaleWrite(f"article {article.id} changed meanwhile; reload")
    article.head_version = seen + 1
    return seen + 1


async def edit_article(
    session: AsyncSession,
    article_id: int,
    patch: ArticlePatch,
    *,
    actor: User | None,
    now: datetime,
) -> KbArticle:
    article = await get_article(session, article_id)
    state = ArticleState(article.state)
    if state == ArticleState.ARCHIVED:
        raise Conflict("the article is archived; a reviewer can bring it back to draft first")
    head = await get_version(session, article.id, article.head_version)
    slug = head.slug
    if patch.slug is not None and patch.slug != head.slug:
        if await _slug_taken(session, article.language, patch.slug, other_than=article.id):
            raise Conflict(
                f"another {article.language} article already uses the slug {patch.slug!r}",
                fields={"slug": "taken"},
            )
        slug = patch.slug
    category_id = None if patch.clear_category else (patch.category_id or head.category_id)
    await _check_category(session, category_id)
    number = await _claim_next_version(session, article, patch.version)
    version = KbArticleVersion(
        article_id=article.id,
        number=number,
        slug=slug,
        title=patch.title if patch.title is not None else head.title,
        summary=patch.summary if patch.summary is not None else head.summary,
        body_md=patch.body if patch.body is not None else head.body_md,
        tags=patch.tags if patch.tags is not None else list(head.tags),
        category_id=category_id,
        audience=(patch.audience.value if patch.audience is not None else head.audience),
        author_id=actor.id if actor else None,
        created_at=now,
        note=patch.note,
    )
    session.add(version)
    new_state = state_after_edit(state)
    if new_state != state:
        _record_state(session, article, new_state, actor=actor, now=now, note="edited")
    article.updated_at = now
    if article.live_version is None:
        await _show(session, article, version)
    else:
        await session.flush()
    return article


def _record_state(
    session: AsyncSession,
    article: KbArticle,
    to: ArticleState,
    *,
    actor: User | None,
    now: datetime,
    note: str,
) -> None:
    session.add(
        KbStateChange(
            article_id=article.id,
            at=now,
            actor_id=actor.id if actor else None,
            old=article.state,
            new=to.value,
            version=article.head_version,
            note=note,
        )
    )
    article.state = to.value


async def change_state(
    session: AsyncSession,
    article_id: int,
    wanted: TransitionIn,
    *,
    actor: User | None,
    now: datetime,
) -> KbArticle:
    """Submit, publish, send back, archive or bring back; ``actor`` None is the operator's CLI."""
    article = await get_article(session, article_id)
    reviewer = actor is None or is_reviewer(actor)
    refusal = check_transition(ArticleState(article.state), wanted.to, reviewer=reviewer)
    if refusal is not None:
        error = PermissionDenied if refusal.status == "forbidden" else Conflict
        raise error(refusal.reason)
    if wanted.version != article.head_version:
        raise StaleWrite(
            f"article {article.id} is at version {article.head_version}, you reviewed "
            f"{wanted.version}; reload",
            fields={"version": "stale"},
        )
    head = await _head(session, article)
    if wanted.to == ArticleState.PUBLISHED and await _slug_taken(
        session, article.language, head.slug, other_than=article.id
    ):
        raise Conflict(f"another article took the slug {head.slug!r} meanwhile; change it")
    _record_state(session, article, wanted.to, actor=actor, now=now, note=wanted.note)
    article.updated_at = now
    if wanted.to == ArticleState.PUBLISHED:
        article.live_version = article.head_version
        article.published_at = now
        await _show(session, article, head)
    elif wanted.to == ArticleState.ARCHIVED:
        article.live_version = None
        await _show(session, article, head)
    else:
        await session.flush()
    return article


async def _head(session: AsyncSession, article: KbArticle) -> KbArticleVersion:
    return await get_version(session, article.id, article.head_version)


async def list_articles(
    session: AsyncSession,
    *,
    state: ArticleState | None,
    language: str | None,
    category_id: int | None,
    owner_id: int | None,
    limit: int,
    offset: int,
) -> tuple[list[KbArticle], int]:
    query = select(KbArticle)
    if state is not None:
        query = query.where(KbArticle.state == state.value)
    if language is not None:
        query = query.where(KbArticle.language == language)
    if category_id is not None:
        query = query.where(KbArticle.category_id == category_id)
    if owner_id is not None:
        query = query.where(KbArticle.owner_id == owner_id)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(KbArticle.updated_at.desc(), KbArticle.id.desc()).limit(limit).offset(offset)
    )
    return list(rows), int(total or 0)
