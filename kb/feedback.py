""" "Was this helpful": one vote per agent or browser, and the list of articles to look at.

An agent votes as ``user:<id>``; a browser as ``browser:<hash of its cookie>``.
Voting again changes the vote instead of adding one.  New public votes from one
network address are capped per article per day, so clearing cookies in a loop
does not stuff the count.  The counts on the article are recounted from the
votes in the same transaction, so they cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from desk.errors import NotFound
from kb.options import KbOptions
from kb.records import Audience, KbArticle, KbVote


@dataclass(frozen=True, slots=True)
class VoteOutcome:
    counted: bool  # False: the same vote again, or a capped address
    helpful_count: int
    unhelpful_count: int


async def record_vote(
    session: AsyncSession,
    article_id: int,
    *,
    voter: str,
    helpful: bool,
    now: datetime,
    options: KbOptions,
    origin: str | None = None,
    public: bool = False,
) -> VoteOutcome:
    article = await session.get(KbArticle, article_id, with_for_update=True)
    readable = article is not None and article.live_version is not None
    if article is None or not readable or (public and article.audience != Audience.PUBLIC):
        raise NotFound(f"no published article {article_id}")
    vote = await session.scalar(
        select(KbVote).where(KbVote.article_id == article_id, KbVote.voter == voter)
    )
    counted = True
    if vote is not None:
        counted = vote.helpful != helpful
        vote.helpful, vote.updated_at = helpful, now
    elif public and await _origin_is_full(session, article_id, origin, now, options):
        counted = False
    else:
        session.add(
            KbVote(
                article_id=article_id,
                voter=voter,
                helpful=helpful,
                origin=origin,
                created_at=now,
                updated_at=now,
            )
        )
    await session.flush()
    if counted:
        article.helpful_count, article.unhelpful_count = await _counts(session, article_id)
        article.last_used_at = now
        await session.flush()
    return VoteOutcome(counted, article.helpful_count, article.unhelpful_count)


async def _origin_is_full(
    session: AsyncSession, article_id: int, origin: str | None, now: datetime, options: KbOptions
) -> bool:
    if origin is None:
        return False
    recent = await session.scalar(
        select(func.count())
        .select_from(KbVote)
        .where(
            KbVote.article_id == article_id,
            KbVote.origin == origin,
            KbVote.created_at > now - timedelta(days=1),
        )
    )
    return int(recent or 0) >= options.public_votes_per_origin


async def _counts(session: AsyncSession, article_id: int) -> tuple[int, int]:
    rows = (
        await session.execute(
            select(KbVote.helpful, func.count())
            .where(KbVote.article_id == article_id)
            .group_by(KbVote.helpful)
        )
    ).all()
    counts = {bool(helpful): int(n) for helpful, n in rows}
    return counts.get(True, 0), counts.get(False, 0)


def review_reasons(
    *,
    helpful: int,
    unhelpful: int,
    last_used_at: datetime | None,
    published_at: datetime | None,
    now: datetime,
    options: KbOptions,
) -> list[str]:
    """Why a live article needs a look, if it does."""
    reasons = []
    votes = helpful + unhelpful
    if votes >= options.poor_min_votes and helpful < options.poor_ratio * votes:
        reasons.append(f"poor feedback: {helpful} of {votes} found it helpful")
    since = last_used_at or published_at
    if since is not None and now - since > timedelta(days=options.unused_days):
        reasons.append(f"not used for {(now - since).days} days")
    return reasons


@dataclass(frozen=True, slots=True)
class ReviewItem:
    article: KbArticle
    reasons: list[str]


async def needing_review(
    session: AsyncSession, *, now: datetime, options: KbOptions, limit: int, offset: int
) -> tuple[list[ReviewItem], int]:
    """Live articles with poor feedback or no use for ``unused_days``, worst first."""
    votes = KbArticle.helpful_count + KbArticle.unhelpful_count
    unused_since = func.coalesce(KbArticle.last_used_at, KbArticle.published_at)
    condition = and_(
        KbArticle.live_version.is_not(None),
        or_(
            and_(
                votes >= options.poor_min_votes,
                KbArticle.helpful_count < options.poor_ratio * votes,
            ),
            unused_since < now - timedelta(days=options.unused_days),
        ),
    )
    total = await session.scalar(select(func.count()).select_from(KbArticle).where(condition))
    rows = await session.scalars(
        select(KbArticle)
        .where(condition)
        .order_by((KbArticle.helpful_count - KbArticle.unhelpful_count), unused_since, KbArticle.id)
        .limit(limit)
        .offset(offset)
    )
    items = [
        ReviewItem(
            a,
            review_reasons(
                helpful=a.helpful_count,
                unhelpful=a.unhelpful_count,
                last_used_at=a.last_used_at,
                published_at=a.published_at,
                now=now,
                options=options,
            ),
        )
        for a in rows
    ]
    return items, int(total or 0)
