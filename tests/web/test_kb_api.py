"""The knowledge-base API: agents write, reviewers publish, the public reads public articles."""

from __future__ import annotations

from typing import Any

import pytest

from desk.events import DomainEvent
from kb.events import ArticleStateChanged
from kb.shapes import MAX_BODY
from tests.web.conftest import Desk


async def _create(desk: Desk, who: str = "alice", **fields: Any) -> dict[str, Any]:
    body = {"title": "Reset your password", "body": "Open **Settings**.", **fields}
    response = await desk.client.post("/api/v1/kb/articles", json=body, headers=desk.auth(who))
    assert response.status == 201, await response.text()
    article: dict[str, Any] = await response.json()
    return article


async def _move(desk: Desk, article: dict[str, Any], to: str, who: str) -> Any:
    return await desk.client.post(
        f"/api/v1/kb/articles/{article['id']}/transitions",
        json={"to": to, "version": article["head_version"]},
        headers=desk.auth(who),
    )


async def _published(desk: Desk, **fields: Any) -> dict[str, Any]:
    article = await _create(desk, **fields)
    response = await _move(desk, article, "published", "sam")
    assert response.status == 200, await response.text()
    published: dict[str, Any] = await response.json()
    return published


async def test_an_agent_writes_and_submits_but_only_a_reviewer_publishes(desk: Desk) -> None:
    article = await _create(desk, audience="public")
    assert (article["state"], article["live"], article["url"]) == ("draft", False, None)
    submitted = await _move(desk, article, "in_review", "alice")
    assert submitted.status == 200
    refused = await _move(desk, article, "published", "bob")
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "forbidden"
    published = await (await _move(desk, article, "published", "sam")).json()
    assert (published["state"], published["live"], published["url"]) == (
        "published",
        True,
        "/help/en/articles/reset-your-password",
    )


async def test_nobody_signed_in_cannot_write_or_read_staff_articles(desk: Desk) -> None:
    article = await _create(desk)
    assert (await desk.client.post("/api/v1/kb/articles", json={"title": "x"})).status == 401
    assert (await desk.client.get(f"/api/v1/kb/articles/{article['id']}")).status == 401
    assert (await desk.client.get(f"/api/v1/kb/public/articles/{article['id']}")).status == 404


async def test_an_edit_of_a_published_article_waits_for_review_and_the_history_shows_it(
    desk: Desk,
) -> None:
    article = await _published(desk, audience="public")
    response = await desk.client.patch(
        f"/api/v1/kb/articles/{article['id']}",
        json={"version": 1, "body": "Open **Settings** > Security.", "note": "more precise"},
        headers=desk.auth("bob"),
    )
    edited = await response.json()
    assert (edited["state"], edited["live_version"], edited["head_version"]) == ("draft", 1, 2)
    assert edited["body_md"] == "Open **Settings**."
    assert edited["pending"]["body_md"] == "Open **Settings** > Security."
    assert (
        edited["pending"]["body_html"] == "<p>Open <strong>Settings</strong> &gt; Security.</p>\n"
    )
    stale = await desk.client.patch(
        f"/api/v1/kb/articles/{article['id']}",
        json={"version": 1, "title": "Old"},
        headers=desk.auth("alice"),
    )
    assert stale.status == 409
    diff = await (
        await desk.client.get(
            f"/api/v1/kb/articles/{article['id']}/diff?from=1&to=2", headers=desk.auth("alice")
        )
    ).json()
    assert [c["field"] for c in diff["changes"]] == ["body_md"]
    versions = await (
        await desk.client.get(
            f"/api/v1/kb/articles/{article['id']}/versions", headers=desk.auth("alice")
        )
    ).json()
    assert [(v["number"], v["note"]) for v in versions["items"]] == [
        (2, "more precise"),
        (1, "created"),
    ]
    restored = await desk.client.post(
        f"/api/v1/kb/articles/{article['id']}/versions/1/restore",
        json={"version": 2},
        headers=desk.auth("alice"),
    )
    assert (await restored.json())["pending"]["body_md"] == "Open **Settings**."
    workflow = await (
        await desk.client.get(
            f"/api/v1/kb/articles/{article['id']}/workflow", headers=desk.auth("alice")
        )
    ).json()
    assert [(c["old"], c["new"]) for c in workflow["items"]] == [
        ("draft", "published"),
        ("published", "draft"),
    ]


