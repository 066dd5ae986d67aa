"""Sign in and out."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from desk.auth import authenticate, end_session, start_session
from web.api.endpoints import PUBLIC, STAFF, Endpoint, current_user, read_body
from web.api.schemas import LoginIn, LoginOut, UserOut, user_out
from web.security import CSRF_COOKIE, SESSION_COOKIE, bearer_token, set_session_cookies
from web.state import CLOCK, SESSIONS, SETTINGS


async def login(request: web.Request) -> web.Response:
    body = await read_body(request, LoginIn)
    settings = request.app[SETTINGS]
    now = request.app[CLOCK].now()
    lifetime = timedelta(hours=settings.session_hours)
    async with request.app[SESSIONS]() as session:
        user = await authenticate(session, body.username, body.password)
        token = await start_session(session, user, now=now, lifetime=lifetime)
        await session.commit()
        out = LoginOut(token=token, expires_at=now + lifetime, user=user_out(user))
    response = web.json_response(out.model_dump(mode="json"))
    set_session_cookies(response, token, lifetime=lifetime, secure=settings.mode == "production")
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


ENDPOINTS = [
    Endpoint(
        "POST",
        "/api/v1/auth/login",
        login,
        "Sign in: username and password give a bearer token and a session cookie",
        "auth",
        PUBLIC,
        body=LoginIn,
        response=LoginOut,
        errors=(401,),
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
]
