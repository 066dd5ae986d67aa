"""What a pop tells the agent beyond the caller's name, through the whole running
desk: open tickets with their SLA clocks and the knowledge base's suggestions."""

from __future__ import annotations

from typing import Any

from tests.cti_e2e.conftest import E2E

SPEED = 4.0


async def _post(e2e: E2E, who: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await e2e.client.post(path, json=body, headers=e2e.auth(who))
    assert response.status in (200, 201), await response.text()
    found: dict[str, Any] = await response.json()
    return found


async def test_a_pop_shows_the_callers_open_ticket_its_sla_clocks_and_the_article_for_it(
    e2e: E2E,
) -> None:
    erika = await e2e.customer_id("Erika Mustermann")
    ticket = await _post(
        e2e,
        "alice",
        "/api/v1/tickets",
        {
            "subject": "Router keeps dropping the internet connection",
            "description": "Since Monday the router loses the connection every few minutes.",
            "customer_id": erika,
        },
    )
    draft = await _post(
        e2e,
        "alice",
        "/api/v1/kb/articles",
        {
            "title": "Router drops the internet connection every few minutes",
            "body": "Restart the router, then update its firmware.",
            "summary": "Restart, then update the firmware.",
            "audience": "public",
        },
    )
    await _post(
        e2e,
        "sam",
        f"/api/v1/kb/articles/{draft['id']}/transitions",
        {"to": "published", "version": draft["head_version"]},
    )

    await e2e.play("support_ringall_answered", speed=SPEED)

    [ringing] = [p for p in e2e.browsers["alice"].pops() if p["phase"] == "ringing"]
    customer = ringing["customer"]
    [open_ticket] = [t for t in customer["open_tickets"] if t["id"] == ticket["id"]]
    assert open_ticket["sla_status"] == "on_track"
    assert {c["clock"] for c in open_ticket["sla"]} >= {"first_response", "resolution"}
    assert all(c["due_at"] for c in open_ticket["sla"] if c["status"] == "on_track")
    titles = [a["title"] for a in customer["suggested_articles"]]
    assert titles[0] == "Router drops the internet connection every few minutes"
    assert customer["suggested_articles"][0]["reason"]
    assert customer["last_satisfaction"] is None  # never surveyed
