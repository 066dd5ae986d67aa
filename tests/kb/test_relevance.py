"""Relevance: 62 support articles (English and Chinese) and 51 questions people ask.

Each question names the article a good answer must show in its top three.  The
test prints the hit rate and fails below ``MINIMUM_HIT_RATE``.
"""

from __future__ import annotations

import json
from pathlib import Path

from desk.clock import FakeClock
from kb.index import Scope
from kb.options import KbOptions
from kb.search import search_articles
from kb.shapes import SearchQuery
from tests.conftest import Database
from tests.kb.conftest import Staff, publish

FIXTURES = Path(__file__).parent / "fixtures"
MINIMUM_HIT_RATE = 0.95


async def test_the_right_article_is_in_the_top_three_for_at_least_95_percent_of_questions(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    articles = json.loads((FIXTURES / "relevance_articles.json").read_text(encoding="utf-8"))
    queries = json.loads((FIXTURES / "relevance_queries.json").read_text(encoding="utf-8"))
    ids: dict[int, str] = {}
    for item in articles:
        article = await publish(
            database,
            staff,
            clock,
            options,
            title=item["title"],
            body=item["body"],
            language=item["language"],
            tags=item["tags"],
        )
        ids[article.id] = item["key"]
    misses = []
    async with database.sessions() as session:
        for item in queries:
            page = await search_articles(session, SearchQuery(q=item["query"], per_page=3), Scope())
            top = [ids[hit.article.id] for hit in page.hits]
            if not set(item["expect"]) <= set(top):
                misses.append(f"{item['query']!r}: expected {item['expect']}, got {top}")
    rate = 1 - len(misses) / len(queries)
    print(
        f"\nrelevance ({database.backend}): {len(queries) - len(misses)}/{len(queries)} "
        f"questions have the right article in the top 3 = {rate:.1%}"
    )
    for miss in misses:
        print("  miss:", miss)
    assert rate >= MINIMUM_HIT_RATE, "\n".join(misses)
