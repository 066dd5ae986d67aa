"""The demo's articles: published in English and Chinese, seeded once."""

from __future__ import annotations

from desk.clock import FakeClock
from kb.demo_articles import seed_demo_articles
from kb.index import Scope
from kb.options import KbOptions
from kb.search import search_articles
from kb.shapes import SearchQuery
from tests.conftest import Database


async def test_the_demo_articles_are_published_once_and_found_in_both_languages(
    database: Database, clock: FakeClock, options: KbOptions
) -> None:
    assert await seed_demo_articles(database.sessions, now=clock.now(), options=options) == 12
    assert await seed_demo_articles(database.sessions, now=clock.now(), options=options) == 0
    async with database.sessions() as session:
        english = await search_articles(session, SearchQuery(q="refund"), Scope())
        chinese = await search_articles(session, SearchQuery(q="退款"), Scope())
    assert english.hits[0].article.title == "How long does a refund take?"
    assert chinese.hits[0].article.title == "退款多久到账"
