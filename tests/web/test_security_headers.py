"""Security headers on every page, a Content-Security-Policy no page needs to
loosen (no inline script, style or handler anywhere), and cookies flagged
HttpOnly, SameSite and — over https — Secure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from desk.settings import Settings, load_settings
from tests.conftest import TEST_SECRET
from tests.web.conftest import PASSWORD, Desk
from tests.web.survey_support import SurveyDesk, mail_server, surveys
from web.app import create_app
from web.headers import content_security_policy, secure_cookie
from web.state import SETTINGS

__all__ = ["mail_server", "surveys"]


class InlineCode(HTMLParser):
    """What a CSP without 'unsafe-inline' refuses, found in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        # JSON data blocks are not scripts: CSP lets them be.
        if tag == "script" and "src" not in names and names.get("type") != "application/json":
            self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style>")
        for name, value in attrs:
            if name == "style" or name.startswith("on"):
                self.found.append(f"<{tag} {name}=…>")
            if (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}=javascript:…>")


def inline_code(page: str) -> list[str]:
    parser = InlineCode()
    parser.feed(page)
    return parser.found


async def _article_slug(desk: SurveyDesk) -> str:
    created = await desk.client.post(
        "/api/v1/kb/articles",
        json={"title": "Reset your password", "audience": "public", "body": "Open **Settings**."},
        headers=desk.auth("alice"),
    )
    article = await created.json()
    published = await desk.client.post(
        f"/api/v1/kb/articles/{article['id']}/transitions",
        json={"to": "published", "version": 1},
        headers=desk.auth("tom"),
    )
    assert published.status == 200, await published.text()
    return str((await published.json())["slug"])


@pytest.fixture
async def pages(surveys: SurveyDesk) -> dict[str, tuple[str, dict[str, str]]]:
    """Every kind of page, with who may see it."""
    ticket = await surveys.solved_ticket()
    token = await surveys.token()
    slug = await _article_slug(surveys)
    anyone: dict[str, str] = {}
    return {
        "sign-in": ("/desk/sign-in", anyone),
        "desk": ("/desk", surveys.auth("alice")),
        "ticket": (f"/desk/tickets/{ticket}", surveys.auth("alice")),
        "customer": (f"/desk/customers/{surveys.people.customer}", surveys.auth("alice")),
        "wallboard": ("/wallboard", surveys.auth("tom")),
        "help center": ("/help/en", anyone),
        "help search": ("/help/en/search?q=password", anyone),
        "help article": (f"/help/en/articles/{slug}", anyone),
        "survey": (f"/s/{token}", anyone),
        "contact form": ("/help/tickets/new", anyone),
        "contact sent": ("/help/tickets/sent?ticket=1", anyone),
        "not found": ("/help/en/articles/no-such-thing", anyone),
    }


async def test_every_page_has_the_security_headers_and_no_inline_code(
    surveys: SurveyDesk, pages: dict[str, tuple[str, dict[str, str]]]
) -> None:
    settings = surveys.client.app[SETTINGS]
    for name, (path, headers) in pages.items():
        response = await surveys.client.get(path, headers=headers)
        assert response.status == (404 if name == "not found" else 200), name
        assert response.headers["Content-Security-Policy"] == content_security_policy(settings)
        assert response.headers["X-Content-Type-Options"] == "nosniff", name
        assert response.headers["X-Frame-Options"] == "DENY", name
        assert response.headers["Referrer-Policy"] in (
            "strict-origin-when-cross-origin",
            "no-referrer",
        )
        assert "camera=()" in response.headers["Permissions-Policy"], name
        assert "Strict-Transport-Security" not in response.headers, name
        assert inline_code(await response.text()) == [], name


async def test_the_policy_allows_only_this_services_own_scripts_and_styles(
    surveys: SurveyDesk,
) -> None:
    response = await surveys.client.get("/help/en")
    policy = dict(
        part.strip().split(" ", 1)
        for part in response.headers["Content-Security-Policy"].split(";")
    )
    assert policy["script-src"] == policy["style-src"] == "'self'"
    assert policy["img-src"] == "'self' data:"
    assert policy["connect-src"] == "'self' ws: wss:"
    assert policy["frame-ancestors"] == policy["base-uri"] == policy["object-src"] == "'none'"
    assert policy["form-action"] == "'self'"
    assert "unsafe" not in response.headers["Content-Security-Policy"]


