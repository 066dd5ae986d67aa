"""Account lockout: too many failed sign-ins under one name lock it for a while.

The decisions are pure (``Failures`` in, ``Failures`` out, ``now`` given); the
database keeps them per user name as typed, case-folded (``LoginFailures``),
whether or not such a user exists: an unknown name costs the same write and
locks the same way, so neither the answer, its timing nor the lock tell an
attacker which accounts exist.  Failures while locked do not extend the lock,
so nobody can keep an account locked for ever by guessing slower than the
rate limit; a successful sign-in forgets the failures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from desk.models import LoginFailures
from desk.settings import Settings

log = logging.getLogger(__name__)

NAME_LENGTH = 64


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    failures: int  # this many within ``window`` lock the name
    window: timedelta
    lock: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> LockoutPolicy:
        return cls(
            failures=settings.lockout_failures,
            window=timedelta(minutes=settings.lockout_window_minutes),
            lock=timedelta(minutes=settings.lockout_minutes),
        )


@dataclass(frozen=True, slots=True)
class Failures:
    """One name's recent failures (inside the window) and its lock, if any."""

    failed_at: tuple[datetime, ...] = ()
    locked_until: datetime | None = None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


NONE = Failures()


def after_failure(state: Failures, *, now: datetime, policy: LockoutPolicy) -> Failures:
    """The state after one more failed sign-in at ``now``."""
    if state.locked(now):
        return state
    recent = (*(at for at in state.failed_at if now - at < policy.window), now)
    if len(recent) >= policy.failures:
        return Failures(failed_at=(), locked_until=now + policy.lock)
    return Failures(failed_at=recent, locked_until=None)


def current(state: Failures, *, now: datetime, policy: LockoutPolicy) -> Failures:
    """What still counts at ``now``: failures inside the window, a lock not yet over."""
    recent = tuple(at for at in state.failed_at if now - at < policy.window)
    return replace(
        state, failed_at=recent, locked_until=state.locked_until if state.locked(now) else None
    )


def name_key(username: str) -> str:
    """The name failures are counted under: what was typed, trimmed and case-folded
    (user names are lower case, so "Alice" guesses count against alice)."""
    return username.strip().casefold()[:NAME_LENGTH]


def _state_of(row: LoginFailures | None) -> Failures:
    if row is None:
        return NONE
    return Failures(
        failed_at=tuple(datetime.fromisoformat(at) for at in row.failed_at),
        locked_until=row.locked_until,
    )


async def _row(session: AsyncSession, key: str, *, lock: bool = False) -> LoginFailures | None:
    query = select(LoginFailures).where(LoginFailures.username == key)
    if lock and session.get_bind().dialect.name == "postgresql":
        # Two failures for one name at once: the second waits and counts on top.
        query = query.with_for_update()
    found: LoginFailures | None = await session.scalar(
        query.execution_options(populate_existing=True)
    )
    return found


async def failures_of(
    session: AsyncSession, username: str, *, now: datetime, policy: LockoutPolicy
) -> Failures:
    return current(_state_of(await _row(session, name_key(username))), now=now, policy=policy)


async def record_failure(
    session: AsyncSession, username: str, *, now: datetime, policy: LockoutPolicy
) -> Failures:
    """Count a failed sign-in under ``username`` (flushed; the caller commits)."""
    key = name_key(username)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(
        insert(LoginFailures)
        .values(username=key, failed_at=[], locked_until=None, updated_at=now)
        .on_conflict_do_nothing(index_elements=["username"])
    )
    row = await _row(session, key, lock=True)
    assert row is not None  # inserted above, or already there
    before = _state_of(row)
    after = after_failure(before, now=now, policy=policy)
    row.failed_at = [at.isoformat() for at in after.failed_at]
    row.locked_until = after.locked_until
    row.updated_at = now
    if after.locked(now) and not before.locked(now):
        log.warning(
            "sign-in name %r locked until %s after failed sign-ins", key, after.locked_until
        )
    # Names nobody has tried for longer than a window and a lock are noise now.
    await session.execute(
        delete(LoginFailures)
        .where(LoginFailures.updated_at < now - policy.window - policy.lock)
        .execution_options(synchronize_session=False)
    )
    await session.flush()
    return after


async def forget_failures(session: AsyncSession, username: str) -> bool:
    """After a successful sign-in, or an admin's unlock: start from nothing.
    False if there was nothing to forget."""
    result = await session.execute(
        delete(LoginFailures)
        .where(LoginFailures.username == name_key(username))
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))
