"""Account lockout: ten failed sign-ins in fifteen minutes lock the name for fifteen
minutes, and the answer never tells a locked account from a wrong password or a
name nobody has."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from desk.lockout import NONE, Failures, LockoutPolicy, after_failure
from desk.models import LoginFailures
from desk.settings import Settings, load_settings
from tests.conftest import TEST_SECRET
from tests.web.conftest import PASSWORD, Desk
from web.pages.sign_in import sign_in_token

POLICY = LockoutPolicy(failures=3, window=timedelta(minutes=15), lock=timedelta(minutes=15))
T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Rate limits out of the way: these tests are about the lock.
    generous = {"count": 1000, "seconds": 60}
    return load_settings(
        environ={},
        overrides={
            "mode": "test",
            "secret_key": TEST_SECRET,
            "database_url": database_url,
            "rate_limits_login_address": generous,
            "rate_limits_login_account": generous,
        },
    )


def _failures(*minutes: float) -> Failures:
    state = NONE
    for minute in minutes:
        state = after_failure(state, now=T0 + timedelta(minutes=minute), policy=POLICY)
    return state


async def _login(desk: Desk, username: str, password: str) -> tuple[int, dict[str, object]]:
    response = await desk.client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    return response.status, await response.json()


async def _fail(desk: Desk, username: str, times: int) -> None:
    for _ in range(times):
        status, _ = await _login(desk, username, "wrong password")
        assert status == 401


def test_the_third_failure_within_the_window_locks_the_name_for_the_lock_time() -> None:
    locked = _failures(0, 5, 10)
    assert locked.locked_until == T0 + timedelta(minutes=25)
    assert locked.locked(T0 + timedelta(minutes=24)) and not locked.locked(
        T0 + timedelta(minutes=25)
    )
    assert not _failures(0, 5).locked(T0 + timedelta(minutes=5))


def test_failures_older_than_the_window_do_not_count() -> None:
    state = _failures(0, 10, 16)
    assert not state.locked(T0 + timedelta(minutes=16))
    assert len(state.failed_at) == 2


def test_failures_while_locked_do_not_extend_the_lock() -> None:
    assert _failures(0, 1, 2, 10, 16).locked_until == T0 + timedelta(minutes=17)


def test_counting_starts_afresh_once_a_lock_is_over() -> None:
    state = _failures(0, 1, 2, 20)
    assert (state.locked_until, len(state.failed_at)) == (None, 1)


async def test_a_locked_account_refuses_the_right_password_exactly_like_a_wrong_one(
    desk: Desk,
) -> None:
    await _fail(desk, "alice", 10)
    locked = await _login(desk, "alice", PASSWORD)
    wrong = await _login(desk, "bob", "wrong password")
    unknown = await _login(desk, "mallory", PASSWORD)
    assert locked == wrong == unknown
    assert locked == (
        401,
        {
            "error": {
                "code": "authentication_failed",
                "message": "wrong username or password",
                "fields": {},
            }
        },
    )


async def test_the_lock_lifts_after_its_time(desk: Desk) -> None:
    await _fail(desk, "alice", 10)
    desk.clock.advance(timedelta(minutes=14))
    assert (await _login(desk, "alice", PASSWORD))[0] == 401
    desk.clock.advance(timedelta(minutes=1))
    assert (await _login(desk, "alice", PASSWORD))[0] == 200


async def test_a_successful_sign_in_forgets_earlier_failures(desk: Desk) -> None:
    await _fail(desk, "alice", 9)
    assert (await _login(desk, "alice", PASSWORD))[0] == 200
    await _fail(desk, "alice", 9)
    assert (await _login(desk, "alice", PASSWORD))[0] == 200


async def test_failures_and_the_lock_are_kept_in_the_database(desk: Desk) -> None:
    await _fail(desk, "Alice ", 10)  # what was typed, trimmed and case-folded
    await _fail(desk, "mallory", 2)
    async with desk.database.sessions() as session:
        rows = {row.username: row for row in await session.scalars(select(LoginFailures))}
    assert rows["alice"].locked_until == desk.clock.now() + timedelta(minutes=15)
    assert (len(rows["mallory"].failed_at), rows["mallory"].locked_until) == (2, None)


async def test_an_admin_sees_and_lifts_a_lock(desk: Desk) -> None:
    await _fail(desk, "alice", 10)
    alice = desk.ids["alice"]
    seen = await desk.client.get(f"/api/v1/users/{alice}/lockout", headers=desk.auth("admin"))
    assert (await seen.json())["locked"] is True
    unlocked = await desk.client.post(f"/api/v1/users/{alice}/unlock", headers=desk.auth("admin"))
    assert unlocked.status == 200
    body = await unlocked.json()
    assert (body["locked"], body["recent_failures"], body["username"]) == (False, 0, "alice")
    assert (await _login(desk, "alice", PASSWORD))[0] == 200


async def test_only_admins_may_lift_a_lock(desk: Desk) -> None:
    alice = desk.ids["alice"]
    for who in ("sam", "bob"):
        refused = await desk.client.post(f"/api/v1/users/{alice}/unlock", headers=desk.auth(who))
        assert refused.status == 403


async def test_the_sign_in_page_answers_a_locked_account_like_a_wrong_password(
    desk: Desk,
) -> None:
    await _fail(desk, "alice", 10)

    async def page(username: str, password: str) -> tuple[int, str]:
        token = sign_in_token(TEST_SECRET, desk.clock.now())
        response = await desk.client.post(
            "/desk/sign-in",
            data={"username": username, "password": password, "form_token": token},
            allow_redirects=False,
        )
        text = await response.text()
        return response.status, text.replace(username, "NAME")

    assert await page("alice", PASSWORD) == await page("bob", "wrong password")
    assert (await page("alice", PASSWORD))[0] == 401
