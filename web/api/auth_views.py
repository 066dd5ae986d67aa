"""Sign in and out; admins see and lift the lock failed sign-ins put on an account."""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web
from pydantic import BaseModel

from desk.auth import check_sign_in, end_session, start_session
from desk.errors import AuthenticationFailed
from desk.lockout import LockoutPolicy, failures_of
from desk.users import get_user, unlock_user
from web.api.endpoints import ADMINS, PUBLIC, STAFF, Endpoint, current_user, path_id, read_body
from web.api.schemas import LoginIn, LoginOut, UserOut, user_out
from web.security import CSRF_COOKIE, SESSION_COOKIE, bearer_token, set_session_cookies
from web.state import CLOCK, SESSIONS, SETTINGS
from web.throttle import count_failed_sign_in, refused_sign_in, too_many_json


class LockoutOut(BaseModel):
    user_id: int
    username: str
    locked: bool
    locked_until: datetime | None
    # Failed sign-ins under the name within the counting window.
    recent_failures: int


async def login(request: web.Request) -> web.Response:
    body = await read_body(request, LoginIn)
    refused = await refused_sign_in(request, body.username)
    if refused is not None:
        return too_many_json(refused)
    settings = request.app[SETTINGS]
    now = request.app[CLOCK].now()
    lifetime = timedelta(hours=settings.session_hours)
    policy = LockoutPolicy.from_settings(settings)
    async with request.app[SESSIONS]() as session:
        user = await check_sign_in(session, body.username, body.password, now=now, policy=policy)
        if user is not None:
            token = await start_session(session, user, now=now, lifetime=lifetime)
            out = LoginOut(token=token, expires_at=now + lifetime, user=user_out(user))
        await session.commit()  # the failure counted, or the earlier ones forgotten
    if user is None:
        await count_failed_sign_in(request)
        # The same words for an unknown name, a wrong password and a locked account.
        raise AuthenticationFailed("wrong username or password")
    response = web.json_response(out.model_dump(mode="json"))
    set_session_cookies(response, token, lifetime=lifetime, secure=settings.https)
    return response


async def logout(request: web.Request) -> web.Response:
    token = bearer_token(request) or request.cookies.get(SESSION_COOKIE, "")
    async with request.app[SESSIONS]() as session:
        await end_session(session, token, now=request.app[CLOCK].now())
        await session.commit()
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE)
    response.del_cookie(CSRF_COOKIE)
    return response


async def me(request: web.Request) -> web.Response:
    return web.json_response(user_out(current_user(request)).model_dump(mode="json"))


async def _lockout_out(request: web.Request, user_id: int, username: str) -> LockoutOut:
    now = request.app[CLOCK].now()
    policy = LockoutPolicy.from_settings(request.app[SETTINGS])
    async with request.app[SESSIONS]() as session:
        state = await failures_of(session, username, now=now, policy=policy)
    return LockoutOut(
        user_id=user_id,
        username=username,
        locked=state.locked(now),
        locked_until=state.locked_until,
        recent_failures=len(state.failed_at),
    )


async def lockout(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        user = await get_user(session, path_id(request))
        user_id, username = user.id, user.username
    out = await _lockout_out(request, user_id, username)
    return web.json_response(out.model_dump(mode="json"))


async def unlock(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        user = await unlock_user(session, path_id(request))
        user_id, username = user.id, user.username
        await session.commit()
    out = await _lockout_out(request, user_id, username)
    return web.json_response(out.model_dump(mode="json"))


ENDPOINTS = [
    Endpoint(
        "POST",
        "/api/v1/auth/login",
        login,
        "Sign in: username and password give a bearer token and a session cookie "
        "(limited per client address and per name; repeated failures lock the name)",
        "auth",
        PUBLIC,
        body=LoginIn,
        response=LoginOut,
        errors=(401, 429),
    ),
    Endpoint(
        "POST",
        "/api/v1/auth/logout",
        logout,
        "Sign out (ends the session)",
        "auth",
        STAFF,
        status=204,
    ),
    Endpoint("GET", "/api/v1/auth/me", me, "The signed-in user", "auth", STAFF, response=UserOut),
    Endpoint(
        "GET",
        "/api/v1/users/{id}/lockout",
        lockout,
        "Whether failed sign-ins have locked the user's account, and how many count now",
        "auth",
        ADMINS,
        response=LockoutOut,
    ),
    Endpoint(
        "POST",
        "/api/v1/users/{id}/unlock",
        unlock,
        "Lift the lock failed sign-ins put on the user's account",
        "auth",
        ADMINS,
        response=LockoutOut,
    ),
]
