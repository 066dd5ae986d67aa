"""Staff sign-in and sign-out for the desk's screens, as plain HTML forms.

The form posts without JavaScript.  A signed, time-limited form token stops
another site from signing a browser in as someone else (login CSRF); sign-ins
are rate-limited and repeated failures lock the name (``desk.lockout``); signing
out needs the ``desk_csrf`` cookie's value in the form (double submit), so a
link on another site cannot sign anyone out.  The session and CSRF cookies are
the ones the API's ``/auth/login`` sets, so the pages' JavaScript calls the API
with them.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from desk.auth import check_sign_in, end_session, start_session, user_for_token
from desk.lockout import LockoutPolicy
from desk.models import Role, User
from web.api.endpoints import USER_KEY
from web.pages.wording import LANGUAGES, language_of, staff_wording
from web.security import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    form_token,
    form_token_is_valid,
    set_session_cookies,
)
from web.state import CLOCK, READS, SESSIONS, SETTINGS
from web.throttle import TOO_MANY, count_failed_sign_in, minutes, refused_sign_in

SIGN_IN = "/desk/sign-in"
# Where a sign-in may lead: the staff screens only, never another site.
DESTINATIONS = ("/desk", "/wallboard")


FORM_PURPOSE = "staff-sign-in"


def sign_in_token(secret: str, now: datetime) -> str:
    return form_token(secret, FORM_PURPOSE, now)


def sign_in_token_is_valid(secret: str, token: str, now: datetime) -> bool:
    return form_token_is_valid(secret, FORM_PURPOSE, token, now)


def destination(asked: str, user: User | None = None) -> str:
    """``asked`` if it is one of the staff screens, else the user's own screen."""
    if asked in DESTINATIONS:
        return asked
    if user is not None and user.agent is None and Role(user.role) is not Role.AGENT:
        return "/wallboard"
    return "/desk"


def staff_language(request: web.Request, user: User | None) -> str:
    """``?lang=`` first (to try the other language), then the user's, then the browser's."""
    asked = request.query.get("lang", "")
    if asked in LANGUAGES:
        return asked
    if user is not None and user.language[:2] in LANGUAGES:
        return user.language[:2]
    return language_of(request)


def staff_page_user(request: web.Request, roles: Collection[Role]) -> User:
    """The signed-in user of a staff page; anonymous browsers go to the sign-in form."""
    user: User | None = request.get(USER_KEY)
    if user is None:
        raise web.HTTPSeeOther(f"{SIGN_IN}?next={request.path}")
    if Role(user.role) not in roles:
        raise web.HTTPForbidden(text="This screen is not for your role.")
    return user


async def form_poster(request: web.Request, form: Any, roles: Collection[Role]) -> User:
    """Who posted a staff form: the session cookie, with the ``desk_csrf`` cookie's value
    echoed in the form's ``csrf`` field (the API wants it in a header; forms cannot)."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, str(form.get("csrf", ""))):
        raise web.HTTPForbidden(text="Send this form from the desk's own page.")
    async with request.app[READS]() as session:
        user = await user_for_token(
            session, request.cookies.get(SESSION_COOKIE, ""), now=request.app[CLOCK].now()
        )
    if user is None:
        raise web.HTTPSeeOther(SIGN_IN)
    if Role(user.role) not in roles:
        raise web.HTTPForbidden(text="This screen is not for your role.")
    return user


def staff_context(request: web.Request, user: User) -> dict[str, Any]:
    language = staff_language(request, user)
    return {
        "t": staff_wording(language),
        "lang": language,
        "user": user,
        "here": request.path,
        "csrf": request.cookies.get(CSRF_COOKIE, ""),
    }


def _render_form(
    request: web.Request, *, username: str = "", error: str = "", status: int = 200
) -> web.Response:
    settings, now = request.app[SETTINGS], request.app[CLOCK].now()
    language = staff_language(request, None)
    context = {
        "t": staff_wording(language),
        "lang": language,
        "username": username,
        "error": error,
        "next": asked if (asked := request.query.get("next", "")) in DESTINATIONS else "",
        "token": sign_in_token(settings.secret_key.get_secret_value(), now),
    }
    return aiohttp_jinja2.render_template("desk/sign_in.html", request, context, status=status)


async def show_sign_in(request: web.Request) -> web.Response:
    return _render_form(request)


async def sign_in(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username = str(form.get("username", ""))[:64]
    password = str(form.get("password", ""))[:200]
    t = staff_wording(staff_language(request, None))
    settings, now = request.app[SETTINGS], request.app[CLOCK].now()
    token_ok = sign_in_token_is_valid(
        settings.secret_key.get_secret_value(), str(form.get("form_token", "")), now
    )
    if not token_ok:
        return _render_form(request, username=username, error=t["form_expired"], status=400)
    refused = await refused_sign_in(request, username)
    if refused is not None:
        words = TOO_MANY.get(staff_language(request, None), TOO_MANY["en"])
        error = words["sign_in"].format(minutes=minutes(refused))
        response = _render_form(request, username=username, error=error, status=429)
        response.headers["Retry-After"] = str(refused.retry_after_seconds)
        return response
    lifetime = timedelta(hours=settings.session_hours)
    policy = LockoutPolicy.from_settings(settings)
    async with request.app[SESSIONS]() as session:
        user = await check_sign_in(session, username, password, now=now, policy=policy)
        if user is not None:
            token = await start_session(session, user, now=now, lifetime=lifetime)
            going_to = destination(str(form.get("next", "")), user)
        await session.commit()  # the failure counted, or the earlier ones forgotten
    if user is None:
        await count_failed_sign_in(request)
        # The same words for an unknown name, a wrong password and a locked account.
        return _render_form(request, username=username, error=t["bad_credentials"], status=401)
    response = web.HTTPSeeOther(going_to)
    set_session_cookies(response, token, lifetime=lifetime, secure=settings.https)
    raise response


async def sign_out(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, str(form.get("csrf", ""))):
        raise web.HTTPForbidden(text="Sign out from the desk's own page.")
    async with request.app[SESSIONS]() as session:
        await end_session(
            session, request.cookies.get(SESSION_COOKIE, ""), now=request.app[CLOCK].now()
        )
        await session.commit()
    response = web.HTTPSeeOther(SIGN_IN)
    response.del_cookie(SESSION_COOKIE)
    response.del_cookie(CSRF_COOKIE)
    raise response


ROUTES = [
    web.get(SIGN_IN, show_sign_in),
    web.post(SIGN_IN, sign_in),
    web.post("/desk/sign-out", sign_out),
]
