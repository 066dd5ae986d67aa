"""Reading the search index (kb.index_writer writes it): ranked, filtered, counted.

SQLite: ``kb_search`` (FTS5: title, summary, tags, body) and ``kb_search_grams``
(FTS5 trigram of titles), rowid = article id.  PostgreSQL: the weighted
``kb_articles.search_vector`` and ``title_vector`` with GIN indexes, and a pg_trgm
index on titles.
Both hold terms made by ``kb.terms`` (docs/decisions/0007-knowledge-base.md).

User text never reaches MATCH or a tsquery as syntax: terms are made of
letters and digits only, and each one is quoted here (an FTS5 string, a
tsquery lexeme) before the expression is bound as a parameter.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from kb.index_writer import is_sqlite
from kb.records import KbTerm
from kb.terms import Group, normalise

# Title above summary and tags above body (bm25 column weights / ts_rank A-D weights).
SQLITE_WEIGHTS = "10.0, 4.0, 3.0, 1.0"
POSTGRES_WEIGHTS = "'{0.05, 0.2, 0.4, 1.0}'"  # D body, C -, B summary and tags, A title
# Matches are counted up to this many ("1000+"); a query matching more is ranked
# among the articles it matches in the title first (short, so cheap to rank; see find).
COUNT_CAP = 1000
HEADS = ("title",)
# Suggestions choose their words so that about this many articles at most are ranked:
# fewer on PostgreSQL, where ranking reads each match's whole (compressed) vector.
RANK_BUDGET = {"sqlite": 1000, "postgresql": 120}


@dataclass(frozen=True, slots=True)
class Scope:
    """Which articles a search may return.  ``live`` = readers can see them."""

    languages: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    live: bool = True
    category_ids: tuple[int, ...] | None = None
    tag: str | None = None
    exclude_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Hits:
    ids: list[int]
    total: int
    scores: dict[int, float] = field(default_factory=dict)


def _alternatives(groups: Sequence[Group], match_all: bool) -> list[Group]:
    # Any-of: one group holding every term.
    if match_all:
        return list(groups)
    return [tuple(dict.fromkeys(term for group in groups for term in group))]


def fts5_query(groups: Sequence[Group], *, match_all: bool, columns: Sequence[str] = ()) -> str:
    """An FTS5 MATCH expression that searches the terms literally: every group, one
    term of each (``match_all``), or any term at all."""
    parts = []
    for group in _alternatives(groups, match_all):
        quoted = ['"' + term.replace('"', '""') + '"' for term in group]
        parts.append(quoted[0] if len(quoted) == 1 else "(" + " OR ".join(quoted) + ")")
    expression = " AND ".join(parts)
    if columns:
        return "{" + " ".join(columns) + "} : (" + expression + ")"
    return expression


def tsquery(groups: Sequence[Group], *, match_all: bool) -> str:
    """A to_tsquery expression that searches the terms literally (each one quoted)."""
    parts = []
    for group in _alternatives(groups, match_all):
        quoted = ["'" + t.replace("\\", "\\\\").replace("'", "''") + "'" for t in group]
        parts.append(quoted[0] if len(quoted) == 1 else "(" + " | ".join(quoted) + ")")
    return " & ".join(parts)


def scope_clauses(scope: Scope, params: dict[str, Any]) -> list[str]:
    clauses: list[str] = []

    def one_of(column: str, values: Sequence[Any], name: str) -> None:
        names = []
        for i, value in enumerate(values):
            params[f"{name}{i}"] = value
            names.append(f":{name}{i}")
        clauses.append(f"{column} IN ({', '.join(names)})" if names else "1 = 0")

    if scope.live:
        clauses.append("a.live_version IS NOT NULL")
    if scope.languages:
        one_of("a.language", scope.languages, "lang")
    if scope.audiences:
        one_of("a.audience", scope.audiences, "aud")
    if scope.states:
        one_of("a.state", scope.states, "state")
    if scope.category_ids is not None:
        one_of("a.category_id", scope.category_ids, "cat")
    if scope.exclude_ids:
        one_of("a.id", scope.exclude_ids, "ex")
        clauses[-1] = clauses[-1].replace(" IN ", " NOT IN ")
    if scope.tag is not None:
        params["tag"] = scope.tag
        clauses.append(
            "EXISTS (SELECT 1 FROM kb_article_tags t WHERE t.article_id = a.id AND t.tag = :tag)"
        )
    return clauses


def _statement(
    session: AsyncSession,
    groups: Sequence[Group],
    scope: Scope,
    *,
    match_all: bool,
    columns: Sequence[str],
) -> tuple[str, str, str, dict[str, Any]]:
    """FROM, WHERE, the score (lower is better) and the parameters of a search."""
    params: dict[str, Any] = {}
    where = scope_clauses(scope, params)
    if is_sqlite(session):
        params["q"] = fts5_query(groups, match_all=match_all, columns=columns)
        # CROSS JOIN fixes the order in SQLite: the index finds, the articles filter.
        # (With ANALYZE statistics the planner may otherwise walk every article and
        # probe the index for each: seconds instead of milliseconds.)
        source = "kb_search CROSS JOIN kb_articles a ON a.id = kb_search.rowid"
        where.insert(0, "kb_search MATCH :q")
        score = f"bm25(kb_search, {SQLITE_WEIGHTS})"
    else:
        params["q"] = tsquery(groups, match_all=match_all)
        source = "kb_articles a CROSS JOIN (SELECT to_tsquery('simple', :q) AS query) q"
        # Titles only (HEADS): their own small vector, cheap to match and rank.
        vector = "a.title_vector" if columns else "a.search_vector"
        where.insert(0, f"{vector} @@ q.query")
        score = f"-ts_rank({POSTGRES_WEIGHTS}, {vector}, q.query)"
    return source, " AND ".join(where), score, params


async def find(
    session: AsyncSession,
    groups: Sequence[Group],
    scope: Scope,
    *,
    match_all: bool = True,
    limit: int = 20,
    offset: int = 0,
    count: bool = True,
) -> Hits:
    """Article ids best first (title matches above body matches), and how many matched
    (counted up to ``COUNT_CAP``; ``total`` is then ``COUNT_CAP + 1``).

    Ranking scores every matching article, so a query that matches more than
    ``COUNT_CAP`` of them (a very common word) is ranked among the articles that
    have its words in the title, where the best answers are anyway (the title
    weighs ten times the body); only when those do not fill the page are all
    matches ranked.  Without ``count`` (suggestions, whose
    terms ``rarest_terms`` chose) there is one query and nothing is counted.
    """
    if not groups:
        return Hits([], 0)
    source, condition, score, params = _statement(
        session, groups, scope, match_all=match_all, columns=()
    )
    if not count:  # suggestions: their terms are chosen to keep the matches few
        return await _ranked(session, source, condition, score, params, limit=limit, offset=offset)
    total = (
        await session.execute(
            text(
                f"SELECT count(*) FROM (SELECT 1 FROM {source} WHERE {condition} "
                f"LIMIT {COUNT_CAP + 1}) AS capped"
            ),
            params,
        )
    ).scalar_one()
    if total == 0 or offset >= total:
        return Hits([], total)
    if total > COUNT_CAP:
        narrow = _statement(session, groups, scope, match_all=match_all, columns=HEADS)
        hits = await _ranked(session, *narrow, limit=limit, offset=offset)
        if len(hits.ids) == limit:
            return Hits(hits.ids, total, hits.scores)
    hits = await _ranked(session, source, condition, score, params, limit=limit, offset=offset)
    return Hits(hits.ids, total, hits.scores)


async def _ranked(
    session: AsyncSession,
    source: str,
    condition: str,
    score: str,
    params: dict[str, Any],
    *,
    limit: int,
    offset: int,
) -> Hits:
    rows = (
        await session.execute(
            text(
                f"SELECT a.id, {score} AS score FROM {source} WHERE {condition} "
                "ORDER BY score, a.id LIMIT :limit OFFSET :offset"
            ),
            {**params, "limit": limit, "offset": offset},
        )
    ).all()
    return Hits([row[0] for row in rows], len(rows), {row[0]: float(row[1]) for row in rows})


async def ranked_ids(
    session: AsyncSession,
    groups: Sequence[Group],
    *,
    limit: int,
    match_all: bool = False,
    titles: bool = False,
) -> list[int]:
    """The best ``limit`` indexed articles for any of the terms (or, ``match_all``,
    for every group; or, ``titles``, in the titles alone), live or not, without
    reading the articles (the caller keeps the live ones)."""
    params: dict[str, Any] = {"limit": limit}
    if is_sqlite(session):
        params["q"] = fts5_query(groups, match_all=match_all, columns=HEADS if titles else ())
        sql = (
            "SELECT rowid FROM kb_search WHERE kb_search MATCH :q "
            f"ORDER BY bm25(kb_search, {SQLITE_WEIGHTS}), rowid LIMIT :limit"
        )
    else:
        params["q"] = tsquery(groups, match_all=match_all)
        vector = "a.title_vector" if titles else "a.search_vector"
        sql = (
            "SELECT a.id FROM kb_articles a, to_tsquery('simple', :q) q(query) "
            f"WHERE {vector} @@ q.query "
            f"ORDER BY ts_rank({POSTGRES_WEIGHTS}, {vector}, q.query) DESC, a.id "
            "LIMIT :limit"
        )
    return [row[0] for row in await session.execute(text(sql), params)]


async def document_counts(session: AsyncSession, terms: Sequence[str]) -> dict[str, int]:
    """In how many indexed articles each term occurs (0: none), from ``kb_terms``."""
    if not terms:
        return {}
    rows = await session.execute(
        select(KbTerm.term, KbTerm.articles).where(KbTerm.term.in_(list(terms)))
    )
    counts = {term: int(n) for term, n in rows}
    return {term: counts.get(term, 0) for term in terms}


@dataclass(frozen=True)
class RankPlan:
    """Which terms to rank articles by, and how."""

    terms: list[str]
    # Even the rarest term matches more articles than ranking can afford (ranking
    # reads each match's whole index entry: thousands cost tens of ms on PostgreSQL),
    # so only the articles that have both it and the next rarest term are ranked.
    both: bool = False


async def rank_plan(
    session: AsyncSession, terms: Sequence[str], *, budget: int | None = None
) -> RankPlan:
    budget = _budget(session) if budget is None else budget
    counts = await document_counts(session, terms)
    chosen = _rarest(terms, counts, budget)
    if len(chosen) == 1 and counts[chosen[0]] > budget:
        others = sorted((t for t in terms if counts[t] and t != chosen[0]), key=counts.__getitem__)
        if others:
            return RankPlan([chosen[0], others[0]], both=True)
    return RankPlan(chosen)


def _budget(session: AsyncSession) -> int:
    return RANK_BUDGET["sqlite" if is_sqlite(session) else "postgresql"]


async def rarest_terms(
    session: AsyncSession, terms: Sequence[str], *, budget: int | None = None
) -> list[str]:
    """The terms that say most about which article fits, for an any-word search:
    the rarest first (they weigh most in the ranking anyway), as long as the
    articles they match stay about within ``budget``, so ranking them stays cheap
    however common the ticket's words are.  Terms no article has are dropped."""
    budget = _budget(session) if budget is None else budget
    return _rarest(terms, await document_counts(session, terms), budget)


