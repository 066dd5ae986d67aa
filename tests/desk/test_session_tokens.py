"""Who a bearer token names: the signed-in user with their agent and skills, or
nobody when the token is unknown, revoked, expired, or its user was deactivated."""

from __future__ import annotations

from datetime import timedelta

import pytest

from desk.auth import end_session, start_session, user_for_token
from desk.clock import FakeClock
from desk.models import User
from desk.users import AgentIn, SkillIn, UserDraft, create_user
from tests.conftest import Database

LIFETIME = timedelta(hours=8)


async def _signed_in(database: Database, clock: FakeClock) -> tuple[int, str]:
    async with database.sessions() as session:
        user = await create_user(
            session,
            UserDraft(
                username="alice",
                display_name="Alice",
                password="long enough",
                agent=AgentIn(extension="1001", skills=[SkillIn(name="billing", level=3)]),
            ),
            now=clock.now(),
        )
        token = await start_session(session, user, now=clock.now(), lifetime=LIFETIME)
        await session.commit()
        return user.id, token


async def test_a_live_token_names_its_user_with_agent_and_skills_loaded(
    database: Database, clock: FakeClock
) -> None:
    user_id, token = await _signed_in(database, clock)
    async with database.sessions() as session:
        user = await user_for_token(session, token, now=clock.now())
    assert user is not None and user.id == user_id
    # Read after the session closed: loaded with the user, not lazily.
    assert user.agent is not None and user.agent.extension == "1001"
    assert [skill.level for skill in user.agent.skills] == [3]


@pytest.mark.parametrize(
    "spoil",
    ["unknown", "revoked", "expired", "deactivated", "empty", "oversized"],
)
async def test_a_token_that_is_no_longer_good_names_nobody(
    database: Database, clock: FakeClock, spoil: str
) -> None:
    user_id, token = await _signed_in(database, clock)
    now = clock.now()
    async with database.sessions() as session:
        if spoil == "unknown":
            token = token[::-1]
        elif spoil == "revoked":
            await end_session(session, token, now=now)
        elif spoil == "expired":
            now += LIFETIME
        elif spoil == "deactivated":
            user = await session.get(User, user_id)
            assert user is not None
            user.active = False
        elif spoil == "empty":
            token = ""
        else:
            token = token * 10
        await session.commit()
    async with database.sessions() as session:
        assert await user_for_token(session, token, now=now) is None
