"""Who is asking: a bearer token (API clients) or the session cookie (browsers).

Browsers that authenticate with the cookie must also echo the ``desk_csrf``
cookie in an ``X-CSRF-Token`` header on writes (double-submit), so another site
cannot make a signed-in browser change data.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from desk.auth import user_for_token
from web.api.endpoints import CSRF_FAILED_KEY, USER_KEY
from web.state import CLOCK, READS

SESSION_COOKIE = "desk_session"
CSRF_COOKIE = "desk_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


@web.middleware
async def identity_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    token = bearer_token(request)
    via_cookie = False
    if token is None and SESSION_COOKIE in request.cookies:
        token, via_cookie = request.cookies[SESSION_COOKIE], True
    if token is not None:
        async with request.app[READS]() as session:
            user = await user_for_token(session, token, now=request.app[CLOCK].now())
        if user is not None:
            if via_cookie and request.method not in SAFE_METHODS and not _csrf_ok(request):
                # Stay anonymous: public endpoints (sign-in) still work, guarded ones refuse.
                request[CSRF_FAILED_KEY] = True
            else:
                request[USER_KEY] = user
    response: web.StreamResponse = await handler(request)
    return response


def _csrf_ok(request: web.Request) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    header = request.headers.get(CSRF_HEADER, "")
    return bool(cookie) and hmac.compare_digest(cookie, header)


FORM_TOKEN_LIFETIME = timedelta(hours=4)


def form_token(secret: str, purpose: str, now: datetime) -> str:
    """A signed, dated token for a server-rendered form (no session needed): proof
    that a POST comes from a form this service rendered for ``purpose`` lately."""
    issued = str(int(now.timestamp()))
    return f"{issued}.{_sign_form(secret, purpose, issued)}"


def form_token_is_valid(
    secret: str,
    purpose: str,
    token: str,
    now: datetime,
    *,
    lifetime: timedelta = FORM_TOKEN_LIFETIME,
) -> bool:
    issued, _, signature = token.partition(".")
    if not issued.isdigit():
        return False
    if not hmac.compare_digest(signature, _sign_form(secret, purpose, issued)):
        return False
    age = now.timestamp() - int(issued)
    return 0 <= age <= lifetime.total_seconds()


def _sign_form(secret: str, purpose: str, issued: str) -> str:
    message = f"{purpose}:{issued}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def set_session_cookies(
    response: web.StreamResponse, token: str, *, lifetime: timedelta, secure: bool
) -> None:
    """The signed-in browser's cookies: the session and the CSRF token.

    The session is HttpOnly (no script can read it).  The CSRF token cannot be:
    the pages' JavaScript reads it and echoes it in ``X-CSRF-Token``.  Both are
    SameSite=Lax, not Strict: a link to a ticket in an escalation e-mail must
    open signed in, and with the CSRF token in its forms; every write still needs
    the token, which another site can neither read nor guess.  ``secure``: the
    site is served over https (``Settings.https``)."""
    max_age = int(lifetime.total_seconds())
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="Lax", secure=secure, max_age=max_age
    )
    response.set_cookie(
        CSRF_COOKIE, secrets.token_urlsafe(24), samesite="Lax", secure=secure, max_age=max_age
    )
