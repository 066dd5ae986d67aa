"""The public help center: server-rendered pages, no JavaScript, in the browser's language."""

from __future__ import annotations

import re
from typing import Any

from tests.web.conftest import Desk


async def _published(desk: Desk, **fields: Any) -> dict[str, Any]:
    body = {"audience": "public", "body": "Open **Settings**.", **fields}
    created = await (
        await desk.client.post("/api/v1/kb/articles", json=body, headers=desk.auth("alice"))
    ).json()
    response = await desk.client.post(
        f"/api/v1/kb/articles/{created['id']}/transitions",
        json={"to": "published", "version": 1},
        headers=desk.auth("sam"),
    )
    assert response.status == 200, await response.text()
    article: dict[str, Any] = await response.json()
    return article


async def _translated(desk: Desk, article: dict[str, Any], **fields: Any) -> dict[str, Any]:
    created = await (
        await desk.client.post(
            f"/api/v1/kb/articles/{article['id']}/translations",
            json={"language": "zh", **fields},
            headers=desk.auth("alice"),
        )
    ).json()
    response = await desk.client.post(
        f"/api/v1/kb/articles/{created['id']}/transitions",
        json={"to": "published", "version": 1},
        headers=desk.auth("sam"),
    )
    translated: dict[str, Any] = await response.json()
    return translated


async def test_the_help_center_opens_in_the_browsers_language(desk: Desk) -> None:
    chinese = await desk.client.get(
        "/help", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}, allow_redirects=False
    )
    english = await desk.client.get(
        "/help", headers={"Accept-Language": "fr-FR, en;q=0.5"}, allow_redirects=False
    )
    asked = await desk.client.get("/help?lang=zh", allow_redirects=False)
    assert (chinese.status, chinese.headers["Location"]) == (302, "/help/zh")
    assert english.headers["Location"] == "/help/en"
    assert asked.headers["Location"] == "/help/zh"
    assert (await desk.client.get("/help/fr")).status == 404


async def test_an_article_page_has_a_readable_url_a_safe_body_and_links_to_its_translation(
    desk: Desk,
) -> None:
    article = await _published(
        desk,
        title="Reset your password",
        body="Open **Settings**. <script>alert(1)</script> [x](javascript:alert(1))",
    )
    await _translated(desk, article, title="重置密码", body="打开设置。")
    response = await desk.client.get("/help/en/articles/reset-your-password")
    page = await response.text()
    assert response.status == 200
    assert "<h1>Reset your password</h1>" in page
    assert "<strong>Settings</strong>" in page
    assert "<script" not in page and 'href="javascript:' not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown as text, never run
    assert '<a href="/help/zh/articles/%E9%87%8D%E7%BD%AE%E5%AF%86%E7%A0%81" hreflang="zh"' in page
    chinese = await desk.client.get("/help/zh/articles/重置密码")
    assert "<h1>重置密码</h1>" in await chinese.text()
    assert '<html lang="zh">' in await chinese.text()


async def test_drafts_and_internal_articles_are_not_shown_to_the_public(desk: Desk) -> None:
    await desk.client.post(
        "/api/v1/kb/articles",
        json={"title": "Secret draft", "audience": "public"},
        headers=desk.auth("alice"),
    )
    await _published(desk, title="Internal notes", audience="internal")
    for slug in ("secret-draft", "internal-notes", "no-such-article"):
        response = await desk.client.get(f"/help/en/articles/{slug}")
        assert response.status == 404
    search = await (await desk.client.get("/help/en/search?q=notes+draft")).text()
    assert "Internal notes" not in search and "Secret draft" not in search


async def test_the_home_page_lists_categories_and_a_category_page_its_articles(
    desk: Desk,
) -> None:
    category = await (
        await desk.client.post(
            "/api/v1/kb/categories",
            json={"slug": "account", "names": {"en": "Account", "zh": "账户"}},
            headers=desk.auth("sam"),
        )
    ).json()
    await _published(desk, title="Reset your password", category_id=category["id"])
    home = await (await desk.client.get("/help/zh")).text()
    assert 'href="/help/zh/categories/account">账户</a> <span class="count">(0)' in home
    english_home = await (await desk.client.get("/help/en")).text()
    assert 'href="/help/en/categories/account">Account</a> <span class="count">(1)' in english_home
    listing = await (await desk.client.get("/help/en/categories/account")).text()
    assert '<a href="/help/en/articles/reset-your-password">Reset your password</a>' in listing
    assert (await desk.client.get("/help/en/categories/nothing")).status == 404


