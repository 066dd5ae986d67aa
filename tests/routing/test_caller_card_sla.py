"""The pop's caller card shows each open ticket with its SLA clocks as they stand."""

from __future__ import annotations

from datetime import timedelta

import pytest

from desk.caller_card import caller_card
from desk.clock import FakeClock
from tests.conftest import Database
from tests.routing.sla_support import HANS_PHONE, World, berlin


@pytest.fixture
async def opened(database: Database, clock: FakeClock) -> tuple[World, int]:
    """A ticket for Hans, opened on a Tuesday morning in the Berlin office."""
    clock.set(berlin(2026, 11, 24, 9))
    world = await World.create(database, clock)
    return world, await world.open()


async def _tickets(world: World) -> list[dict[str, object]]:
    async with world.database.sessions() as session:
        card = await caller_card(session, HANS_PHONE, region="DE", now=world.clock.now())
    assert card["customer"] is not None
    tickets: list[dict[str, object]] = card["customer"]["open_tickets"]
    return tickets


async def test_an_open_ticket_in_the_card_carries_its_running_clocks_and_their_due_times(
    opened: tuple[World, int], clock: FakeClock
) -> None:
    world, ticket_id = opened
    [ticket] = await _tickets(world)
    assert ticket["id"] == ticket_id and ticket["sla_status"] == "on_track"
    clocks = {c["clock"]: c for c in ticket["sla"]}  # type: ignore[attr-defined]
    stored = {n: row for n, row in (await world.clocks(ticket_id)).items() if row.due_at}
    assert set(clocks) == set(stored) == {"first_response", "resolution"}
    for name, row in stored.items():
        assert row.due_at is not None
        assert clocks[name]["due_at"] == row.due_at.isoformat()
        assert clocks[name]["status"] == "on_track"


async def test_a_clock_inside_its_warning_window_shows_the_ticket_at_risk(
    opened: tuple[World, int], clock: FakeClock
) -> None:
    world, ticket_id = opened
    first = (await world.clocks(ticket_id))["first_response"]
    assert first.warn_at is not None
    clock.set(first.warn_at + timedelta(seconds=1))
    [ticket] = await _tickets(world)
    assert ticket["sla_status"] == "at_risk"


async def test_a_running_clock_past_due_shows_breached_before_the_watcher_records_it(
    opened: tuple[World, int], clock: FakeClock
) -> None:
    world, ticket_id = opened
    first = (await world.clocks(ticket_id))["first_response"]
    assert first.due_at is not None and first.breached_at is None
    clock.set(first.due_at + timedelta(seconds=1))
    [ticket] = await _tickets(world)
    assert ticket["sla_status"] == "breached"
    statuses = {c["clock"]: c["status"] for c in ticket["sla"]}  # type: ignore[attr-defined]
    assert statuses["first_response"] == "breached"


async def test_a_ticket_waiting_on_the_customer_shows_its_resolution_clock_paused(
    opened: tuple[World, int], clock: FakeClock
) -> None:
    world, ticket_id = opened
    await world.reply(ticket_id)
    await world.change(ticket_id, status="pending")
    [ticket] = await _tickets(world)
    statuses = {c["clock"]: c["status"] for c in ticket["sla"]}  # type: ignore[attr-defined]
    assert statuses["first_response"] == "met"
    assert statuses["resolution"] == "paused"