async def test_a_translation_is_listed_on_both_articles(desk: Desk) -> None:
    article = await _create(desk)
    response = await desk.client.post(
        f"/api/v1/kb/articles/{article['id']}/translations",
        json={"language": "zh", "title": "重置密码", "body": "打开设置。"},
        headers=desk.auth("alice"),
    )
    assert response.status == 201
    chinese = await response.json()
    original = await (
        await desk.client.get(f"/api/v1/kb/articles/{article['id']}", headers=desk.auth("bob"))
    ).json()
    assert [(t["id"], t["language"]) for t in original["translations"]] == [(chinese["id"], "zh")]
    assert [t["id"] for t in chinese["translations"]] == [article["id"]]


async def test_search_finds_english_and_chinese_with_marked_words(desk: Desk) -> None:
    await _published(desk, audience="public")
    await _published(desk, title="如何重置您的账户密码", language="zh", body="点击忘记密码。")
    english = await (
        await desk.client.get("/api/v1/kb/search?q=passwords", headers=desk.auth("alice"))
    ).json()
    chinese = await (
        await desk.client.get("/api/v1/kb/search?q=重置", headers=desk.auth("alice"))
    ).json()
    assert [i["title_html"] for i in english["items"]] == ["Reset your <mark>password</mark>"]
    assert [i["title_html"] for i in chinese["items"]] == ["如何<mark>重置</mark>您的账户密码"]


async def test_the_public_api_shows_only_published_public_articles(desk: Desk) -> None:
    public = await _published(desk, audience="public", title="Public router guide")
    internal = await _published(desk, title="Internal router notes")
    found = await (await desk.client.get("/api/v1/kb/public/search?q=router")).json()
    assert [i["id"] for i in found["items"]] == [public["id"]]
    assert (await desk.client.get(f"/api/v1/kb/public/articles/{internal['id']}")).status == 404
    shown = await (await desk.client.get(f"/api/v1/kb/public/articles/{public['id']}")).json()
    assert (shown["title"], shown["owner_id"]) == ("Public router guide", None)
    asked = await desk.client.get("/api/v1/kb/public/search?q=router&audience=internal")
    assert asked.status == 422


async def test_suggestions_links_votes_and_a_ticket_turned_into_an_article(desk: Desk) -> None:
    article = await _published(desk, audience="public", title="Router shows a red light")
    response = await desk.client.post(
        "/api/v1/tickets",
        json={"subject": "Router red light", "description": "No internet"},
        headers=desk.auth("alice"),
    )
    ticket = await response.json()
    suggested = await (
        await desk.client.get(
            f"/api/v1/kb/tickets/{ticket['id']}/suggestions", headers=desk.auth("alice")
        )
    ).json()
    assert [s["article_id"] for s in suggested["items"]] == [article["id"]]
    inserted = await desk.client.post(
        f"/api/v1/kb/articles/{article['id']}/links",
        json={"ticket_id": ticket["id"], "kind": "inserted"},
        headers=desk.auth("alice"),
    )
    again = await desk.client.post(
        f"/api/v1/kb/articles/{article['id']}/links",
        json={"ticket_id": ticket["id"], "kind": "inserted"},
        headers=desk.auth("alice"),
    )
    assert (inserted.status, again.status) == (201, 200)
    assert (await again.json())["link_count"] == 1
    assert (await inserted.json())["reply_text"].endswith(
        "/help/en/articles/router-shows-a-red-light"
    )
    vote = await desk.client.post(
        f"/api/v1/kb/articles/{article['id']}/votes",
        json={"helpful": True},
        headers=desk.auth("bob"),
    )
    assert (await vote.json()) == {"counted": True, "helpful_count": 1, "unhelpful_count": 0}
    unsolved = await desk.client.post(
        f"/api/v1/kb/tickets/{ticket['id']}/article", headers=desk.auth("alice")
    )
    assert unsolved.status == 409
    await desk.client.patch(
        f"/api/v1/tickets/{ticket['id']}",
        json={"version": ticket["version"], "status": "solved"},
        headers=desk.auth("alice"),
    )
    drafted = await desk.client.post(
        f"/api/v1/kb/tickets/{ticket['id']}/article", headers=desk.auth("alice")
    )
    assert drafted.status == 201, await drafted.text()
    assert (await drafted.json())["source_ticket_id"] == ticket["id"]


