"""The knowledge base's tables, on desk's metadata (desk itself never imports them).

The search index is not here: SQLite's FTS5 tables and PostgreSQL's tsvector
column and GIN indexes are made by migration 0011 and written by ``kb.index``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from desk.models import Base


class ArticleState(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    PUBLISHED = "published"
    ARCHIVED = "archived"


class Audience(StrEnum):
    INTERNAL = "internal"  # agents only
    PUBLIC = "public"  # agents and the public help center


class LinkKind(StrEnum):
    LINKED = "linked"  # shown on the ticket as the article that answers it
    INSERTED = "inserted"  # put into a reply to the customer
    SOURCE = "source"  # the solved ticket the article was written from


class KbCategory(Base):
    __tablename__ = "kb_categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("kb_categories.id", ondelete="SET NULL"), index=True
    )
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    # The category's name per language code; the first configured language is required.
    names: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]


class KbFamily(Base):
    """The translations of one article; ``key`` names it in exported folders."""

    __tablename__ = "kb_families"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime]


class KbArticle(Base):
    """An article in one language.

    The content columns hold what readers see: the live (published) version
    while there is one, else the newest draft.  ``head_version`` is the newest
    saved version (editors work on it), ``live_version`` the one published, if any.
    """

    __tablename__ = "kb_articles"

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("kb_families.id", ondelete="CASCADE"))
    language: Mapped[str] = mapped_column(String(10))
    slug: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(500), default="")
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("kb_categories.id", ondelete="SET NULL"), index=True
    )
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    audience: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(12))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    source_ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), index=True
    )
    head_version: Mapped[int] = mapped_column(Integer, default=1)
    live_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    published_at: Mapped[datetime | None]
    # Last linked to a ticket, put into a reply or voted on: the review list's "unused".
    last_used_at: Mapped[datetime | None]
    helpful_count: Mapped[int] = mapped_column(Integer, default=0)
    unhelpful_count: Mapped[int] = mapped_column(Integer, default=0)
    link_count: Mapped[int] = mapped_column(Integer, default=0)
    # Last, so that SQLite reads the columns searches filter on without walking the text.
    body_md: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    body_text: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        UniqueConstraint("language", "slug"),
        UniqueConstraint("family_id", "language"),
        Index("ix_kb_articles_listing", "state", "audience", "language"),
    )


class KbArticleVersion(Base):
    """One saved version of an article's content; never changed once written."""

    __tablename__ = "kb_article_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    slug: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(500), default="")
    body_md: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    category_id: Mapped[int | None] = mapped_column(Integer)
    audience: Mapped[str] = mapped_column(String(10))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    note: Mapped[str] = mapped_column(String(500), default="")

    __table_args__ = (UniqueConstraint("article_id", "number"),)


class KbArticleTag(Base):
    __tablename__ = "kb_article_tags"

    article_id: Mapped[int] = mapped_column(
        ForeignKey("kb_articles.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class KbStateChange(Base):
    """The workflow's audit trail: submitted, published, sent back, archived."""

    __tablename__ = "kb_state_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("kb_articles.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    old: Mapped[str] = mapped_column(String(12))
    new: Mapped[str] = mapped_column(String(12))
    version: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(String(500), default="")


class KbVote(Base):
    """One "was this helpful" per person (agent) or browser (public); a new vote replaces it."""

    __tablename__ = "kb_votes"

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"))
    voter: Mapped[str] = mapped_column(String(100))  # "user:<id>" or "browser:<hash>"
    helpful: Mapped[bool] = mapped_column(Boolean)
    # Public votes: a keyed hash of the address, to cap votes from one place.
    origin: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("article_id", "voter"),
        Index("ix_kb_votes_origin", "article_id", "origin", "created_at"),
    )


class KbTicketLink(Base):
    __tablename__ = "kb_ticket_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("article_id", "ticket_id", "kind"),)


class KbTerm(Base):
    """In how many indexed articles a search term occurs, kept with the index (kb.index):
    suggestions look up here which of a ticket's words are rare enough to search."""

    __tablename__ = "kb_terms"

    term: Mapped[str] = mapped_column(String(64), primary_key=True)
    articles: Mapped[int] = mapped_column(Integer, default=0)
