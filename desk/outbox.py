"""The outbox: messages written in the transaction that causes them, sent after it.

A change that must tell someone by e-mail (an escalation, later a survey) calls
``enqueue_mail`` with its own session, so the message exists exactly when the
change committed.  Its ``dedupe_key`` names what the message is about; writing
the same key again is a no-op, so a retried transaction cannot mail twice.

A sender (``desk.mail_sender``) delivers the rows:

* ``claim_due`` takes due rows in one short transaction: it counts the attempt
  and moves ``next_attempt_at`` a lease ahead, so nobody else takes them while
  they are being sent.  PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED`` then
  the update, so two senders never wait for or take the same rows.  SQLite:
  one ``UPDATE … RETURNING`` (one writer at a time makes it atomic).
* After the send, ``record_sent`` or ``record_failure`` writes the outcome, but
  only while the claim is still the current one (``attempts`` unchanged): a
  sender whose lease ran out cannot overwrite what a later claim did.
* A failure is retried after ``Backoff.delay`` (capped, exponential, jittered);
  after ``max_attempts`` — or at once when the server refused the message for
  good — the row is marked failed and kept with its last error.

Sent and failed rows stay for the record.  The sending is at-least-once: a
process that dies between the server's "250 OK" and ``record_sent`` sends that
message again once its lease has lapsed (with the same Message-ID).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from desk.models import OutboxMessage

MAIL = "mail"
# How long a claim holds a message; a sender must finish (or give up on) its
# send well within it.
CLAIM_LEASE = timedelta(minutes=5)
_ERROR_LENGTH = 2000


class Delivery(Protocol):
    """Whoever delivers the outbox: poked after a commit that added messages."""

    def poke(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class ClaimedMessage:
    """A message a sender holds; ``attempts`` is this claim's number."""

    id: int
    dedupe_key: str
    to: tuple[str, ...]
    subject: str
    body: str
    created_at: datetime
    attempts: int
    html: str | None = None


@dataclass(frozen=True)
class Backoff:
    """Wait ``first`` after the first failure, twice as long after each next one,
    never more than ``cap``; a random half of each wait is jitter, so senders that
    failed together do not all come back together."""

    first: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)

    def delay(self, attempts: int, jitter: float) -> timedelta:
        """The wait after the ``attempts``-th failure; ``jitter`` is in [0, 1)."""
        if attempts < 1:
            raise ValueError(f"attempts count from 1, got {attempts}")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {jitter}")
        # min() first: 2 ** attempts would overflow a timedelta long before it matters.
        full: timedelta = min(self.cap, self.first * 2 ** min(attempts - 1, 32))
        return full / 2 + full / 2 * jitter


def retry_at(
    *,
    attempts: int,
    max_attempts: int,
    now: datetime,
    backoff: Backoff,
    jitter: float,
    permanent: bool = False,
) -> datetime | None:
    """When to try a failed message again, or None: give up (failed for good)."""
    if permanent or attempts >= max_attempts:
        return None
    return now + backoff.delay(attempts, jitter)


def error_text(error: BaseException, attempts: int) -> str:
    return f"attempt {attempts}: {type(error).__name__}: {error}"[:_ERROR_LENGTH]


async def enqueue_mail(
    session: AsyncSession,
    *,
    dedupe_key: str,
    to: Sequence[str],
    subject: str,
    body: str,
    now: datetime,
    html: str | None = None,
    not_before: datetime | None = None,
) -> bool:
    """Write an e-mail into the outbox in the caller's transaction, due now or
    (``not_before``) later: a sender delivers nothing before it is due.
    False: a message with this key exists already, and nothing was written."""
    if not_before is not None and not_before < now:
        raise ValueError("not_before is in the past; leave it out to send now")
    if not to:
        raise ValueError("an e-mail needs at least one recipient")
    if not dedupe_key or len(dedupe_key) > 200:
        raise ValueError("the dedupe key must be 1 to 200 characters")
    row = {
        "kind": MAIL,
        "dedupe_key": dedupe_key,
        "to": list(to),
        "subject": subject,
        "body": body,
        "html_body": html,
        "created_at": now,
        "attempts": 0,
        "next_attempt_at": not_before or now,
    }
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(OutboxMessage)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(OutboxMessage.id)
    )
    return (await session.execute(statement)).scalar() is not None