async def test_the_review_list_is_for_reviewers(desk: Desk) -> None:
    assert (await desk.client.get("/api/v1/kb/review", headers=desk.auth("alice"))).status == 403
    response = await desk.client.get("/api/v1/kb/review", headers=desk.auth("sam"))
    assert (await response.json()) == {"items": [], "total": 0}


async def test_categories_are_a_tree_and_only_empty_ones_are_deleted(desk: Desk) -> None:
    response = await desk.client.post(
        "/api/v1/kb/categories",
        json={"slug": "billing", "names": {"en": "Billing", "zh": "账单"}},
        headers=desk.auth("sam"),
    )
    billing = await response.json()
    child = await desk.client.post(
        "/api/v1/kb/categories",
        json={"slug": "refunds", "names": {"en": "Refunds"}, "parent_id": billing["id"]},
        headers=desk.auth("sam"),
    )
    assert child.status == 201
    loop = await desk.client.patch(
        f"/api/v1/kb/categories/{billing['id']}",
        json={"parent_id": (await child.json())["id"]},
        headers=desk.auth("sam"),
    )
    assert loop.status == 422
    busy = await desk.client.delete(
        f"/api/v1/kb/categories/{billing['id']}", headers=desk.auth("sam")
    )
    assert busy.status == 409
    agent = await desk.client.post(
        "/api/v1/kb/categories",
        json={"slug": "x", "names": {"en": "X"}},
        headers=desk.auth("alice"),
    )
    assert agent.status == 403


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"title": "Big", "body": "x" * 100_001}, 422, "body"),
        ({"title": ""}, 422, "title"),
        ({"title": "x", "slug": "Not a slug!"}, 422, "slug"),
        ({"title": "x", "language": "xx"}, 422, "language"),
        ({"title": "x", "audience": "everyone"}, 422, "audience"),
        ({"title": "x", "tags": ["a" * 65]}, 422, "tags.0"),
        ({"title": "x", "category_id": 999}, 422, "category_id"),
    ],
)
async def test_bad_article_input_is_refused_with_a_clear_4xx(
    desk: Desk, body: dict[str, Any], status: int, field: str
) -> None:
    response = await desk.client.post("/api/v1/kb/articles", json=body, headers=desk.auth("alice"))
    assert response.status == status
    assert field in (await response.json())["error"]["fields"]


async def test_a_duplicate_slug_is_a_conflict(desk: Desk) -> None:
    await _create(desk, slug="reset")
    response = await desk.client.post(
        "/api/v1/kb/articles", json={"title": "Other", "slug": "reset"}, headers=desk.auth("bob")
    )
    assert (response.status, (await response.json())["error"]["fields"]) == (409, {"slug": "taken"})


async def test_script_and_javascript_links_in_a_body_come_back_harmless(desk: Desk) -> None:
    article = await _create(
        desk, body="<script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=alert(1)>"
    )
    assert "<script" not in article["body_html"] and "href" not in article["body_html"]
    assert "<img" not in article["body_html"]


@pytest.mark.parametrize(
    "q", ['"', 'reset"', "*", "NEAR(a b)", "a OR", "(((", '重置"', "title:x", "%", "'"]
)
async def test_search_syntax_never_fails_the_request(desk: Desk, q: str) -> None:
    await _published(desk)
    for path in ("/api/v1/kb/search", "/api/v1/kb/public/search"):
        response = await desk.client.get(path, params={"q": q}, headers=desk.auth("alice"))
        assert response.status == 200, await response.text()


