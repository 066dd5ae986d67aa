"""The supervisors' wallboard in chromium, changing live as the PBX simulator drives
calls and as tickets come near their SLA due times."""

from __future__ import annotations

import asyncio

from playwright.async_api import Browser, expect

from tests.browser.conftest import SCREENSHOTS, LiveDesk, signed_in

SPEED = 2.0


async def test_the_wallboard_shows_a_waiting_caller_and_then_the_abandoned_call_live(
    desk: LiveDesk, chromium: Browser
) -> None:
    page = await signed_in(chromium, desk, "sam")
    support = page.locator('#queues tr[data-queue="support"]')
    await expect(support.locator('[data-field="waiting"]')).to_have_text("0")

    replay = asyncio.create_task(desk.play("support_abandoned", speed=SPEED))
    await expect(support.locator('[data-field="waiting"]')).to_have_text("1", timeout=10_000)
    await expect(page.locator('#agents tr[data-status="ringing"]').first).to_be_visible()

    await expect(support.locator('[data-field="waiting"]')).to_have_text("0", timeout=15_000)
    await expect(support.locator('[data-field="abandon"]')).to_contain_text("(1)")
    await expect(support.locator('[data-field="sl"]')).to_contain_text("0 of 1")
    await replay
    # The day's chart follows the call log: one bar for this hour's abandoned call.
    bars = page.locator('#chart-calls [data-bars="total"] rect:not([height="0"])')
    await expect(bars).to_have_count(1, timeout=5_000)


async def test_a_ticket_near_its_due_time_appears_at_risk_with_a_ticking_countdown(
    desk: LiveDesk, chromium: Browser
) -> None:
    page = await signed_in(chromium, desk, "sam")
    erika = await desk.e2e.customer_id("Erika Mustermann")

    response = await desk.e2e.client.post(
        "/api/v1/tickets",
        json={"subject": "Invoice shows the wrong address", "customer_id": erika},
        headers=desk.e2e.auth("sam"),
    )
    assert response.status == 201, await response.text()

    row = page.locator("#at-risk tr", has_text="Invoice shows the wrong address")
    await expect(row).to_have_count(1, timeout=10_000)
    countdown = row.locator("[data-due]")
    await expect(countdown).to_contain_text("29m")
    before = await countdown.text_content()
    await expect(countdown).not_to_have_text(before or "", timeout=3_000)

    await desk.play("support_ringall_answered")
    answered = page.locator('#chart-calls [data-bars="answered"] rect:not([height="0"])')
    await expect(answered).to_have_count(1, timeout=5_000)
    await page.screenshot(path=str(SCREENSHOTS / "wallboard.png"), full_page=True)
