"""The outbox: mail is written in the caller's transaction, once per key, claimed
by one sender at a time, and retried on a capped, jittered, growing backoff."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from desk.clock import FakeClock
from desk.outbox import (
    CLAIM_LEASE,
    Backoff,
    ClaimedMessage,
    claim_due,
    enqueue_mail,
    next_due,
    outbox_messages,
    record_failure,
    record_sent,
    retry_at,
)
from tests.conftest import Database

SECONDS = timedelta(seconds=1)
MINUTES = timedelta(minutes=1)


async def enqueue(
    database: Database, now: datetime, key: str = "escalation:1:resolution:0:2"
) -> bool:
    async with database.sessions() as session, session.begin():
        return await enqueue_mail(
            session,
            dedupe_key=key,
            to=["tom@example.com", "sam@example.com"],
            subject="Ticket #1 escalated",
            body="Ticket #1 is late.",
            now=now,
        )


async def claim(database: Database, now: datetime, limit: int = 10) -> list[ClaimedMessage]:
    async with database.sessions() as session, session.begin():
        return await claim_due(session, now=now, limit=limit)


@pytest.mark.parametrize(
    ("attempts", "jitter", "wait"),
    [
        (1, 0.0, 15 * SECONDS),  # half of 30 s at the least
        (1, 0.5, 22.5 * SECONDS),
        (1, 0.999, 29.985 * SECONDS),  # just under the full 30 s
        (2, 0.0, 30 * SECONDS),
        (3, 0.0, 60 * SECONDS),
        (4, 0.5, 3 * MINUTES),  # 4 min, three quarters
        (7, 0.0, 16 * MINUTES),
        (8, 0.0, 30 * MINUTES),  # 64 min, capped at the hour
        (8, 0.999, 59.97 * MINUTES),
        (9, 0.0, 30 * MINUTES),
        (60, 0.0, 30 * MINUTES),
    ],
)
def test_the_wait_after_a_failure_doubles_up_to_a_cap_and_half_of_it_is_jitter(
    attempts: int, jitter: float, wait: timedelta
) -> None:
    backoff = Backoff(first=30 * SECONDS, cap=timedelta(hours=1))
    assert backoff.delay(attempts, jitter) == wait


@pytest.mark.parametrize(
    ("attempts", "permanent", "again_in"),
    [
        (1, False, 15 * SECONDS),
        (4, False, 2 * MINUTES),
        (5, False, None),  # the last of five attempts
        (1, True, None),  # refused for good: no second attempt
    ],
)
def test_a_failed_message_is_retried_until_its_last_attempt_or_refused_for_good(
    attempts: int, permanent: bool, again_in: timedelta | None
) -> None:
    now = FakeClock().now()
    when = retry_at(
        attempts=attempts,
        max_attempts=5,
        now=now,
        backoff=Backoff(),
        jitter=0.0,
        permanent=permanent,
    )
    assert when == (None if again_in is None else now + again_in)


async def test_enqueued_mail_is_kept_with_its_recipients_and_due_at_once(
    database: Database, clock: FakeClock
) -> None:
    assert await enqueue(database, clock.now())
    async with database.sessions() as session:
        (message,) = await outbox_messages(session)
        assert await next_due(session) == clock.now()
    assert message.to == ["tom@example.com", "sam@example.com"]
    assert (message.subject, message.body) == ("Ticket #1 escalated", "Ticket #1 is late.")
    assert (message.attempts, message.sent_at, message.failed_at) == (0, None, None)
    assert message.created_at == message.next_attempt_at == clock.now()


async def test_enqueueing_the_same_key_again_writes_nothing(
    database: Database, clock: FakeClock
) -> None:
    assert await enqueue(database, clock.now())
    assert not await enqueue(database, clock.advance(60))
    async with database.sessions() as session:
        assert len(await outbox_messages(session)) == 1


async def test_mail_enqueued_in_a_transaction_that_rolls_back_is_gone_with_it(
    database: Database, clock: FakeClock
) -> None:
    async with database.sessions() as session:
        await enqueue_mail(
            session,
            dedupe_key="escalation:1:resolution:0:2",
            to=["tom@example.com"],
            subject="s",
            body="b",
            now=clock.now(),
        )
        await session.rollback()
    async with database.sessions() as session:
        assert await outbox_messages(session) == []


async def test_a_claimed_message_is_not_claimed_again_until_its_lease_lapses(
    database: Database, clock: FakeClock
) -> None:
    await enqueue(database, clock.now())
    (first,) = await claim(database, clock.now())
    assert first.attempts == 1
    assert await claim(database, clock.advance(CLAIM_LEASE - SECONDS)) == []
    (again,) = await claim(database, clock.advance(SECONDS))
    assert (again.id, again.attempts) == (first.id, 2)


async def test_messages_are_claimed_oldest_due_first_up_to_the_limit(
    database: Database, clock: FakeClock
) -> None:
    for n in range(5):
        await enqueue(database, clock.now() - n * SECONDS, key=f"k{n}")
    claimed = await claim(database, clock.now(), limit=2)
    assert sorted(message.dedupe_key for message in claimed) == ["k3", "k4"]


async def test_a_sent_message_is_never_claimed_again(database: Database, clock: FakeClock) -> None:
    await enqueue(database, clock.now())
    (message,) = await claim(database, clock.now())
    sent_at = clock.advance(2)
    async with database.sessions() as session, session.begin():
        assert await record_sent(session, message, now=sent_at)
    assert await claim(database, clock.advance(timedelta(days=1))) == []
    async with database.sessions() as session:
        (row,) = await outbox_messages(session)
        assert await next_due(session) is None
    assert (row.sent_at, row.next_attempt_at, row.last_error) == (sent_at, None, None)


async def test_the_outcome_of_a_lapsed_claim_does_not_overwrite_a_later_one(
    database: Database, clock: FakeClock
) -> None:
    await enqueue(database, clock.now())
    (stale,) = await claim(database, clock.now())
    (current,) = await claim(database, clock.advance(CLAIM_LEASE))
    async with database.sessions() as session, session.begin():
        assert not await record_failure(
            session, stale, now=clock.now(), error="too late", retry=None
        )
        assert await record_sent(session, current, now=clock.now())
    async with database.sessions() as session:
        (row,) = await outbox_messages(session)
    assert (row.attempts, row.sent_at, row.failed_at, row.last_error) == (
        2,
        clock.now(),
        None,
        None,
    )


async def test_a_message_given_up_is_kept_as_failed_with_its_last_error(
    database: Database, clock: FakeClock
) -> None:
    await enqueue(database, clock.now())
    (message,) = await claim(database, clock.now())
    async with database.sessions() as session, session.begin():
        await record_failure(session, message, now=clock.now(), error="550 no", retry=None)
    async with database.sessions() as session:
        (row,) = await outbox_messages(session)
    assert (row.failed_at, row.sent_at, row.next_attempt_at, row.last_error) == (
        clock.now(),
        None,
        None,
        "550 no",
    )
    assert await claim(database, clock.advance(timedelta(days=1))) == []
