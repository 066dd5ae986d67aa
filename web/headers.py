"""Security headers on every response, and Secure on every cookie over https.

It hangs on ``on_response_prepare`` rather than being a middleware so that it
also reaches what no handler returned: the router's 404s, static files and
raised redirects.  A header a handler set itself wins (the survey pages send
``Referrer-Policy: no-referrer``, stricter than the default here).

The Content-Security-Policy allows scripts and styles only from this service's
own files: no inline ``<script>``, ``style=""`` or ``onclick=""`` anywhere
(tests/web/test_security_headers.py checks every page), so an injected tag
cannot run.  ``<script type="application/json">`` blocks are data, not scripts,
and stay allowed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import hdrs, web

from desk.settings import Settings

HSTS_SECONDS = 365 * 24 * 3600


def _socket_sources(settings: Settings) -> str:
    """Where socket.io may connect: 'self' covers ws(s) to this host in current
    browsers; older ones need the ws(s) origin spelled out, known from public_url."""
    if settings.public_url:
        parts = urlsplit(settings.public_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"'self' {scheme}://{parts.netloc}"
    return "'self' ws: wss:"


def content_security_policy(settings: Settings) -> str:
    images = " ".join(["'self'", "data:", *settings.security_img_sources])
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {images}",
            f"connect-src {_socket_sources(settings)}",
            "font-src 'self'",
            "object-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ]
    )


def security_headers(settings: Settings) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": content_security_policy(settings),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    # Only with an explicit https public_url: browsers remember HSTS for a year, so a
    # guess (production behind some proxy) could lock users out of a plain-http site.
    if settings.public_url.startswith("https://"):
        headers["Strict-Transport-Security"] = f"max-age={HSTS_SECONDS}"
    return headers


def secure_cookie(set_cookie: str) -> str:
    """A ``Set-Cookie`` value with the Secure attribute (added once)."""
    attributes = [part.strip().lower() for part in set_cookie.split(";")[1:]]
    return set_cookie if "secure" in attributes else f"{set_cookie}; Secure"


def header_setter(
    settings: Settings,
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """The ``on_response_prepare`` handler for this configuration."""
    headers = security_headers(settings)
    https = settings.https

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        if https:
            # Cookies are already headers by now; every one of them, whoever set it.
            cookies = response.headers.getall(hdrs.SET_COOKIE, [])
            if cookies:
                del response.headers[hdrs.SET_COOKIE]
                for cookie in cookies:
                    response.headers.add(hdrs.SET_COOKIE, secure_cookie(cookie))

    return add_headers
