"""Search: words in any language, best first, with the matched words marked.

A query's words must all appear (``matched="all"``); when no article has all
of them, articles with any of them are shown (``"any"``), and when none has any,
titles that contain the typed letters (``"partial"``: part of a word, a code,
on PostgreSQL also a misspelling).  Quotes, ``*``, ``NEAR``, brackets and the
like are ordinary text: they are searched as the words they contain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from desk.errors import InvalidInput
from kb.categories import category_nodes, descendants
from kb.index import COUNT_CAP, Hits, Scope, find, find_by_grams, scope_clauses
from kb.records import KbArticle
from kb.shapes import SearchQuery
from kb.snippets import highlight, snippet
from kb.terms import query_groups, query_terms

Matched = Literal["all", "any", "partial", "none", "browse"]


@dataclass(frozen=True, slots=True)
class SearchHit:
    article: KbArticle
    title_html: str
    snippet_html: str


@dataclass(frozen=True, slots=True)
class SearchPage:
    hits: list[SearchHit]
    total: int
    page: int
    per_page: int
    terms: list[str]
    matched: Matched

    @property
    def pages(self) -> int:
        return max(1, -(-min(self.total, COUNT_CAP) // self.per_page))

    @property
    def capped(self) -> bool:
        """More matched than were counted: ``total`` then means "more than COUNT_CAP"."""
        return self.total > COUNT_CAP


async def scope_for(session: AsyncSession, query: SearchQuery, base: Scope) -> Scope:
    """The base scope narrowed by the query's filters (a category covers its sub-categories)."""
    categories = base.category_ids
    if query.category is not None:
        nodes = await category_nodes(session)
        matching = [n for n in nodes if n.slug == query.category]
        if not matching:
            raise InvalidInput("no such category", fields={"category": "no such category"})
        categories = descendants(nodes, matching[0].id)
    return Scope(
        languages=(query.language,) if query.language else base.languages,
        audiences=(query.audience.value,) if query.audience else base.audiences,
        states=(query.state.value,) if query.state else base.states,
        live=base.live and query.state is None,
        category_ids=categories,
        tag=" ".join(query.tag.casefold().split()) if query.tag else base.tag,
    )


async def search_articles(session: AsyncSession, query: SearchQuery, scope: Scope) -> SearchPage:
    groups, terms = query_groups(query.q), query_terms(query.q)
    limit, offset = query.per_page, (query.page - 1) * query.per_page
    matched: Matched = "all"
    if not terms and not query.q.strip():
        hits = await browse(session, scope, limit=limit, offset=offset)
        matched = "browse"
    elif not terms:
        hits, matched = Hits([], 0), "none"
    else:
        hits = await find(session, groups, scope, match_all=True, limit=limit, offset=offset)
        if hits.total == 0 and len(groups) > 1:
            hits = await find(session, groups, scope, match_all=False, limit=limit, offset=offset)
            matched = "any"
        if hits.total == 0:
            ids = await find_by_grams(session, query.q, scope, limit=limit) if offset == 0 else []
            hits, matched = Hits(ids, len(ids)), "partial" if ids else "none"
    articles = await load_in_order(session, hits.ids)
    return SearchPage(
        hits=[
            SearchHit(a, highlight(a.title, terms), snippet(a.body_text or a.summary, terms))
            for a in articles
        ],
        total=hits.total,
        page=query.page,
        per_page=query.per_page,
        terms=terms,
        matched=matched,
    )


async def load_in_order(session: AsyncSession, ids: list[int]) -> list[KbArticle]:
    if not ids:
        return []
    rows = await session.scalars(select(KbArticle).where(KbArticle.id.in_(ids)))
    by_id = {a.id: a for a in rows}
    return [by_id[i] for i in ids if i in by_id]


async def browse(session: AsyncSession, scope: Scope, *, limit: int, offset: int) -> Hits:
    """No words typed: the scope's articles, most helpful first."""
    params: dict[str, object] = {"limit": limit, "offset": offset}
    where = " AND ".join(scope_clauses(scope, params)) or "1 = 1"
    rows = await session.execute(
        text(
            f"SELECT a.id FROM kb_articles a WHERE {where} "
            "ORDER BY a.helpful_count - a.unhelpful_count DESC, a.title, a.id "
            "LIMIT :limit OFFSET :offset"
        ),
        params,
    )
    ids = [row[0] for row in rows]
    total = await session.scalar(text(f"SELECT count(*) FROM kb_articles a WHERE {where}"), params)
    return Hits(ids, int(total or 0))
