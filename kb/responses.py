"""The shapes of the knowledge base's API answers, and the article's full answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from kb.articles import get_version, translations
from kb.records import ArticleState, Audience, KbArticle, LinkKind
from kb.rendering import render_html


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class CategoryOut(Out):
    id: int
    slug: str
    parent_id: int | None
    names: dict[str, str]
    position: int


class CategoryListOut(BaseModel):
    items: list[CategoryOut]


class TranslationOut(Out):
    id: int
    language: str
    slug: str
    title: str
    state: str
    live: bool


class VersionOut(Out):
    number: int
    slug: str
    title: str
    summary: str
    body_md: str
    tags: list[str]
    category_id: int | None
    audience: str
    author_id: int | None
    created_at: datetime
    note: str


class PendingOut(VersionOut):
    body_html: str


class ArticleOut(BaseModel):
    id: int
    family_id: int
    language: str
    slug: str
    title: str
    summary: str
    body_md: str
    body_html: str
    category_id: int | None
    tags: list[str]
    audience: Audience
    state: ArticleState
    live: bool
    owner_id: int | None
    source_ticket_id: int | None
    head_version: int
    live_version: int | None
    # The newest version while it differs from the live one (an edit waiting for review).
    pending: PendingOut | None
    translations: list[TranslationOut]
    helpful_count: int
    unhelpful_count: int
    link_count: int
    url: str | None
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    last_used_at: datetime | None


class ArticleBriefOut(Out):
    id: int
    language: str
    slug: str
    title: str
    summary: str
    audience: str
    state: str
    head_version: int
    live_version: int | None
    updated_at: datetime


class ArticlePageOut(BaseModel):
    items: list[ArticleBriefOut]
    total: int


class ArticleListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: ArticleState | None = None
    language: Annotated[str, Field(max_length=10)] | None = None
    category_id: int | None = None
    owner_id: int | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


class VersionListOut(BaseModel):
    items: list[VersionOut]


class DiffQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_version: int = Field(alias="from", ge=1)
    to_version: int = Field(alias="to", ge=1)


class DiffLineOut(Out):
    op: str
    text: str


class FieldChangeOut(Out):
    field: str
    old: str
    new: str
    lines: list[DiffLineOut]


class DiffOut(BaseModel):
    from_version: int
    to_version: int
    changes: list[FieldChangeOut]


class StateChangeOut(Out):
    at: datetime
    actor_id: int | None
    old: str
    new: str
    version: int
    note: str


class StateHistoryOut(BaseModel):
    items: list[StateChangeOut]


class SearchHitOut(BaseModel):
    id: int
    language: str
    slug: str
    title: str
    summary: str
    audience: str
    # HTML: the text escaped, matched words in <mark>.
    title_html: str
    snippet_html: str
    url: str | None


class SearchPageOut(BaseModel):
    items: list[SearchHitOut]
    total: int
    # True: more matched than were counted, and ``total`` is that limit plus one.
    total_capped: bool
    page: int
    per_page: int
    pages: int
    matched: str


class SuggestionOut(Out):
    article_id: int
    title: str
    slug: str
    language: str
    audience: str
    summary: str
    url: str
    reason: str
    matched: list[str]
    ticket_id: int | None


class SuggestionListOut(BaseModel):
    items: list[SuggestionOut]


class LinkOut(BaseModel):
    article_id: int
    ticket_id: int
    kind: LinkKind
    created: bool
    link_count: int
    reply_text: str | None


class TicketLinkOut(BaseModel):
    article_id: int
    title: str
    kind: LinkKind
    user_id: int | None
    created_at: datetime


class TicketLinkListOut(BaseModel):
    items: list[TicketLinkOut]


class VoteOut(BaseModel):
    counted: bool
    helpful_count: int
    unhelpful_count: int


class ReviewItemOut(BaseModel):
    article: ArticleBriefOut
    reasons: list[str]


class ReviewPageOut(BaseModel):
    items: list[ReviewItemOut]
    total: int


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


def public_url(article: KbArticle) -> str | None:
    if article.live_version is None or article.audience != Audience.PUBLIC:
        return None
    return f"/help/{article.language}/articles/{article.slug}"


async def article_out(session: AsyncSession, article: KbArticle) -> ArticleOut:
    pending = None
    if article.live_version is not None and article.head_version != article.live_version:
        head = await get_version(session, article.id, article.head_version)
        pending = PendingOut(
            **VersionOut.model_validate(head).model_dump(), body_html=render_html(head.body_md)
        )
    others = [
        TranslationOut(
            id=t.id,
            language=t.language,
            slug=t.slug,
            title=t.title,
            state=t.state,
            live=t.live_version is not None,
        )
        for t in sorted(await translations(session, article), key=lambda t: t.language)
    ]
    return ArticleOut(
        id=article.id,
        family_id=article.family_id,
        language=article.language,
        slug=article.slug,
        title=article.title,
        summary=article.summary,
        body_md=article.body_md,
        body_html=article.body_html,
        category_id=article.category_id,
        tags=list(article.tags),
        audience=Audience(article.audience),
        state=ArticleState(article.state),
        live=article.live_version is not None,
        owner_id=article.owner_id,
        source_ticket_id=article.source_ticket_id,
        head_version=article.head_version,
        live_version=article.live_version,
        pending=pending,
        translations=others,
        helpful_count=article.helpful_count,
        unhelpful_count=article.unhelpful_count,
        link_count=article.link_count,
        url=public_url(article),
        created_at=article.created_at,
        updated_at=article.updated_at,
        published_at=article.published_at,
        last_used_at=article.last_used_at,
    )
