"""Who is asking: a bearer token (API clients) or the session cookie (browsers).

Browsers that authenticate with the cookie must also echo the ``desk_csrf``
cookie in an ``X-CSRF-Token`` header on writes (double-submit), so another site
cannot make a signed-in browser change data.
"""

from __future__ import annotations

import hmac
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
