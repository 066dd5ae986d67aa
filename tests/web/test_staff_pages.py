"""The staff screens' server side: signing in and out through HTML forms, who may open
which screen, and nothing anyone typed reaching the page as markup."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from desk.settings import Settings, load_settings
from tests.conftest import TEST_SECRET
from tests.routing.sla_support import ALWAYS
from tests.web.conftest import PASSWORD, Desk
from web.pages.sign_in import sign_in_token, sign_in_token_is_valid
from web.security import CSRF_COOKIE, SESSION_COOKIE

SECRET = "s" * 40
NOW = datetime(2026, 1, 5, 9, tzinfo=UTC)
# A first response due within the wallboard's hour: new tickets show up at risk.
SOON: dict[str, Any] = {
    "name": "Soon",
    "tiers": ["standard", "gold", "platinum"],
    "priorities": ["low", "normal", "high", "urgent"],
    "calendar": "always",
    "targets": {"first_response": {"target": "30m", "warn_before": "10m"}},
}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        environ={},
        overrides={
            "mode": "test",
            "secret_key": TEST_SECRET,
            "database_url": database_url,
            "phone_region": "DE",
            "sla_calendars": {"always": ALWAYS},
            "sla_policies": [SOON],
        },
    )


@pytest.mark.parametrize(
    ("token", "at", "valid"),
    [
        (sign_in_token(SECRET, NOW), NOW, True),
        (sign_in_token(SECRET, NOW), NOW + timedelta(hours=4, seconds=1), False),
        (sign_in_token(SECRET, NOW + timedelta(minutes=5)), NOW, False),
        (sign_in_token("another secret" * 3, NOW), NOW, False),
        ("", NOW, False),
        ("123.abc", NOW, False),
    ],
)
def test_sign_in_tokens_are_signed_and_expire(token: str, at: datetime, valid: bool) -> None:
    assert sign_in_token_is_valid(SECRET, token, at) is valid


async def _form_token(desk: Desk, query: str = "") -> str:
    response = await desk.client.get(f"/desk/sign-in{query}")
    assert response.status == 200
    found = re.search(r'name="form_token" value="([^"]+)"', await response.text())
    assert found is not None
    return found.group(1)


async def _sign_in(desk: Desk, who: str, *, next_: str = "", password: str = PASSWORD) -> object:
    token = await _form_token(desk)
    return await desk.client.post(
        "/desk/sign-in",
        data={"form_token": token, "username": who, "password": password, "next": next_},
        allow_redirects=False,
    )


async def test_the_sign_in_form_speaks_chinese_when_asked(desk: Desk) -> None:
    response = await desk.client.get("/desk/sign-in?lang=zh")
    body = await response.text()
    assert response.status == 200
    assert 'lang="zh-Hans"' in body and "用户名" in body and "登录" in body


async def test_an_agent_signs_in_through_the_form_and_lands_on_the_desk(desk: Desk) -> None:
    response = await _sign_in(desk, "alice")
    assert response.status == 303  # type: ignore[attr-defined]
    assert response.headers["Location"] == "/desk"  # type: ignore[attr-defined]
    cookies = {c.key for c in desk.client.session.cookie_jar}
    assert {SESSION_COOKIE, CSRF_COOKIE} <= cookies
    page = await desk.client.get("/desk")
    assert page.status == 200
    assert "Agent desk" in await page.text()


async def test_a_supervisor_without_a_phone_lands_on_the_wallboard(desk: Desk) -> None:
    response = await _sign_in(desk, "sam")
    assert response.headers["Location"] == "/wallboard"  # type: ignore[attr-defined]


async def test_a_sign_in_never_leads_to_another_site(desk: Desk) -> None:
    response = await _sign_in(desk, "alice", next_="https://elsewhere.example/")
    assert response.headers["Location"] == "/desk"  # type: ignore[attr-defined]


async def test_a_wrong_password_shows_the_form_again_with_the_name_kept(desk: Desk) -> None:
    response = await _sign_in(desk, "alice", password="wrong")
    body = await response.text()  # type: ignore[attr-defined]
    assert response.status == 401  # type: ignore[attr-defined]
    assert "Wrong username or password." in body
    assert 'value="alice"' in body
    assert SESSION_COOKIE not in {c.key for c in desk.client.session.cookie_jar}


async def test_a_sign_in_without_the_form_token_is_refused(desk: Desk) -> None:
    response = await desk.client.post(
        "/desk/sign-in", data={"username": "alice", "password": PASSWORD}, allow_redirects=False
    )
    assert response.status == 400
    assert "This form has expired" in await response.text()
    assert SESSION_COOKIE not in {c.key for c in desk.client.session.cookie_jar}


async def test_an_anonymous_browser_is_sent_to_sign_in_first(desk: Desk) -> None:
    for path in ("/desk", "/wallboard", "/wallboard/day"):
        response = await desk.client.get(path, allow_redirects=False)
        assert response.status == 303, path
        assert response.headers["Location"] == f"/desk/sign-in?next={path}"


async def test_agents_may_not_open_the_wallboard(desk: Desk) -> None:
    await _sign_in(desk, "alice")
    assert (await desk.client.get("/wallboard")).status == 403
    assert (await desk.client.get("/wallboard/day")).status == 403


async def test_signing_out_needs_the_csrf_value_and_then_ends_the_session(desk: Desk) -> None:
    await _sign_in(desk, "alice")
    refused = await desk.client.post("/desk/sign-out", data={}, allow_redirects=False)
    assert refused.status == 403
    assert (await desk.client.get("/desk", allow_redirects=False)).status == 200

    csrf = next(c.value for c in desk.client.session.cookie_jar if c.key == CSRF_COOKIE)
    response = await desk.client.post("/desk/sign-out", data={"csrf": csrf}, allow_redirects=False)
    assert response.status == 303
    me = await desk.client.get("/api/v1/auth/me", headers={"Cookie": ""})
    assert me.status == 401


async def test_the_status_form_refuses_a_post_without_the_csrf_value(desk: Desk) -> None:
    await _sign_in(desk, "alice")
    response = await desk.client.post(
        "/desk/status", data={"status": "paused", "reason": "lunch"}, allow_redirects=False
    )
    assert response.status == 403


async def test_ticket_text_reaches_the_wallboard_as_text_never_as_markup(desk: Desk) -> None:
    subject = "</script><img src=x onerror=alert(1)>"
    created = await desk.client.post(
        "/api/v1/tickets", json={"subject": subject}, headers=desk.auth("sam")
    )
    assert created.status == 201
    await _sign_in(desk, "sam")
    response = await desk.client.get("/wallboard")
    body = await response.text()
    assert response.status == 200
    assert "<img src=x" not in body and "</script><img" not in body
    assert "&lt;/script&gt;&lt;img src=x" in body  # on the board, as text


async def test_the_staff_scripts_and_styles_are_served_by_the_app(desk: Desk) -> None:
    for path in ("/static/desk.js", "/static/wallboard.js", "/static/staff.css"):
        response = await desk.client.get(path)
        assert response.status == 200, path


async def _open_ticket(desk: Desk, **fields: object) -> int:
    response = await desk.client.post("/api/v1/tickets", json=fields, headers=desk.auth("sam"))
    assert response.status == 201, await response.text()
    ticket_id: int = (await response.json())["id"]
    return ticket_id


async def test_the_ticket_lists_hold_mine_and_the_unassigned_with_their_clocks(
    desk: Desk,
) -> None:
    mine = await _open_ticket(desk, subject="Mine", assignee_id=desk.ids["alice"])
    nobodys = await _open_ticket(desk, subject="Nobody's")
    await _open_ticket(desk, subject="Bob's", assignee_id=desk.ids["bob"])
    await _sign_in(desk, "alice")

    lists = {}
    for view in ("mine", "unassigned", "team", "nonsense"):
        response = await desk.client.get(f"/desk/tickets.json?view={view}")
        assert response.status == 200
        lists[view] = [t["id"] for t in (await response.json())["tickets"]]
    assert lists == {"mine": [mine], "unassigned": [nobodys], "team": [], "nonsense": [mine]}
    response = await desk.client.get("/desk/tickets.json?view=mine")
    (row,) = (await response.json())["tickets"]
    assert [(c["clock"], c["status"]) for c in row["sla"]] == [("first_response", "on_track")]


async def test_the_ticket_page_shows_messages_as_text(desk: Desk) -> None:
    ticket_id = await _open_ticket(desk, subject="Help <i>now</i>")
    posted = await desk.client.post(
        f"/api/v1/tickets/{ticket_id}/messages",
        json={"kind": "customer_message", "body": "<script>alert(1)</script>"},
        headers=desk.auth("alice"),
    )
    assert posted.status == 201
    await _sign_in(desk, "alice")
    response = await desk.client.get(f"/desk/tickets/{ticket_id}")
    body = await response.text()
    assert response.status == 200
    assert "<script>alert(1)" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "Help &lt;i&gt;now&lt;/i&gt;" in body


async def test_unknown_tickets_and_customers_are_not_found(desk: Desk) -> None:
    await _sign_in(desk, "alice")
    for path in ("/desk/tickets/999", "/desk/tickets/x", "/desk/customers/999"):
        assert (await desk.client.get(path)).status == 404, path


async def test_the_customer_page_shows_the_card_and_the_timeline(desk: Desk) -> None:
    created = await desk.client.post(
        "/api/v1/customers",
        json={"name": "Zoë <b>Bold</b>", "phones": [{"number": "+49 30 1234567"}]},
        headers=desk.auth("sam"),
    )
    customer_id = (await created.json())["id"]
    await _open_ticket(desk, subject="Broken phone", customer_id=customer_id)
    await _sign_in(desk, "alice")

    response = await desk.client.get(f"/desk/customers/{customer_id}")
    body = await response.text()
    assert response.status == 200
    assert "Zoë &lt;b&gt;Bold&lt;/b&gt;" in body
    assert 'data-number="+49301234567"' in body
    assert 'data-kind="ticket"' in body and "Broken phone" in body