async def test_search_marks_the_words_escapes_the_query_and_pages_the_results(
    desk: Desk,
) -> None:
    for n in range(12):
        await _published(desk, title=f"Router guide {n}", body="Restart the router.")
    page = await (await desk.client.get("/help/en/search?q=router+<b>")).text()
    assert "<mark>Router</mark> guide" in page
    assert "“router &lt;b&gt;”" in page
    assert len(re.findall(r"<li>", page)) == 10
    assert 'rel="next" href="/help/en/search?q=router+%3Cb%3E&amp;page=2"' in page
    second = await (await desk.client.get("/help/en/search?q=router+<b>&page=2")).text()
    assert len(re.findall(r"<li>", second)) == 2
    chinese = await _published(desk, title="如何重置您的账户密码", language="zh")
    found = await (await desk.client.get("/help/zh/search?q=密码")).text()
    assert f"/help/zh/articles/{chinese['slug']}" not in found or "<mark>密码</mark>" in found
    assert "如何重置您的账户<mark>密码</mark>" in found


async def test_hostile_search_text_gives_a_page_never_an_error(desk: Desk) -> None:
    await _published(desk, title="Reset your password")
    for q in ('"', "NEAR(", "*", "((", '重置"', "x" * 2000, "%00"):
        response = await desk.client.get("/help/en/search", params={"q": q, "page": "abc"})
        assert response.status == 200, q


async def test_a_browser_votes_once_per_article_and_can_change_its_vote(desk: Desk) -> None:
    article = await _published(desk, title="Reset your password")
    page = await desk.client.get("/help/en/articles/reset-your-password")
    token = re.search(r'name="token" value="([^"]+)"', await page.text())
    assert token is not None and "kb_voter" in page.cookies
    for answer in ("yes", "yes", "no"):
        response = await desk.client.post(
            "/help/en/articles/reset-your-password/vote",
            data={"helpful": answer, "token": token.group(1)},
            allow_redirects=False,
        )
        assert (
            response.headers["Location"]
            == "/help/en/articles/reset-your-password?voted=yes#feedback"
        )
    shown = await (
        await desk.client.get(f"/api/v1/kb/articles/{article['id']}", headers=desk.auth("alice"))
    ).json()
    assert (shown["helpful_count"], shown["unhelpful_count"]) == (0, 1)
    thanks = await (await desk.client.get("/help/en/articles/reset-your-password?voted=yes")).text()
    assert "Thank you for your feedback." in thanks


async def test_a_vote_without_a_token_for_this_browser_is_not_counted(desk: Desk) -> None:
    article = await _published(desk, title="Reset your password")
    page = await desk.client.get("/help/en/articles/reset-your-password")
    token = re.search(r'name="token" value="([^"]+)"', await page.text())
    assert token is not None
    desk.client.session.cookie_jar.clear()  # another browser replays the form
    response = await desk.client.post(
        "/help/en/articles/reset-your-password/vote",
        data={"helpful": "yes", "token": token.group(1)},
        allow_redirects=False,
    )
    assert response.headers["Location"].endswith("?voted=again#feedback")
    shown = await (
        await desk.client.get(f"/api/v1/kb/articles/{article['id']}", headers=desk.auth("alice"))
    ).json()
    assert shown["helpful_count"] == 0


async def test_help_center_pages_carry_no_javascript(desk: Desk) -> None:
    await _published(desk, title="Reset your password")
    for path in ("/help/en", "/help/en/articles/reset-your-password", "/help/en/search?q=reset"):
        page = await (await desk.client.get(path)).text()
        assert "<script" not in page and " on" not in re.sub(r"[^<]*", "", page)


async def test_search_can_keep_to_a_category_and_ignores_an_unknown_one(desk: Desk) -> None:
    category = await (
        await desk.client.post(
            "/api/v1/kb/categories",
            json={"slug": "internet", "names": {"en": "Internet"}},
            headers=desk.auth("sam"),
        )
    ).json()
    await _published(desk, title="Router guide", category_id=category["id"])
    await _published(desk, title="Router invoice")
    inside = await (await desk.client.get("/help/en/search?q=router&category=internet")).text()
    anywhere = await (await desk.client.get("/help/en/search?q=router&category=gone")).text()
    assert "articles/router-guide" in inside and "articles/router-invoice" not in inside
    assert "articles/router-guide" in anywhere and "articles/router-invoice" in anywhere