async def test_an_overlong_query_or_page_is_refused(desk: Desk) -> None:
    for params in ({"q": "x" * 501}, {"page": "0"}, {"per_page": "51"}, {"category": "nope"}):
        response = await desk.client.get(
            "/api/v1/kb/search", params=params, headers=desk.auth("alice")
        )
        assert response.status == 422, params


async def test_every_knowledge_base_endpoint_is_in_the_openapi_document(desk: Desk) -> None:
    document = await (await desk.client.get("/api/v1/openapi.json")).json()
    paths = [p for p in document["paths"] if p.startswith("/api/v1/kb/")]
    assert len(paths) == 22
    publish = document["paths"]["/api/v1/kb/articles/{id}/transitions"]["post"]
    assert "403" in publish["responses"] and publish["x-roles"] == ["admin", "agent", "supervisor"]


async def test_a_body_larger_than_the_request_limit_is_refused_with_413(desk: Desk) -> None:
    response = await desk.client.post(
        "/api/v1/kb/articles",
        data=b'{"title": "x", "body": "' + b"x" * 3_000_000 + b'"}',
        headers={**desk.auth("alice"), "Content-Type": "application/json"},
    )
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "request_entity_too_large"


async def test_invalid_utf8_in_a_request_is_refused_with_400(desk: Desk) -> None:
    response = await desk.client.post(
        "/api/v1/kb/articles",
        data=b'{"title": "Caf\xe9"}',
        headers={**desk.auth("alice"), "Content-Type": "application/json"},
    )
    assert (response.status, (await response.json())["error"]["code"]) == (400, "malformed_json")


async def test_lists_public_categories_and_the_callers_suggestions(desk: Desk) -> None:
    await _create(desk, title="Draft one")
    article = await _published(desk, audience="public", title="Router shows a red light")
    listed = await (
        await desk.client.get("/api/v1/kb/articles?state=draft", headers=desk.auth("bob"))
    ).json()
    assert [i["title"] for i in listed["items"]] == ["Draft one"]
    await desk.client.post(
        "/api/v1/kb/categories",
        json={"slug": "internet", "names": {"en": "Internet"}},
        headers=desk.auth("sam"),
    )
    categories = await (await desk.client.get("/api/v1/kb/public/categories")).json()
    assert [c["slug"] for c in categories["items"]] == ["internet"]
    customer = await (
        await desk.client.post(
            "/api/v1/customers", json={"name": "Chen Jing"}, headers=desk.auth("alice")
        )
    ).json()
    await desk.client.post(
        "/api/v1/tickets",
        json={"subject": "Router light red", "customer_id": customer["id"]},
        headers=desk.auth("alice"),
    )
    suggested = await (
        await desk.client.get(
            f"/api/v1/kb/customers/{customer['id']}/suggestions", headers=desk.auth("alice")
        )
    ).json()
    assert [s["article_id"] for s in suggested["items"]] == [article["id"]]
    assert suggested["items"][0]["reason"].startswith("matches “Router”")


async def test_reviewers_hear_of_a_submitted_article_and_the_owner_of_its_publication(
    desk: Desk,
) -> None:
    heard: list[tuple[str, Any, Any]] = []

    async def listen(event: DomainEvent) -> None:
        heard.append((event.payload()["new"], event.recipients.supervisors, event.recipients.users))

    desk.bus.subscribe(ArticleStateChanged, listen)
    article = await _create(desk)
    await _move(desk, article, "in_review", "alice")
    await _move(desk, article, "published", "sam")
    assert heard == [("in_review", True, ()), ("published", False, (desk.ids["alice"],))]


async def test_a_body_over_the_limit_is_refused_naming_the_field_and_nothing_is_saved(
    desk: Desk,
) -> None:
    response = await desk.client.post(
        "/api/v1/kb/articles",
        json={"title": "Huge", "body": "x" * (MAX_BODY + 1)},
        headers=desk.auth("bob"),
    )
    assert response.status == 422
    assert "body" in (await response.json())["error"]["fields"]
    listed = await desk.client.get("/api/v1/kb/articles", headers=desk.auth("bob"))
    assert "Huge" not in await listed.text()
