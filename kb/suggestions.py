"""Articles for the agent: beside a ticket being written, and in the screen pop.

Both are one indexed search: a few key words of the ticket (or of the caller's
recent open tickets) with OR, best first, live articles of any audience (the
agent is the reader).  Of the key words, the rarer ones are searched
(kb.index.rank_plan): they say most about the problem, and they keep the
number of articles to rank small however common the ticket's words are.
Each suggestion says why it was chosen.  Nothing is cached: every call reads
the current index in the caller's transaction.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from desk.models import Ticket, TicketStatus
from kb.index import Scope, find, rank_plan, ranked_ids
from kb.records import KbArticle
from kb.snippets import as_written
from kb.terms import matched_terms, query_terms

OPEN_STATUSES = (
    TicketStatus.NEW.value,
    TicketStatus.OPEN.value,
    TicketStatus.PENDING.value,
    TicketStatus.ON_HOLD.value,
)
KEY_TERMS = 8
POP_TICKETS = 3
DESCRIPTION_CHARS = 1_000


@dataclass(frozen=True, slots=True)
class Suggestion:
    article_id: int
    title: str
    slug: str
    language: str
    audience: str
    summary: str
    url: str  # the help-center page (public articles) or the agent's API resource
    reason: str
    matched: list[str]
    ticket_id: int | None = None


def key_terms(subject: str, description: str, *, limit: int = KEY_TERMS) -> list[str]:
    """The words that say what a ticket is about: the subject's first, then the
    description's most frequent ones.  Bare numbers (order numbers, dates) and
    single letters or characters say nothing about which article helps, so they
    are left out."""

    def useful(term: str) -> bool:
        return not term.isdigit() and len(term) > 1

    chosen = [t for t in query_terms(subject) if useful(t)][:limit]
    counts = Counter(t for t in query_terms_all(description) if useful(t) and t not in chosen)
    chosen += [term for term, _ in counts.most_common(limit - len(chosen))]
    return chosen[:limit]


def query_terms_all(text: str) -> list[str]:
    """Every query term of ``text`` with repeats, for counting."""
    out: list[str] = []
    for line in text[:DESCRIPTION_CHARS].splitlines():
        out += query_terms(line)
    return out


def article_url(article_id: int, slug: str, language: str, audience: str) -> str:
    if audience == "public":
        return f"/help/{language}/articles/{slug}"
    return f"/api/v1/kb/articles/{article_id}"


async def suggest_for_text(
    session: AsyncSession,
    subject: str,
    description: str,
    *,
    language: str | None = None,
    limit: int = 5,
    exclude: tuple[int, ...] = (),
) -> list[Suggestion]:
    """Suggestions for a ticket's subject and description (one being written, or saved)."""
    terms = key_terms(subject, description)
    return await _suggest(
        session,
        terms,
        [(None, subject, description)],
        language=language,
        limit=limit,
        exclude=exclude,
    )


