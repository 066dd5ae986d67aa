"""The customers' pages in chromium with JavaScript off: the survey from its e-mail
(one tap records the score; a bad one reaches the supervisors' wallboard live), the
help center in English and Chinese, and the public ticket form."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from playwright.async_api import Browser, expect
from sqlalchemy import select

from desk.models import Ticket
from kb.demo_articles import seed_demo_articles
from kb.options import KbOptions
from tests.browser.conftest import (
    ERIKA,
    SCREENSHOTS,
    LiveDesk,
    phone_context,
    signed_in,
    solve_a_ticket_for_erika,
    survey_mail,
    text_of,
)
from tests.desk.mail_support import MailServer


async def test_one_tap_in_the_survey_email_rates_the_ticket_and_a_bad_score_reaches_the_wallboard(
    surveying_desk: LiveDesk, mail: MailServer, chromium: Browser
) -> None:
    desk = surveying_desk
    wall = await signed_in(chromium, desk, "sam")
    await expect(wall.locator("#csat-today")).to_contain_text("No survey answered today yet.")

    ticket_id = await solve_a_ticket_for_erika(desk)
    email = await survey_mail(mail, ERIKA)
    face = re.search(r"http://127\.0\.0\.1:\d+/s/[A-Za-z0-9_-]+\?csat=1", text_of(email))
    assert face is not None, text_of(email)

    phone = await phone_context(chromium)
    page = await phone.new_page()
    await page.goto(face.group(0))
    await expect(page.locator("#recorded")).to_be_visible()
    await page.screenshot(path=str(SCREENSHOTS / "survey.png"), full_page=True)
    await page.get_by_label("Anything you would like to tell us?").fill(
        "Nobody called back <b>twice</b>"
    )
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.get_by_role("heading", name="Thank you!")).to_be_visible()

    # The supervisors' wallboard: the low score arrives by itself, the comment as text.
    alert = wall.locator("#low-scores li", has_text="Erika Mustermann")
    await expect(alert).to_have_count(1, timeout=10_000)
    await expect(alert.locator('[data-field="comment"]')).to_have_text(
        "Nobody called back <b>twice</b>"
    )
    await expect(alert.locator('[data-field="score"]')).to_have_text("CSAT 1/5")
    await expect(wall.locator('#csat-today [data-field="csat-of"]')).to_have_text(
        "0 satisfied, of 1 answers", timeout=10_000
    )
    await wall.locator("#low-scores-panel").screenshot(
        path=str(SCREENSHOTS / "wallboard-low-score.png")
    )
    async with desk.e2e.database.sessions() as session:
        ticket = await session.scalar(select(Ticket).where(Ticket.id == ticket_id))
    assert ticket is not None and ticket.status == "open"  # the bad score reopened it

    note = alert.get_by_label("What was done")
    await note.fill("Called Erika back; engineer booked.")
    # While the supervisor types, the customer changes the answer: the list reloads
    # (the new comment shows) and keeps the note being typed.
    await page.goto(face.group(0))
    await page.get_by_label("Anything you would like to tell us?").fill("Still nobody.")
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.get_by_role("heading", name="Thank you!")).to_be_visible()
    await expect(alert.locator('[data-field="comment"]')).to_have_text(
        "Still nobody.", timeout=10_000
    )
    await expect(note).to_have_value("Called Erika back; engineer booked.")
    await alert.get_by_role("button", name="Acknowledge").click()
    await expect(wall.locator("#low-scores")).to_have_text(
        "No low score is waiting.", timeout=10_000
    )
    await phone.close()


async def test_the_help_center_finds_articles_in_english_and_in_chinese(
    desk: LiveDesk, chromium: Browser
) -> None:
    await seed_demo_articles(desk.e2e.database.sessions, now=datetime.now(UTC), options=KbOptions())
    phone = await phone_context(chromium)
    page = await phone.new_page()
    await page.goto(f"{desk.url}/help/en")

    await page.get_by_role("searchbox").fill("refund")
    await page.get_by_role("searchbox").press("Enter")
    first = page.locator("#results li").first
    await expect(first.get_by_role("link")).to_have_text("How long does a refund take?")
    await expect(first.locator("mark").first).to_have_text(re.compile("refund", re.IGNORECASE))
    await page.screenshot(path=str(SCREENSHOTS / "help-center.png"), full_page=True)

    await page.goto(f"{desk.url}/help/zh")
    await page.get_by_role("searchbox").fill("退款")
    await page.get_by_role("searchbox").press("Enter")
    found = page.locator("#results li").first
    await expect(found.get_by_role("link")).to_have_text("退款多久到账")
    await expect(found.locator("mark").first).to_have_text("退款")

    await found.get_by_role("link").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("退款多久到账")
    await phone.close()


async def test_the_internal_articles_stay_out_of_the_public_help_center(
    desk: LiveDesk, chromium: Browser
) -> None:
    await seed_demo_articles(desk.e2e.database.sessions, now=datetime.now(UTC), options=KbOptions())
    phone = await phone_context(chromium)
    page = await phone.new_page()
    await page.goto(f"{desk.url}/help/en/search?q=goodwill+credits")

    await expect(page.locator("main")).not_to_contain_text("what agents may offer")
    await phone.close()


async def test_a_customer_sends_a_request_through_the_public_form_without_javascript(
    desk: LiveDesk, chromium: Browser
) -> None:
    phone = await phone_context(chromium)
    page = await phone.new_page()
    await page.goto(f"{desk.url}/help/tickets/new?lang=en")

    await page.get_by_label("Your name").fill("Jo Caller")
    await page.get_by_label("E-mail").fill("jo@example.org")
    await page.get_by_label("Subject").fill("Parcel never arrived")
    await page.get_by_label("What can we help with?").fill("Ordered on Monday; <i>nothing</i> yet.")
    await page.get_by_role("button", name="Send").click()

    await expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    async with desk.e2e.database.sessions() as session:
        ticket = await session.scalar(
            select(Ticket).where(Ticket.subject == "Parcel never arrived")
        )
    assert ticket is not None and ticket.channel == "web"
    await phone.close()
