"""Articles and tickets: link one to a ticket or put it into a reply in one click
(each counted once per ticket), and turn a solved ticket into a draft article."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from desk.errors import Conflict, InvalidInput, NotFound
from desk.models import Customer, MessageKind, Ticket, TicketMessage, TicketStatus, User
from kb.articles import create_article
from kb.options import KbOptions
from kb.records import Audience, KbArticle, KbTicketLink, LinkKind
from kb.shapes import ArticleDraft
from kb.suggestions import article_url

FINISHED = (TicketStatus.SOLVED.value, TicketStatus.CLOSED.value)


@dataclass(frozen=True, slots=True)
class LinkOutcome:
    link: KbTicketLink
    article: KbArticle
    created: bool
    reply_text: str | None  # for "inserted": what goes into the reply


def reply_text(article: KbArticle) -> str:
    """What an inserted article puts into a reply: its title, summary and public address."""
    url = article_url(article.id, article.slug, article.language, article.audience)
    return f"{article.title}\n\n{article.summary}\n\n{url}".strip()


async def link_article(
    session: AsyncSession,
    article_id: int,
    ticket_id: int,
    kind: LinkKind,
    *,
    actor: User,
    now: datetime,
) -> LinkOutcome:
    if kind == LinkKind.SOURCE:
        raise InvalidInput("'source' links are made by turning a ticket into an article")
    article = await session.get(KbArticle, article_id)
    if article is None or article.live_version is None:
        raise NotFound(f"no published article {article_id}")
    if await session.get(Ticket, ticket_id) is None:
        raise InvalidInput(f"no ticket {ticket_id}", fields={"ticket_id": "no such ticket"})
    if kind == LinkKind.INSERTED and article.audience != Audience.PUBLIC:
        raise Conflict(
            "internal articles are not sent to customers; link it to the ticket instead",
            fields={"kind": "internal article"},
        )
    text = reply_text(article) if kind == LinkKind.INSERTED else None
    existing = await _link(session, article_id, ticket_id, kind)
    if existing is not None:
        return LinkOutcome(existing, article, False, text)
    link = KbTicketLink(
        article_id=article_id,
        ticket_id=ticket_id,
        kind=kind.value,
        user_id=actor.id,
        created_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(link)
    except IntegrityError:  # another click won the race: count it once
        existing = await _link(session, article_id, ticket_id, kind)
        if existing is None:
            raise
        return LinkOutcome(existing, article, False, text)
    article.link_count += 1
    article.last_used_at = now
    await session.flush()
    return LinkOutcome(link, article, True, text)


async def _link(
    session: AsyncSession, article_id: int, ticket_id: int, kind: LinkKind
) -> KbTicketLink | None:
    return await session.scalar(
        select(KbTicketLink).where(
            KbTicketLink.article_id == article_id,
            KbTicketLink.ticket_id == ticket_id,
            KbTicketLink.kind == kind.value,
        )
    )


async def ticket_links(
    session: AsyncSession, ticket_id: int
) -> list[tuple[KbTicketLink, KbArticle]]:
    if await session.get(Ticket, ticket_id) is None:
        raise NotFound(f"no ticket {ticket_id}")
    rows = await session.execute(
        select(KbTicketLink, KbArticle)
        .join(KbArticle, KbArticle.id == KbTicketLink.article_id)
        .where(KbTicketLink.ticket_id == ticket_id)
        .order_by(KbTicketLink.id)
    )
    return [(link, article) for link, article in rows]


def draft_body(description: str, replies: list[str]) -> str:
    """The draft's Markdown: the problem as the customer put it, the answer that solved it."""
    problem = description.strip() or "_Describe the problem._"
    solution = "\n\n".join(r.strip() for r in replies if r.strip())
    return f"## Problem\n\n{problem}\n\n## Solution\n\n{solution or '_Write the answer._'}\n"


async def draft_from_ticket(
    session: AsyncSession, ticket_id: int, *, actor: User | None, now: datetime, options: KbOptions
) -> tuple[KbArticle, bool]:
    """A solved ticket as a draft article (internal, to be edited before review).
    A second call returns the same draft."""
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"no ticket {ticket_id}")
    if ticket.status not in FINISHED:
        raise Conflict("only a solved or closed ticket becomes an article")
    existing = await session.scalar(
        select(KbArticle).where(KbArticle.source_ticket_id == ticket_id).limit(1)
    )
    if existing is not None:
        return existing, False
    replies = await session.scalars(
        select(TicketMessage.body)
        .where(
            TicketMessage.ticket_id == ticket_id,
            TicketMessage.kind == MessageKind.PUBLIC_REPLY.value,
        )
        .order_by(TicketMessage.id)
    )
    language = options.default_language
    if ticket.customer_id is not None:
        customer = await session.get(Customer, ticket.customer_id)
        if customer is not None and customer.language in options.languages:
            language = customer.language
    draft = ArticleDraft(
        title=ticket.subject,
        body=draft_body(ticket.description, list(replies)),
        language=language,
        tags=list(ticket.tags or [])[:20],
        audience=Audience.INTERNAL,
    )
    article = await create_article(
        session, draft, actor=actor, now=now, options=options, source_ticket_id=ticket_id
    )
    session.add(
        KbTicketLink(
            article_id=article.id,
            ticket_id=ticket_id,
            kind=LinkKind.SOURCE.value,
            user_id=actor.id if actor else None,
            created_at=now,
        )
    )
    await session.flush()
    return article, True
