"""Passwords (argon2), signing in (with lockout) and sign-in sessions (random tokens,
stored only as hashes)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from desk.errors import AuthenticationFailed
from desk.lockout import LockoutPolicy, failures_of, forget_failures, record_failure
from desk.models import Agent, AuthSession, User

_hasher = PasswordHasher()
# Verified against when the user does not exist, so a wrong username costs as
# much time as a wrong password and does not reveal which accounts exist.
_DUMMY_HASH = _hasher.hash("calldesk-dummy-password")


def use_cheap_hashing_for_tests() -> None:
    """Argon2 with minimal cost: same algorithm and checks, a fraction of the time."""
    global _hasher, _DUMMY_HASH
    _hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    _DUMMY_HASH = _hasher.hash("calldesk-dummy-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def authenticate(session: AsyncSession, username: str, password: str) -> User:
    user = await session.scalar(select(User).where(User.username == username))
    if user is None:
        password_matches(_DUMMY_HASH, password)
        raise AuthenticationFailed("wrong username or password")
    if not password_matches(user.password_hash, password) or not user.active:
        raise AuthenticationFailed("wrong username or password")
    return user


async def check_sign_in(
    session: AsyncSession, username: str, password: str, *, now: datetime, policy: LockoutPolicy
) -> User | None:
    """The user these credentials sign in, or None; either way the caller commits,
    so a failure is counted (``desk.lockout``) and a success forgets earlier ones.

    Every path checks one password hash and writes once, so an unknown name, a
    locked account and a wrong password look and take the same."""
    locked = (await failures_of(session, username, now=now, policy=policy)).locked(now)
    user = await session.scalar(select(User).where(User.username == username))
    matches = password_matches(user.password_hash if user is not None else _DUMMY_HASH, password)
    if user is None or not matches or not user.active or locked:
        await record_failure(session, username, now=now, policy=policy)
        return None
    await forget_failures(session, username)
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def start_session(
    session: AsyncSession, user: User, *, now: datetime, lifetime: timedelta
) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        AuthSession(
            token_hash=_digest(token), user_id=user.id, created_at=now, expires_at=now + lifetime
        )
    )
    await session.flush()
    return token


async def user_for_token(session: AsyncSession, token: str, *, now: datetime) -> User | None:
    if not token or len(token) > 200:
        return None
    # Every request and socket asks this: one statement (user, agent and skills joined)
    # instead of a round trip for the session row and one per relationship.
    result = await session.scalars(
        select(User)
        .join(AuthSession, AuthSession.user_id == User.id)
        .where(
            AuthSession.token_hash == _digest(token),
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > now,
            User.active.is_(True),
        )
        .options(joinedload(User.agent).joinedload(Agent.skills))
    )
    return result.unique().one_or_none()


async def end_session(session: AsyncSession, token: str, *, now: datetime) -> None:
    row = await session.scalar(select(AuthSession).where(AuthSession.token_hash == _digest(token)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = now