async def next_due(session: AsyncSession, *, kind: str = MAIL) -> datetime | None:
    """The earliest moment a message of ``kind`` is due (or its claim lapses)."""
    return await session.scalar(
        select(func.min(OutboxMessage.next_attempt_at)).where(
            OutboxMessage.kind == kind, OutboxMessage.next_attempt_at.is_not(None)
        )
    )


async def claim_due(
    session: AsyncSession,
    *,
    now: datetime,
    limit: int,
    kind: str = MAIL,
    lease: timedelta = CLAIM_LEASE,
) -> list[ClaimedMessage]:
    """Claim up to ``limit`` messages due by ``now``, oldest due first.  The
    caller commits; until ``now + lease`` nobody else claims them."""
    due = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.kind == kind,
            OutboxMessage.next_attempt_at.is_not(None),
            OutboxMessage.next_attempt_at <= now,
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
    )
    claim = update(OutboxMessage).values(
        attempts=OutboxMessage.attempts + 1, next_attempt_at=now + lease
    )
    if session.get_bind().dialect.name == "postgresql":
        ids = list((await session.scalars(due.with_for_update(skip_locked=True))).all())
        if not ids:
            return []
        claim = claim.where(OutboxMessage.id.in_(ids))
    else:
        claim = claim.where(
            OutboxMessage.id.in_(due),
            OutboxMessage.next_attempt_at.is_not(None),
            OutboxMessage.next_attempt_at <= now,
        )
    rows = await session.execute(
        claim.returning(
            OutboxMessage.id,
            OutboxMessage.dedupe_key,
            OutboxMessage.to,
            OutboxMessage.subject,
            OutboxMessage.body,
            OutboxMessage.html_body,
            OutboxMessage.created_at,
            OutboxMessage.attempts,
        ).execution_options(synchronize_session=False)
    )
    claimed = [
        ClaimedMessage(
            id=row.id,
            dedupe_key=row.dedupe_key,
            to=tuple(row.to),
            subject=row.subject,
            body=row.body,
            created_at=row.created_at,
            attempts=row.attempts,
            html=row.html_body,
        )
        for row in rows
    ]
    return sorted(claimed, key=lambda message: message.id)


def _still_claimed(message: ClaimedMessage) -> tuple[ColumnElement[bool], ...]:
    return (
        OutboxMessage.id == message.id,
        OutboxMessage.attempts == message.attempts,
        OutboxMessage.sent_at.is_(None),
        OutboxMessage.failed_at.is_(None),
    )


async def record_sent(
    session: AsyncSession, message: ClaimedMessage, *, now: datetime, note: str | None = None
) -> bool:
    """Mark a claimed message sent (``note``: e.g. recipients the server refused).
    False: the claim was no longer current, and nothing was written."""
    result = await session.execute(
        update(OutboxMessage)
        .where(*_still_claimed(message))
        .values(sent_at=now, next_attempt_at=None, last_error=note)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def record_failure(
    session: AsyncSession,
    message: ClaimedMessage,
    *,
    now: datetime,
    error: str,
    retry: datetime | None,
) -> bool:
    """Keep the error; try again at ``retry``, or (None) mark the message failed.
    False: the claim was no longer current, and nothing was written."""
    values: dict[str, object] = {"last_error": error[:_ERROR_LENGTH], "next_attempt_at": retry}
    if retry is None:
        values["failed_at"] = now
    result = await session.execute(
        update(OutboxMessage)
        .where(*_still_claimed(message))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def withdraw(session: AsyncSession, dedupe_key: str, *, now: datetime, reason: str) -> bool:
    """Take back a message no sender has taken yet (it waits for its time): kept,
    marked failed with ``reason``.  False: it was sent, given up, never written,
    or a sender has tried it — once tried, it may be on its way, so it stays."""
    result = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.dedupe_key == dedupe_key,
            OutboxMessage.attempts == 0,  # attempts counts claims: nobody holds it
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.failed_at.is_(None),
        )
        .values(
            next_attempt_at=None,
            failed_at=now,
            last_error=f"withdrawn: {reason}"[:_ERROR_LENGTH],
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def outbox_messages(session: AsyncSession, *, kind: str = MAIL) -> list[OutboxMessage]:
    """Every message of ``kind``, oldest first (for operators and tests)."""
    return list(
        await session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
        )
    )