def test_the_inline_code_check_finds_what_the_policy_would_refuse() -> None:
    page = (
        '<script>go()</script><script type="application/json">{}</script>'
        '<script src="/static/desk.js"></script><style>p{}</style>'
        '<p style="color:red" onclick="go()"><a href="javascript:go()">x</a></p>'
    )
    assert inline_code(page) == [
        "<script> without src",
        "<style>",
        "<p style=…>",
        "<p onclick=…>",
        "<a href=javascript:…>",
    ]


@pytest.mark.parametrize(
    ("cookie", "secured"),
    [
        ("desk_session=abc; HttpOnly; Path=/", "desk_session=abc; HttpOnly; Path=/; Secure"),
        ("desk_csrf=x; Path=/; Secure", "desk_csrf=x; Path=/; Secure"),
        ("kb_voter=x; secure", "kb_voter=x; secure"),
    ],
)
def test_a_cookie_is_made_secure_once(cookie: str, secured: str) -> None:
    assert secure_cookie(cookie) == secured


@pytest.mark.parametrize(
    ("mode", "public_url", "https"),
    [
        ("production", "", True),  # a TLS proxy in front is assumed
        ("test", "", False),
        ("production", "http://desk.lan", False),
        ("demo", "https://desk.example.com", True),
    ],
)
def test_cookies_are_secure_when_the_site_is_served_over_https(
    mode: str, public_url: str, https: bool
) -> None:
    settings = load_settings(
        environ={}, overrides={"mode": mode, "public_url": public_url, "secret_key": TEST_SECRET}
    )
    assert settings.https is https


@pytest.fixture
async def https_desk(desk: Desk, settings: Settings) -> AsyncIterator[TestClient]:
    served = settings.model_copy(update={"public_url": "https://desk.example.com"})
    client = TestClient(TestServer(create_app(served, clock=desk.clock)))
    await client.start_server()
    yield client
    await client.close()


def _cookies(response: Any) -> dict[str, str]:
    return {value.split("=", 1)[0]: value for value in response.headers.getall("Set-Cookie", [])}


async def test_the_session_cookie_is_http_only_and_the_csrf_cookie_readable_by_the_pages(
    desk: Desk,
) -> None:
    response = await desk.client.post(
        "/api/v1/auth/login", json={"username": "alice", "password": PASSWORD}
    )
    cookies = _cookies(response)
    assert "HttpOnly" in cookies["desk_session"] and "SameSite=Lax" in cookies["desk_session"]
    assert "HttpOnly" not in cookies["desk_csrf"] and "SameSite=Lax" in cookies["desk_csrf"]
    assert not any("Secure" in cookie for cookie in cookies.values())  # plain http here


async def test_over_https_every_cookie_is_secure_and_browsers_are_told_to_stay(
    desk: Desk, https_desk: TestClient
) -> None:
    login = await https_desk.post(
        "/api/v1/auth/login", json={"username": "alice", "password": PASSWORD}
    )
    created = await desk.client.post(
        "/api/v1/kb/articles",
        json={"title": "Printer offline", "audience": "public", "body": "Restart it."},
        headers=desk.auth("alice"),
    )
    await desk.client.post(
        f"/api/v1/kb/articles/{(await created.json())['id']}/transitions",
        json={"to": "published", "version": 1},
        headers=desk.auth("sam"),
    )
    # The help center sets its own cookie; it is made Secure all the same.
    article = await https_desk.get("/help/en/articles/printer-offline")
    cookies = {**_cookies(login), **_cookies(article)}
    assert set(cookies) == {"desk_session", "desk_csrf", "kb_voter"}
    assert all(cookie.endswith("; Secure") for cookie in cookies.values())
    assert login.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert article.headers["Strict-Transport-Security"] == "max-age=31536000"
    policy = login.headers["Content-Security-Policy"]
    assert "connect-src 'self' wss://desk.example.com" in policy
