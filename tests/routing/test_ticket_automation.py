"""Automation rules on new tickets: priority, team, tags and notifications, written
through desk's change path before the router routes the ticket."""

from __future__ import annotations

from typing import Any

from desk.clock import FakeClock
from desk.ticket_changes import TicketChanged
from desk.tickets import TicketOpened
from routing.automation import rules_from_config
from routing.router import Assignment
from routing.ticket_automation import TicketAutomation, TicketFlagged
from tests.conftest import Database
from tests.routing.test_assignment import Desk, desk_with

OUTAGE = {
    "name": "Outage",
    "conditions": [{"field": "subject", "contains": "outage"}],
    "actions": [{"set_priority": "urgent"}, {"add_tag": "outage"}, {"notify": "supervisors"}],
}
INVOICES_TO_BILLING = {
    "name": "API invoices to billing",
    "match": "all",
    "conditions": [
        {"field": "channel", "equals": "api"},
        {"field": "subject", "contains": "invoice"},
    ],
    "actions": [{"set_team": "Billing"}, {"add_tag": "invoice"}],
}


def automation(desk: Desk, *rules: dict[str, Any]) -> TicketAutomation:
    return TicketAutomation(
        sessions=desk.database.sessions,
        bus=desk.bus,
        clock=desk.clock,
        rules=rules_from_config(list(rules), teams=desk.teams),
    )


async def test_a_matching_rule_sets_priority_and_tag_and_tells_the_supervisors(
    database: Database, clock: FakeClock
) -> None:
    desk = await desk_with(database, clock)
    ticket = await desk.open(category=None, subject="Outage in Berlin")

    matched = await automation(desk, OUTAGE).ticket_opened(ticket)

    assert matched == ["Outage"]
    row = await desk.ticket(ticket)
    assert (row.priority, row.tags) == ("urgent", ["outage"])
    (flagged,) = desk.of(TicketFlagged)
    assert flagged.recipients.supervisors and flagged.rule == "Outage"
    changed = {name for event in desk.of(TicketChanged) for name, _, _ in event.changes}
    assert changed == {"priority", "tags"}
    history = await desk.history(ticket)
    assert ("automation", None, "Outage") in history
    assert ("priority", None, "urgent") in history


async def test_a_ticket_no_rule_matches_is_left_untouched(
    database: Database, clock: FakeClock
) -> None:
    desk = await desk_with(database, clock)
    ticket = await desk.open(category=None, subject="Password reset")
    before = await desk.ticket(ticket)

    assert await automation(desk, OUTAGE).ticket_opened(ticket) == []

    after = await desk.ticket(ticket)
    assert (after.version, after.priority, after.tags) == (before.version, "normal", [])
    assert [field for field, _, _ in await desk.history(ticket)] == ["status"]


async def test_the_team_a_rule_sets_decides_where_the_router_sends_the_ticket(
    database: Database, clock: FakeClock
) -> None:
    desk = await desk_with(database, clock)
    desk.online("anna", "dora")
    ticket = await desk.open(category=None, subject="Invoice twice")
    rules = automation(desk, INVOICES_TO_BILLING)

    await rules.ticket_opened(ticket)
    decision = await desk.assigner().ticket_needs_agent(ticket)

    row = await desk.ticket(ticket)
    assert row.team_id == desk.teams["Billing"] and row.tags == ["invoice"]
    assert isinstance(decision, Assignment) and decision.agent_id == desk.agents["anna"]


async def test_a_running_assigner_applies_the_rules_before_it_routes(
    database: Database, clock: FakeClock
) -> None:
    desk = await desk_with(database, clock)
    desk.online("anna", "dora")
    assigner = desk.assigner(automation=automation(desk, INVOICES_TO_BILLING))
    desk.bus.subscribe(TicketOpened, assigner.on_ticket_opened)
    assigner.start()
    try:
        ticket = await desk.open(category=None)  # "Invoice is wrong", through the API channel
        await assigner.settled()
    finally:
        await assigner.stop()
    assert await desk.holder(ticket) == "anna"
    assert (await desk.ticket(ticket)).tags == ["invoice"]
