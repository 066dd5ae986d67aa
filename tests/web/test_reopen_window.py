"""The reopen window comes from the settings ([tickets] reopen_days)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from desk.settings import Settings
from tests.web.conftest import Desk


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Sessions outlive the days the clock is moved on.
    return settings.model_copy(update={"tickets_reopen_days": 2, "session_hours": 24 * 30})


async def _solved_ticket(desk: Desk) -> dict[str, Any]:
    response = await desk.client.post(
        "/api/v1/tickets", json={"subject": "Router is down"}, headers=desk.auth("alice")
    )
    ticket = await response.json()
    for status in ("open", "solved"):
        response = await desk.client.patch(
            f"/api/v1/tickets/{ticket['id']}",
            json={"version": ticket["version"], "status": status},
            headers=desk.auth("alice"),
        )
        ticket = await response.json()
    assert ticket["status"] == "solved"
    return ticket


async def _customer_writes(desk: Desk, ticket: dict[str, Any]) -> str:
    response = await desk.client.post(
        f"/api/v1/tickets/{ticket['id']}/messages",
        json={"kind": "customer_message", "body": "It broke again"},
        headers=desk.auth("alice"),
    )
    assert response.status == 201, await response.text()
    current = await desk.client.get(f"/api/v1/tickets/{ticket['id']}", headers=desk.auth("alice"))
    status: str = (await current.json())["status"]
    return status


async def test_an_answer_inside_the_configured_window_reopens(desk: Desk) -> None:
    ticket = await _solved_ticket(desk)
    desk.clock.advance(timedelta(days=1, hours=23))
    assert await _customer_writes(desk, ticket) == "open"


async def test_an_answer_after_the_configured_window_leaves_the_ticket_solved(desk: Desk) -> None:
    ticket = await _solved_ticket(desk)
    desk.clock.advance(timedelta(days=2, hours=1))  # inside the 7-day default
    assert await _customer_writes(desk, ticket) == "solved"
