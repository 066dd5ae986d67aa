"""The screens in chromium as assistive technology and the WCAG AA contrast rule see
them: every text readable against what is behind it, in the light and the dark
theme; every control named; the desk worked with the keyboard alone."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from playwright.async_api import Browser, Page, expect

from desk.demo_data import DEMO_PASSWORD
from kb.demo_articles import seed_demo_articles
from kb.options import KbOptions
from tests.browser.conftest import (
    ERIKA,
    LiveDesk,
    signed_in,
    solve_a_ticket_for_erika,
    survey_mail,
    text_of,
    watched,
)
from tests.desk.mail_support import MailServer

# Contrast and naming checks, run inside the page (plain JavaScript, no library).
PAGE_CHECKS = (Path(__file__).parent / "page_checks.js").read_text(encoding="utf-8")


async def _check(page: Page) -> dict[str, list[Any]]:
    await page.evaluate(PAGE_CHECKS)
    return {
        "contrast": await page.evaluate("window.__contrastProblems()"),
        "unnamed": await page.evaluate("window.__unnamedControls()"),
    }


async def test_the_staff_screens_pass_the_contrast_rule_and_name_every_control(
    desk: LiveDesk, chromium: Browser
) -> None:
    erika = await desk.e2e.customer_id("Erika Mustermann")
    response = await desk.e2e.client.post(
        "/api/v1/tickets",
        json={"subject": "Invoice shows the wrong address", "customer_id": erika},
        headers=desk.e2e.auth("alice"),
    )
    ticket_id = (await response.json())["id"]
    agent = await signed_in(chromium, desk, "bob")
    wall = await signed_in(chromium, desk, "sam")
    replay = asyncio.create_task(desk.play("support_ringall_answered", speed=2.0))
    await expect(agent.locator("article.pop")).to_have_count(1, timeout=10_000)

    found: dict[str, dict[str, list[Any]]] = {}
    found["desk with a pop"] = await _check(agent)
    for theme in ("light", "dark"):
        await wall.goto(f"{desk.url}/wallboard?theme={theme}")
        await expect(wall.locator("#at-risk tr", has_text="Invoice")).to_have_count(1)
        found[f"wallboard ({theme})"] = await _check(wall)
    await agent.goto(f"{desk.url}/desk/tickets/{ticket_id}")
    found["ticket"] = await _check(agent)
    await agent.goto(f"{desk.url}/desk/customers/{erika}")
    found["customer"] = await _check(agent)
    await agent.goto(f"{desk.url}/desk/tickets")
    found["ticket list"] = await _check(agent)
    await replay

    assert {screen: problems for screen, problems in found.items() if any(problems.values())} == {}


async def test_the_customer_pages_pass_the_contrast_rule_and_name_every_control(
    desk: LiveDesk, chromium: Browser
) -> None:
    await seed_demo_articles(desk.e2e.database.sessions, now=datetime.now(UTC), options=KbOptions())
    found: dict[str, dict[str, list[Any]]] = {}
    for scheme in ("light", "dark"):
        found |= await _customer_pages(chromium, desk, scheme)

    assert {screen: problems for screen, problems in found.items() if any(problems.values())} == {}


async def _customer_pages(
    chromium: Browser, desk: LiveDesk, scheme: Literal["light", "dark"]
) -> dict[str, dict[str, list[Any]]]:
    """The customer pages follow the phone's light or dark setting."""
    context = watched(
        await chromium.new_context(
            viewport={"width": 390, "height": 844}, is_mobile=True, color_scheme=scheme
        )
    )
    page = await context.new_page()
    found: dict[str, dict[str, list[Any]]] = {}
    for name, path in [
        ("help center", "/help/en"),
        ("help search", "/help/en/search?q=refund"),
        ("help search (zh)", "/help/zh/search?q=退款"),
        ("help article", "/help/en/articles/reset-your-password"),
        ("ticket form", "/help/tickets/new?lang=en"),
        ("sign-in", "/desk/sign-in"),
    ]:
        await page.goto(f"{desk.url}{path}")
        found[f"{name} ({scheme})"] = await _check(page)
    await page.goto(f"{desk.url}/help/tickets/new?lang=en")
    await page.get_by_role("button", name="Send").click()  # empty: every field complains
    await expect(page.locator("#problems")).to_be_visible()
    found[f"ticket form with problems ({scheme})"] = await _check(page)
    await context.close()
    return found


async def test_an_agent_signs_in_and_pauses_with_the_keyboard_alone(
    desk: LiveDesk, chromium: Browser
) -> None:
    context = watched(await chromium.new_context(viewport={"width": 1280, "height": 900}))
    page = await context.new_page()
    await page.goto(f"{desk.url}/desk/sign-in")
    await expect(page.get_by_label("Username")).to_be_focused()  # ready to type
    await page.keyboard.type("carol")
    await page.keyboard.press("Tab")
    await page.keyboard.type(DEMO_PASSWORD)
    await page.keyboard.press("Enter")
    await page.locator('#live[data-state="live"]').wait_for()

    await page.get_by_label("Ready").focus()
    await page.keyboard.press("ArrowDown")  # the radio group: ready -> paused
    await expect(page.get_by_label("Paused")).to_be_checked()
    await page.keyboard.press("Tab")  # to the pause reason
    await expect(page.locator(":focus")).to_have_id("reason")
    await page.keyboard.press("ArrowDown")  # Break -> Lunch
    await page.keyboard.press("Tab")
    await expect(page.locator(":focus")).to_have_text("Set status")
    await page.keyboard.press("Enter")

    await expect(page.locator("#state-name")).to_have_text("Paused", timeout=5_000)
    await expect(page.locator("#state-reason")).to_have_text("Lunch")
    await context.close()


async def test_the_survey_pages_pass_the_contrast_rule_and_name_every_control(
    surveying_desk: LiveDesk, mail: MailServer, chromium: Browser
) -> None:
    await solve_a_ticket_for_erika(surveying_desk)
    link = re.search(r"http://\S+/s/[A-Za-z0-9_-]+", text_of(await survey_mail(mail, ERIKA)))
    assert link is not None
    found: dict[str, dict[str, list[Any]]] = {}
    for scheme in ("light", "dark"):
        context = watched(
            await chromium.new_context(
                viewport={"width": 390, "height": 844}, is_mobile=True, color_scheme=scheme
            )
        )
        page = await context.new_page()
        await page.goto(link.group(0))
        found[f"survey form ({scheme})"] = await _check(page)
        await page.goto(f"{link.group(0)}?csat=4")  # one tap: recorded, more questions
        found[f"survey recorded ({scheme})"] = await _check(page)
        await page.get_by_role("button", name="Save changes").click()
        found[f"survey thanks ({scheme})"] = await _check(page)
        await page.goto(f"{link.group(0)}/opt-out")
        found[f"survey opt-out ({scheme})"] = await _check(page)
        await context.close()

    assert {screen: problems for screen, problems in found.items() if any(problems.values())} == {}