def _rarest(terms: Sequence[str], counts: dict[str, int], budget: int) -> list[str]:
    chosen: list[str] = []
    matched = 0
    for term in sorted(terms, key=lambda t: (counts[t], terms.index(t))):
        if counts[term] == 0:
            continue
        if chosen and matched + counts[term] > budget:
            break
        chosen.append(term)
        matched += counts[term]
    return sorted(chosen, key=terms.index)


async def find_by_grams(
    session: AsyncSession, query: str, scope: Scope, *, limit: int = 20
) -> list[int]:
    """Titles that contain the query's letters though not its words: a part of a
    word or a code (SQLite: trigram substring), or a misspelling (PostgreSQL: pg_trgm
    word similarity).  Queries shorter than three characters find nothing here."""
    # Control characters are no letters, and a NUL would end the query early in
    # SQLite's C API and is refused in PostgreSQL text.
    folded = "".join(" " if unicodedata.category(c) == "Cc" else c for c in normalise(query))
    folded = " ".join(folded.split())
    if len(folded) < 3:
        return []
    params: dict[str, Any] = {"limit": limit}
    where = scope_clauses(scope, params)
    if is_sqlite(session):
        params["q"] = '"' + folded.replace('"', '""') + '"'
        sql = (
            "SELECT a.id FROM kb_search_grams g CROSS JOIN kb_articles a ON a.id = g.rowid "
            f"WHERE kb_search_grams MATCH :q {''.join(' AND ' + w for w in where)} "
            "ORDER BY bm25(kb_search_grams), a.id LIMIT :limit"
        )
    else:
        params["q"] = folded
        sql = (
            "SELECT a.id FROM kb_articles a WHERE :q <% a.title "
            f"{''.join(' AND ' + w for w in where)} "
            "ORDER BY word_similarity(:q, a.title) DESC, a.id LIMIT :limit"
        )
    return [row[0] for row in (await session.execute(text(sql), params)).all()]
