"""Was this helpful: one vote per person or browser, and the list to review."""

from __future__ import annotations

from datetime import timedelta

import pytest

from desk.clock import FakeClock
from desk.errors import NotFound
from kb.feedback import needing_review, record_vote, review_reasons
from kb.options import KbOptions
from kb.records import Audience
from tests.conftest import Database
from tests.kb.conftest import Staff, publish


async def test_an_agent_votes_once_and_can_change_the_vote(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    article = await publish(database, staff, clock, options, title="Reset your password")
    async with database.sessions() as session:
        first = await record_vote(
            session, article.id, voter="user:1", helpful=True, now=clock.now(), options=options
        )
        again = await record_vote(
            session, article.id, voter="user:1", helpful=True, now=clock.now(), options=options
        )
        changed = await record_vote(
            session, article.id, voter="user:1", helpful=False, now=clock.now(), options=options
        )
        await session.commit()
    assert (first.counted, first.helpful_count, first.unhelpful_count) == (True, 1, 0)
    assert (again.counted, again.helpful_count) == (False, 1)
    assert (changed.counted, changed.helpful_count, changed.unhelpful_count) == (True, 0, 1)


async def test_one_address_cannot_stuff_the_public_count_with_new_browsers(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    article = await publish(database, staff, clock, options, title="Reset your password")
    async with database.sessions() as session:
        outcomes = [
            await record_vote(
                session,
                article.id,
                voter=f"browser:{n}",
                helpful=True,
                now=clock.now(),
                options=options,
                origin="net-1",
                public=True,
            )
            for n in range(10)
        ]
        other_place = await record_vote(
            session,
            article.id,
            voter="browser:x",
            helpful=True,
            now=clock.now(),
            options=options,
            origin="net-2",
            public=True,
        )
        await session.commit()
    assert [o.counted for o in outcomes] == [True] * 3 + [False] * 7
    assert (other_place.counted, other_place.helpful_count) == (True, 4)


async def test_the_public_cannot_vote_on_an_internal_article(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    article = await publish(
        database, staff, clock, options, title="Internal", audience=Audience.INTERNAL
    )
    async with database.sessions() as session:
        with pytest.raises(NotFound):
            await record_vote(
                session,
                article.id,
                voter="browser:1",
                helpful=True,
                now=clock.now(),
                options=options,
                origin="net",
                public=True,
            )


@pytest.mark.parametrize(
    ("helpful", "unhelpful", "days_unused", "reasons"),
    [
        (1, 4, 1, ["poor feedback: 1 of 5 found it helpful"]),
        (3, 2, 1, []),
        (1, 3, 1, []),  # too few votes to judge
        (5, 0, 91, ["not used for 91 days"]),
        (0, 6, 120, ["poor feedback: 0 of 6 found it helpful", "not used for 120 days"]),
    ],
)
def test_review_reasons(
    helpful: int, unhelpful: int, days_unused: int, reasons: list[str], clock: FakeClock
) -> None:
    now = clock.now()
    assert (
        review_reasons(
            helpful=helpful,
            unhelpful=unhelpful,
            last_used_at=now - timedelta(days=days_unused),
            published_at=now - timedelta(days=400),
            now=now,
            options=KbOptions(),
        )
        == reasons
    )


async def test_poorly_rated_and_unused_articles_are_listed_for_review(
    database: Database, staff: Staff, clock: FakeClock, options: KbOptions
) -> None:
    stale = await publish(database, staff, clock, options, title="Old fax instructions")
    clock.advance(timedelta(days=100))
    poor = await publish(database, staff, clock, options, title="Confusing refund steps")
    await publish(database, staff, clock, options, title="Fine article")
    async with database.sessions() as session:
        for n in range(5):
            await record_vote(
                session,
                poor.id,
                voter=f"user:{n}",
                helpful=n == 0,
                now=clock.now(),
                options=options,
            )
        await session.commit()
        items, total = await needing_review(
            session, now=clock.now(), options=options, limit=10, offset=0
        )
    assert total == 2
    assert {(i.article.id, tuple(i.reasons)) for i in items} == {
        (poor.id, ("poor feedback: 1 of 5 found it helpful",)),
        (stale.id, ("not used for 100 days",)),
    }
