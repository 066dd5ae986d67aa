"""Writing the search index, in the caller's transaction (a rolled-back edit leaves
it unchanged), with the count of articles per term that suggestions read.

SQLite: ``kb_search`` (FTS5) and ``kb_search_grams`` (FTS5 trigram of titles),
rowid = article id.  PostgreSQL: the weighted ``kb_articles.search_vector`` and
``title_vector`` (titles alone, for ranking the many matches of a common word).
``kb_terms`` holds, per term, how many indexed articles have it: kept exact by
every write (the article's old terms are read back from the index itself) and
recounted from the index by ``recount_terms``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from kb.records import KbArticle
from kb.terms import index_text, normalise

_SQLITE_INSERT = (
    "INSERT INTO kb_search (rowid, title, summary, tags, body) "
    "VALUES (:id, :title, :summary, :tags, :body)"
)
_SQLITE_GRAMS = "INSERT INTO kb_search_grams (rowid, title) VALUES (:id, :raw_title)"
_POSTGRES_VECTOR = (
    "setweight(to_tsvector('simple', :title), 'A') || "
    "setweight(to_tsvector('simple', :summary), 'B') || "
    "setweight(to_tsvector('simple', :tags), 'B') || "
    "setweight(to_tsvector('simple', :body), 'D')"
)
_POSTGRES_TITLE = "to_tsvector('simple', :title)"
_COUNT = (
    "INSERT INTO kb_terms (term, articles) VALUES (:term, :n) ON CONFLICT (term) "
    "DO UPDATE SET articles = kb_terms.articles + excluded.articles"
)


def is_sqlite(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def document(article: KbArticle) -> dict[str, Any]:
    return {
        "id": article.id,
        "title": index_text(article.title),
        "summary": index_text(article.summary),
        "tags": index_text(" ".join(article.tags or [])),
        "body": index_text(article.body_text),
        "raw_title": normalise(article.title),
    }


def _terms(doc: dict[str, Any]) -> set[str]:
    return set(f"{doc['title']} {doc['summary']} {doc['tags']} {doc['body']}".split())


async def _indexed_terms(session: AsyncSession, article_id: int) -> set[str]:
    if is_sqlite(session):
        row = (
            await session.execute(
                text("SELECT title, summary, tags, body FROM kb_search WHERE rowid = :id"),
                {"id": article_id},
            )
        ).first()
        return set(" ".join(row).split()) if row is not None else set()
    lexemes = await session.scalar(
        text("SELECT tsvector_to_array(search_vector) FROM kb_articles WHERE id = :id"),
        {"id": article_id},
    )
    return set(lexemes or ())


async def _count(session: AsyncSession, before: set[str], after: set[str]) -> None:
    # Sorted, so two transactions counting the same terms lock them in the same order.
    changes = sorted([(t, 1) for t in after - before] + [(t, -1) for t in before - after])
    if changes:
        await session.execute(text(_COUNT), [{"term": t, "n": n} for t, n in changes])


async def write_index(session: AsyncSession, article: KbArticle) -> None:
    """Put the article's current columns into the index (flush first)."""
    doc = document(article)
    before = await _indexed_terms(session, article.id)
    if is_sqlite(session):
        await _drop_sqlite(session, article.id)
        await session.execute(text(_SQLITE_INSERT), doc)
        await session.execute(text(_SQLITE_GRAMS), doc)
        after = _terms(doc)
    else:
        lexemes = await session.scalar(
            text(
                f"UPDATE kb_articles SET search_vector = {_POSTGRES_VECTOR}, "
                f"title_vector = {_POSTGRES_TITLE} WHERE id = :id "
                "RETURNING tsvector_to_array(search_vector)"
            ),
            doc,
        )
        after = set(lexemes or ())
    await _count(session, before, after)


async def drop_from_index(session: AsyncSession, article_id: int) -> None:
    before = await _indexed_terms(session, article_id)
    if is_sqlite(session):
        await _drop_sqlite(session, article_id)
    else:
        await session.execute(
            text("UPDATE kb_articles SET search_vector = NULL, title_vector = NULL WHERE id = :id"),
            {"id": article_id},
        )
    await _count(session, before, set())


async def _drop_sqlite(session: AsyncSession, article_id: int) -> None:
    await session.execute(text("DELETE FROM kb_search WHERE rowid = :id"), {"id": article_id})
    await session.execute(text("DELETE FROM kb_search_grams WHERE rowid = :id"), {"id": article_id})


async def clear_index(session: AsyncSession) -> None:
    if is_sqlite(session):
        await session.execute(text("DELETE FROM kb_search"))
        await session.execute(text("DELETE FROM kb_search_grams"))
    else:
        await session.execute(
            text("UPDATE kb_articles SET search_vector = NULL, title_vector = NULL")
        )
    await session.execute(text("DELETE FROM kb_terms"))


async def index_all(session: AsyncSession, articles: Sequence[KbArticle]) -> None:
    """Index many articles not in the index yet (after ``clear_index``) in a few
    statements; ``recount_terms`` afterwards."""
    docs = [document(article) for article in articles]
    if not docs:
        return
    if is_sqlite(session):
        await session.execute(text(_SQLITE_INSERT), docs)
        await session.execute(text(_SQLITE_GRAMS), docs)
    else:
        await session.execute(
            text(
                f"UPDATE kb_articles SET search_vector = {_POSTGRES_VECTOR}, "
                f"title_vector = {_POSTGRES_TITLE} WHERE id = :id"
            ),
            docs,
        )


async def recount_terms(session: AsyncSession) -> None:
    """Count the articles per term afresh from the index itself."""
    await session.execute(text("DELETE FROM kb_terms"))
    if is_sqlite(session):
        await session.execute(
            text(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.kb_vocabulary "
                "USING fts5vocab(main, kb_search, 'row')"
            )
        )
        await session.execute(
            text("INSERT INTO kb_terms (term, articles) SELECT term, doc FROM temp.kb_vocabulary")
        )
        await session.execute(text("DROP TABLE temp.kb_vocabulary"))
    else:
        await session.execute(
            text(
                "INSERT INTO kb_terms (term, articles) SELECT lexeme, count(*) "
                "FROM kb_articles, unnest(search_vector) GROUP BY lexeme"
            )
        )