async def suggest_for_customer(
    session: AsyncSession, customer_id: int, *, limit: int = 5
) -> list[Suggestion]:
    """The screen pop's suggestions: from the caller's most recently updated open tickets."""
    rows = (
        await session.execute(
            select(Ticket.id, Ticket.subject, Ticket.description)
            .where(Ticket.customer_id == customer_id, Ticket.status.in_(OPEN_STATUSES))
            .order_by(Ticket.updated_at.desc(), Ticket.id.desc())
            .limit(POP_TICKETS)
        )
    ).all()
    if not rows:
        return []
    tickets = [(row.id, row.subject, row.description[:DESCRIPTION_CHARS]) for row in rows]
    per_ticket = max(2, KEY_TERMS // len(tickets))
    terms: list[str] = []
    for _, subject, description in tickets:
        for term in key_terms(subject, description, limit=per_ticket):
            if term not in terms:
                terms.append(term)
    return await _suggest(session, terms[:KEY_TERMS], tickets, language=None, limit=limit)


async def pop_articles(
    session: AsyncSession, *, customer_id: int, language: str | None = None
) -> list[dict[str, Any]]:
    """The screen pop's suggestions as JSON-ready dicts (cti.recorder.ArticleSuggester).

    ``language`` is the caller's; the articles come in the language their words
    matched (a caller writing Chinese tickets gets Chinese articles), so it is not
    used as a filter: an English ticket from a Chinese-speaking caller still finds
    its English answer."""
    del language
    found = await suggest_for_customer(session, customer_id)
    return [asdict(suggestion) for suggestion in found]


async def _suggest(
    session: AsyncSession,
    terms: list[str],
    tickets: list[tuple[int | None, str, str]],
    *,
    language: str | None,
    limit: int,
    exclude: tuple[int, ...] = (),
) -> list[Suggestion]:
    if not terms:
        return []
    scope = Scope(languages=(language,) if language else (), exclude_ids=exclude)
    plan = await rank_plan(session, terms)
    terms = plan.terms
    if not terms:
        return []
    groups = [(term,) for term in terms]
    # Most indexed articles are live: rank without joining the articles, then keep the
    # live ones among twice the wanted number (and only if too few are, join and rank).
    wanted = 2 * limit + len(exclude)
    ids = [] if language else await ranked_ids(session, groups, limit=wanted, match_all=plan.both)
    if plan.both and len(ids) < limit:
        # Few articles have both words: add those with the rarest in their title,
        # where the best answers are (titles weigh most), ranked on the titles alone.
        more = await ranked_ids(session, [(terms[0],)], limit=wanted, titles=True)
        ids += [i for i in more if i not in ids]
    rows = await _rows(session, [i for i in ids if i not in exclude])
    if len(rows) < limit and (language or len(ids) == 2 * limit + len(exclude)):
        hits = await find(session, groups, scope, match_all=False, limit=limit, count=False)
        ids = hits.ids
        rows = await _rows(session, ids)
    ids = [i for i in ids if i in rows][:limit]
    if not ids:
        return []
    said = [(tid, subject, set(query_terms(f"{subject} {text}"))) for tid, subject, text in tickets]
    written = as_written(" ".join(f"{subject} {text}" for _, subject, text in tickets), terms)
    suggestions = []
    for article_id in ids:
        _, title, slug, language, audience, summary, tags, body = rows[article_id]
        matched = matched_terms(terms, f"{title} {summary} {' '.join(tags)} {body}")
        ticket_id, why = _source(matched, said, written)
        suggestions.append(
            Suggestion(
                article_id=article_id,
                title=title,
                slug=slug,
                language=language,
                audience=audience,
                summary=summary,
                url=article_url(article_id, slug, language, audience),
                reason=why,
                matched=matched,
                ticket_id=ticket_id,
            )
        )
    return suggestions


async def _rows(session: AsyncSession, ids: list[int]) -> dict[int, Any]:
    """What a suggestion shows of the live ones among ``ids``."""
    if not ids:
        return {}
    rows = await session.execute(
        select(
            KbArticle.id, KbArticle.title, KbArticle.slug, KbArticle.language,
            KbArticle.audience, KbArticle.summary, KbArticle.tags,
            func.substr(KbArticle.body_text, 1, 600),
        ).where(KbArticle.id.in_(ids), KbArticle.live_version.is_not(None))
    )  # fmt: skip
    return {row[0]: row for row in rows}


def _source(
    matched: list[str], said: list[tuple[int | None, str, set[str]]], written: dict[str, str]
) -> tuple[int | None, str]:
    """Which ticket the matched words came from, and the reason in words."""
    best: tuple[int, int | None, str] = (-1, None, "")
    for ticket_id, subject, words in said:
        shared = sum(1 for term in matched if term in words)
        if shared > best[0]:
            best = (shared, ticket_id, subject)
    _, ticket_id, subject = best
    listed = ", ".join(f"“{written.get(t, t)}”" for t in matched[:5]) or "related words"
    if ticket_id is None:
        return None, f"matches {listed}"
    return ticket_id, f"matches {listed} in open ticket #{ticket_id} “{subject[:80]}”"
