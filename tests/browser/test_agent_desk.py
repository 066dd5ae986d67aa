"""The agent desk in chromium: sign in, the screen pop live from the PBX simulator,
a ticket from the call, the status control driving the PBX."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, expect
from sqlalchemy import delete, select, update

from desk.models import CustomerPhone, Ticket, User
from tests.browser.conftest import SCREENSHOTS, LiveDesk, note_pop_latency, signed_in

# Recorded schedule, twice as fast: bob's pop rings ~1 s before alice answers.
SPEED = 2.0


async def test_a_ringing_call_pops_the_callers_card_which_goes_when_answered_elsewhere(
    desk: LiveDesk, chromium: Browser
) -> None:
    page = await signed_in(chromium, desk, "bob")
    await expect(page.locator("#no-calls")).to_be_visible()

    replay = asyncio.create_task(desk.play("support_ringall_answered", speed=SPEED))
    pop = page.locator("article.pop")
    await expect(pop).to_have_count(1, timeout=10_000)
    await expect(pop.locator('[data-field="title"]')).to_have_text("Erika Mustermann")
    await expect(pop.locator('[data-field="tier"]')).to_have_text("platinum")
    await expect(pop.locator('[data-field="phase"]')).to_have_text("Ringing")
    await note_pop_latency(desk, pop, interface="PJSIP/1002")

    # Alice answers: bob's pop is withdrawn.
    await expect(pop).to_have_count(0, timeout=10_000)
    await expect(page.locator("#no-calls")).to_be_visible()
    await replay


async def test_one_click_on_the_pop_opens_a_ticket_for_the_call_and_its_caller(
    desk: LiveDesk, chromium: Browser
) -> None:
    page = await signed_in(chromium, desk, "alice")
    replay = asyncio.create_task(desk.play("support_ringall_answered", speed=SPEED))
    pop = page.locator("article.pop")
    await expect(pop.locator('[data-field="phase"]')).to_have_text("On the line", timeout=10_000)
    await note_pop_latency(desk, pop, interface="PJSIP/1001")

    await pop.get_by_role("button", name="Create ticket from this call").click()

    result = pop.locator('[data-field="result"]')
    await expect(result).to_contain_text("Ticket created: #")
    ticket_id = int(await result.get_attribute("data-ticket-id") or "0")
    await replay
    async with desk.e2e.database.sessions() as session:
        ticket = await session.scalar(select(Ticket).where(Ticket.id == ticket_id))
    assert ticket is not None
    (call,) = await desk.e2e.calls()
    assert ticket.customer_id == await desk.e2e.customer_id("Erika Mustermann")
    assert ticket.customer_id == call.customer_id


async def test_the_pop_shows_the_callers_open_tickets_with_a_ticking_sla_countdown(
    desk: LiveDesk, chromium: Browser
) -> None:
    erika = await desk.e2e.customer_id("Erika Mustermann")
    response = await desk.e2e.client.post(
        "/api/v1/tickets",
        json={"subject": "Router keeps rebooting", "customer_id": erika, "priority": "high"},
        headers=desk.e2e.auth("sam"),
    )
    assert response.status == 201, await response.text()
    page = await signed_in(chromium, desk, "alice")

    replay = asyncio.create_task(desk.play("support_ringall_answered", speed=SPEED / 2))
    pop = page.locator("article.pop")
    ticket = pop.locator("li.ticket", has_text="Router keeps rebooting")
    countdown = ticket.locator(".countdown").first
    await expect(countdown).to_contain_text("due in", timeout=10_000)
    before = await countdown.text_content()
    await expect(countdown).not_to_have_text(before or "", timeout=3_000)
    await expect(ticket.locator(".badge.on_track").first).to_have_text("On track")

    await page.screenshot(path=str(SCREENSHOTS / "agent-desk-pop.png"))
    await replay


async def test_pausing_with_a_reason_asks_the_pbx_and_shows_the_state_it_reports(
    desk: LiveDesk, chromium: Browser
) -> None:
    page = await signed_in(chromium, desk, "carol")

    await page.get_by_label("Paused").check()
    await page.get_by_label("Pause reason").select_option(label="Lunch")
    await page.get_by_role("button", name="Set status").click()

    await expect(page.locator("#state-name")).to_have_text("Paused", timeout=5_000)
    await expect(page.locator("#state-reason")).to_have_text("Lunch")

    await page.get_by_label("Ready").check()
    await page.get_by_role("button", name="Set status").click()
    await expect(page.locator("#state-name")).to_have_text("Ready", timeout=5_000)
    await expect(page.locator("#state-reason")).to_have_text("")
    pauses = [f for f in desk.e2e.sim.actions_received if f.get("Action") == "QueuePause"]
    assert [(f.get("Interface"), f.get("Paused"), f.get("Reason")) for f in pauses] == [
        ("PJSIP/1003", "true", "Lunch"),
        ("PJSIP/1003", "false", None),
    ]


async def test_a_number_two_customers_share_asks_who_is_calling_and_the_ticket_is_theirs(
    desk: LiveDesk, chromium: Browser
) -> None:
    created = await desk.e2e.client.post(
        "/api/v1/customers",
        json={"name": "Max Mustermann", "phones": [{"number": "+4930123456789"}]},
        headers=desk.e2e.auth("sam"),
    )
    assert created.status == 201, await created.text()
    max_id = (await created.json())["id"]
    page = await signed_in(chromium, desk, "alice")

    replay = asyncio.create_task(desk.play("support_ringall_answered", speed=SPEED))
    pop = page.locator("article.pop")
    candidates = pop.locator('[data-field="candidates"] li')
    await expect(candidates).to_have_count(2, timeout=10_000)
    await note_pop_latency(desk, pop, interface="PJSIP/1001")
    await expect(pop.locator('[data-part="customer"]')).to_be_hidden()
    choose_max = candidates.filter(has_text="Max Mustermann").get_by_role("button")
    await choose_max.click()
    await expect(choose_max).to_have_attribute("aria-pressed", "true")

    await pop.get_by_role("button", name="Create ticket from this call").click()
    result = pop.locator('[data-field="result"]')
    await expect(result).to_contain_text("Ticket created: #")
    await replay
    async with desk.e2e.database.sessions() as session:
        ticket = await session.get(Ticket, int(await result.get_attribute("data-ticket-id") or 0))
    assert ticket is not None and ticket.customer_id == max_id


async def test_an_unknown_caller_gets_a_prefilled_new_customer_form(
    desk: LiveDesk, chromium: Browser
) -> None:
    erika = await desk.e2e.customer_id("Erika Mustermann")
    async with desk.e2e.database.sessions() as session:
        await session.execute(delete(CustomerPhone).where(CustomerPhone.customer_id == erika))
        await session.commit()
    page = await signed_in(chromium, desk, "alice")

    replay = asyncio.create_task(desk.play("support_ringall_answered", speed=SPEED))
    form = page.locator('article.pop [data-part="new-customer"]')
    await expect(form).to_be_visible(timeout=10_000)
    await expect(form.get_by_label("Phone")).to_have_value("+4930123456789")
    await expect(form.get_by_label("Name")).to_have_value("Erika Mustermann")
    await form.get_by_label("Name").fill("Erika Neumann")
    await form.get_by_role("button", name="Save customer").click()

    await expect(page.locator('article.pop [data-field="result"]')).to_have_text(
        "Customer saved: Erika Neumann"
    )
    await expect(form).to_be_hidden()
    await replay
    async with desk.e2e.database.sessions() as session:
        found = await session.scalar(
            select(CustomerPhone.customer_id).where(CustomerPhone.number_e164 == "+4930123456789")
        )
    assert found == await desk.e2e.customer_id("Erika Neumann")


async def test_an_agent_whose_language_is_chinese_gets_the_desk_and_its_pops_in_chinese(
    desk: LiveDesk, chromium: Browser
) -> None:
    async with desk.e2e.database.sessions() as session:
        await session.execute(update(User).where(User.username == "bob").values(language="zh"))
        await session.commit()
    page = await signed_in(chromium, desk, "bob", lang="zh")
    await expect(page.get_by_role("heading", name="我的状态")).to_be_visible()

    replay = asyncio.create_task(desk.play("support_ringall_answered", speed=SPEED))
    pop = page.locator("article.pop")
    await expect(pop.locator('[data-field="phase"]')).to_have_text("振铃中", timeout=10_000)
    await note_pop_latency(desk, pop, interface="PJSIP/1002")
    await expect(pop.get_by_role("button", name="根据此通话创建工单")).to_be_visible()
    await replay


async def test_the_pop_suggests_the_knowledge_base_article_for_the_callers_open_ticket(
    desk: LiveDesk, chromium: Browser
) -> None:
    e2e = desk.e2e

    async def post(who: str, path: str, body: dict[str, object]) -> dict[str, Any]:
        response = await e2e.client.post(path, json=body, headers=e2e.auth(who))
        assert response.status in (200, 201), await response.text()
        found: dict[str, Any] = await response.json()
        return found

    erika = await e2e.customer_id("Erika Mustermann")
    await post(
        "alice",
        "/api/v1/tickets",
        {"subject": "Voicemail PIN forgotten", "customer_id": erika},
    )
    draft = await post(
        "alice",
        "/api/v1/kb/articles",
        {
            "title": "Reset a forgotten voicemail PIN",
            "body": "Dial *98, then follow the prompts.",
            "audience": "public",
        },
    )
    await post(
        "sam",
        f"/api/v1/kb/articles/{draft['id']}/transitions",
        {"to": "published", "version": draft["head_version"]},
    )
    page = await signed_in(chromium, desk, "bob")
    replay = asyncio.create_task(desk.play("support_ringall_answered", speed=SPEED))
    pop = page.locator("article.pop")
    articles = pop.locator('[data-field="articles"]')
    await expect(articles).to_be_visible(timeout=10_000)
    link = articles.get_by_role("link", name="Reset a forgotten voicemail PIN")
    await expect(link).to_have_attribute("href", re.compile(r"^/help/en/articles/"))
    await replay


# Watches what the page asks of the browser (the real Notification and Web Audio still run).
SPY_ON_ALERTS = (Path(__file__).parent / "alert_spy.js").read_text(encoding="utf-8")


async def test_a_ringing_call_raises_one_desktop_notification_and_a_tone_once_allowed(
    desk: LiveDesk, chromium: Browser
) -> None:
    page = await signed_in(
        chromium, desk, "bob", permissions=("notifications",), init_script=SPY_ON_ALERTS
    )
    # Allowed before (the browser remembers): nothing left to ask.
    await expect(page.locator("#notify")).to_be_disabled()
    await page.locator("main").click()  # the shift's first click unlocks the tone

    replay = asyncio.create_task(desk.play("support_ringall_answered", speed=SPEED))
    pop = page.locator("article.pop")
    await expect(pop).to_have_count(1, timeout=10_000)
    await replay

    alerts = await page.evaluate("window.__alerts")
    assert [(a["title"], a["body"]) for a in alerts] == [("Incoming call", "Erika Mustermann")]
    assert await page.evaluate("window.__tones") == 1


async def test_without_permission_a_ringing_call_pops_but_raises_no_notification(
    desk: LiveDesk, chromium: Browser
) -> None:
    page = await signed_in(chromium, desk, "bob", init_script=SPY_ON_ALERTS)
    assert await page.evaluate("Notification.permission") != "granted"

    replay = asyncio.create_task(desk.play("support_ringall_answered", speed=SPEED))
    await expect(page.locator("article.pop")).to_have_count(1, timeout=10_000)
    await replay

    assert await page.evaluate("window.__alerts") == []
