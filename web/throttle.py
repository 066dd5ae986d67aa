# ruff: noqa: RUF001  (Chinese text uses full-width punctuation on purpose)
"""Which requests are rate-limited, by what, and the 429 they get.

Sign-ins are limited per user name (every attempt counts) and per client
address (only failed ones count: a call center's agents often share one public
address and all sign in when their shift starts); the sign-in views call
``refused_sign_in`` and ``count_failed_sign_in``.  The public forms and
searches — the contact form, survey answers, help center search — are limited
per client address, by the middleware.
The API answers 429 in its JSON error shape, the HTML pages with a friendly
page; both say when to come back in ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from desk.lockout import name_key
from desk.settings import RateLimit
from web.api.errors import error_response
from web.pages.wording import language_of
from web.rate_limits import Decision, MemoryRateStore, RateStore, RedisRateStore
from web.request_origin import address_of
from web.state import CLOCK, SETTINGS

RATE_STORE = web.AppKey("rate_store", RateStore)

# (method, route) -> the limit (``rate_limits_<name>`` in settings), per client address.
PUBLIC_LIMITS: dict[tuple[str, str], str] = {
    ("POST", "/help/tickets"): "public_ticket",
    ("POST", "/s/{token}"): "survey_answer",
    ("POST", "/s/{token}/opt-out"): "survey_answer",
    ("GET", "/help/{lang}/search"): "help_search",
    ("GET", "/api/v1/kb/public/search"): "help_search",
}
# The survey e-mail's faces are links: a GET with ?csat= records an answer.
_FACE_LINK = ("GET", "/s/{token}")

TOO_MANY = {
    "en": {
        "title": "Please wait a moment",
        "body": "There were too many requests from your address. "
        "Please try again in {minutes} min.",
        "sign_in": "Too many sign-in attempts. Please try again in {minutes} min.",
    },
    "zh": {
        "title": "请稍候",
        "body": "来自您地址的请求过多，请在 {minutes} 分钟后重试。",
        "sign_in": "登录尝试次数过多，请在 {minutes} 分钟后重试。",
    },
}


def limit_name(method: str, route: str, query: Any) -> str | None:
    """The limit a request falls under, if any (``route`` as declared: /s/{token})."""
    if (method, route) == _FACE_LINK:
        return "survey_answer" if "csat" in query else None
    return PUBLIC_LIMITS.get((method, route))


def _limit(request: web.Request, name: str) -> RateLimit:
    limit: RateLimit = getattr(request.app[SETTINGS], f"rate_limits_{name}")
    return limit


async def take(request: web.Request, name: str, key: str) -> Decision | None:
    """Count one request against limit ``name`` for ``key``; the refusal, if refused."""
    if not request.app[SETTINGS].rate_limits_enabled:
        return None
    now = request.app[CLOCK].now().timestamp()
    decision = await request.app[RATE_STORE].take(f"{name}:{key}", _limit(request, name), now)
    return None if decision.allowed else decision


async def refused_sign_in(request: web.Request, username: str) -> Decision | None:
    """Whether the client's address has failed too often lately; if not, count the
    attempt for the name tried.  The refusal, if refused."""
    if not request.app[SETTINGS].rate_limits_enabled:
        return None
    now = request.app[CLOCK].now().timestamp()
    store = request.app[RATE_STORE]
    key = f"login_address:{address_of(request)}"
    by_address = await store.peek(key, _limit(request, "login_address"), now)
    if not by_address.allowed:
        return by_address
    return await take(request, "login_account", name_key(username))


async def count_failed_sign_in(request: web.Request) -> None:
    """A sign-in from the client's address failed: it counts against the address."""
    await take(request, "login_address", address_of(request))


def minutes(decision: Decision) -> int:
    return max(1, -(-decision.retry_after_seconds // 60))


def too_many_json(decision: Decision) -> web.Response:
    seconds = decision.retry_after_seconds
    response = error_response(
        429, "too_many_requests", f"too many requests; try again in {seconds} s"
    )
    response.headers["Retry-After"] = str(seconds)
    return response


def too_many_page(request: web.Request, decision: Decision) -> web.Response:
    language = language_of(request)
    words = TOO_MANY.get(language, TOO_MANY["en"])
    context = {
        "lang": language,
        "title": words["title"],
        "body": words["body"].format(minutes=minutes(decision)),
    }
    response = aiohttp_jinja2.render_template("public/too_many.html", request, context, status=429)
    response.headers["Retry-After"] = str(decision.retry_after_seconds)
    response.headers["Cache-Control"] = "no-store"
    return response


@web.middleware
async def public_rate_limits(request: web.Request, handler: Any) -> web.StreamResponse:
    route = request.match_info.route.resource
    name = limit_name(request.method, route.canonical, request.query) if route else None
    if name is not None:
        refused = await take(request, name, address_of(request))
        if refused is not None:
            api = request.path.startswith("/api/")
            return too_many_json(refused) if api else too_many_page(request, refused)
    response: web.StreamResponse = await handler(request)
    return response


async def rate_store_context(app: web.Application) -> AsyncIterator[None]:
    """The buckets: in Redis when configured (shared by every process), else here."""
    redis_url = app[SETTINGS].redis_url
    store: RateStore = RedisRateStore.from_url(redis_url) if redis_url else MemoryRateStore()
    app[RATE_STORE] = store
    yield
    await store.close()
