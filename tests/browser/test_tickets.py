"""Tickets on the desk in chromium: the live list with SLA countdowns, the ticket page
(replies, notes, status, presence) and the customer page with its timeline."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from playwright.async_api import Browser, expect
from sqlalchemy import select

from desk.models import Ticket, TicketMessage
from kb.demo_articles import seed_demo_articles
from kb.options import KbOptions
from kb.records import KbTicketLink
from tests.browser.conftest import SCREENSHOTS, LiveDesk, signed_in
from tests.cti_e2e.conftest import until


async def _ticket(desk: LiveDesk, **fields: Any) -> dict[str, Any]:
    erika = await desk.e2e.customer_id("Erika Mustermann")
    response = await desk.e2e.client.post(
        "/api/v1/tickets",
        json={"customer_id": erika, **fields},
        headers=desk.e2e.auth("sam"),
    )
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_a_ticket_assigned_to_me_appears_in_my_list_live_with_a_ticking_countdown(
    desk: LiveDesk, chromium: Browser
) -> None:
    page = await signed_in(chromium, desk, "alice")
    mine = page.locator("#tickets")
    await expect(mine.locator("li.ticket")).to_have_count(0)

    ticket = await _ticket(
        desk, subject="Line drops after two minutes", assignee_id=desk.e2e.user_ids["alice"]
    )

    row = mine.locator(f'li.ticket[data-ticket="{ticket["id"]}"]')
    await expect(row).to_contain_text("Line drops after two minutes", timeout=5_000)
    countdown = row.locator(".countdown").first
    await expect(countdown).to_contain_text("due in 29m")
    before = await countdown.text_content()
    await expect(countdown).not_to_have_text(before or "", timeout=3_000)


async def test_a_reply_and_an_internal_note_are_added_from_the_ticket_page(
    desk: LiveDesk, chromium: Browser
) -> None:
    ticket = await _ticket(desk, subject="Cannot log in")
    page = await signed_in(chromium, desk, "alice")
    await page.goto(f"{desk.url}/desk/tickets/{ticket['id']}")
    await expect(page.get_by_role("heading", name=f"#{ticket['id']} Cannot log in")).to_be_visible()

    await page.get_by_label("Your message").fill("Please try the <b>reset</b> link.")
    await page.get_by_role("button", name="Send").click()
    messages = page.locator("#messages li[data-kind]")
    await expect(messages).to_have_count(1)
    await page.get_by_label("Internal note").check()
    await page.get_by_label("Your message").fill("Customer sounded upset.")
    await page.get_by_role("button", name="Send").click()

    await expect(messages).to_have_count(2)
    await expect(messages.nth(0)).to_contain_text("Please try the <b>reset</b> link.")
    await expect(messages.nth(1)).to_have_attribute("data-kind", "internal_note")
    async with desk.e2e.database.sessions() as session:
        kinds = (
            await session.scalars(
                select(TicketMessage.kind)
                .where(TicketMessage.ticket_id == ticket["id"])
                .order_by(TicketMessage.id)
            )
        ).all()
    assert list(kinds) == ["public_reply", "internal_note"]


async def test_the_status_is_changed_from_the_ticket_page(
    desk: LiveDesk, chromium: Browser
) -> None:
    ticket = await _ticket(desk, subject="Waiting for the customer")
    page = await signed_in(chromium, desk, "alice")
    await page.goto(f"{desk.url}/desk/tickets/{ticket['id']}")

    await page.get_by_role("combobox", name="Status").select_option("pending")
    await page.get_by_role("button", name="Save").click()

    await expect(page.locator("#status-result")).to_have_text("Saved")
    async with desk.e2e.database.sessions() as session:
        status = await session.scalar(select(Ticket.status).where(Ticket.id == ticket["id"]))
    assert status == "pending"


async def test_two_agents_on_one_ticket_see_each_other_and_who_is_typing(
    desk: LiveDesk, chromium: Browser
) -> None:
    ticket = await _ticket(desk, subject="Shared ticket")
    alice = await signed_in(chromium, desk, "alice")
    bob = await signed_in(chromium, desk, "bob")
    await alice.goto(f"{desk.url}/desk/tickets/{ticket['id']}")
    await bob.goto(f"{desk.url}/desk/tickets/{ticket['id']}")

    await expect(bob.locator("#presence")).to_have_text("Also viewing: Alice", timeout=5_000)
    await expect(alice.locator("#presence")).to_have_text("Also viewing: Bob", timeout=5_000)
    await alice.get_by_label("Your message").type("Hello")
    await expect(bob.locator("#presence")).to_have_text("Also viewing: Alice (typing…)")


async def test_the_customer_page_shows_the_call_in_the_timeline_and_calls_a_number(
    desk: LiveDesk, chromium: Browser
) -> None:
    await desk.play("support_ringall_answered")
    erika = await desk.e2e.customer_id("Erika Mustermann")
    page = await signed_in(chromium, desk, "alice")
    await page.goto(f"{desk.url}/desk/customers/{erika}")

    await expect(page.locator('#timeline li[data-kind="call"]')).not_to_have_count(0)
    await page.get_by_role("button", name="Call +4930123456789").click()

    await expect(page.locator("#dial-result")).to_have_text("Dialling… +4930123456789")
    await until(
        lambda: any(f.get("Action") == "Originate" for f in desk.e2e.sim.actions_received),
        what="the PBX was asked to originate the call",
    )
    await page.screenshot(path=str(SCREENSHOTS / "customer-page.png"))


async def test_an_article_found_on_the_ticket_page_is_inserted_into_the_reply(
    desk: LiveDesk, chromium: Browser
) -> None:
    await seed_demo_articles(desk.e2e.database.sessions, now=datetime.now(UTC), options=KbOptions())
    ticket = await _ticket(desk, subject="Locked out of my account")
    page = await signed_in(chromium, desk, "alice")
    await page.goto(f"{desk.url}/desk/tickets/{ticket['id']}")

    await page.get_by_label("Search articles").fill("password")
    await page.get_by_role("button", name="Search", exact=True).click()
    await page.get_by_role("button", name="Insert into reply: Reset your password").click()

    await expect(page.get_by_label("Your message")).to_have_value(re.compile("Forgot password"))
    async with desk.e2e.database.sessions() as session:
        kinds = (
            await session.scalars(
                select(KbTicketLink.kind).where(KbTicketLink.ticket_id == ticket["id"])
            )
        ).all()
    assert list(kinds) == ["inserted"]
