"""An abandoned caller is owed a call back: a ticket with running SLA clocks."""

from __future__ import annotations

from sqlalchemy import select

from desk.models import Ticket, TicketCall, TicketClock
from desk.settings import Settings
from tests.conftest import Database
from tests.cti_e2e.conftest import running_desk


async def test_an_abandoned_queue_call_opens_a_callback_ticket_with_sla_clocks(
    settings: Settings, database: Database
) -> None:
    # The replay runs 4x fast, so its 6 s wait would be a short abandon: count every abandon.
    eager = settings.model_copy(update={"cti_short_abandon_seconds": 0.0})
    async with running_desk(eager, database, browsers=("sam",)) as desk:
        await desk.play("support_abandoned", speed=4.0)
        (call,) = await desk.calls()
        async with database.sessions() as session:
            ticket = await session.scalar(
                select(Ticket).join(TicketCall).where(TicketCall.call_id == call.id)
            )
            assert ticket is not None
            assert (ticket.category, ticket.priority, ticket.channel) == (
                "callback",
                "high",
                "phone",
            )
            assert ticket.customer_id == call.customer_id
            assert "+4930555000111" in ticket.subject
            clocks = (
                await session.scalars(select(TicketClock).where(TicketClock.ticket_id == ticket.id))
            ).all()
            assert {c.clock for c in clocks} >= {"first_response", "resolution"}
            assert all(c.due_at is not None for c in clocks if c.clock != "next_response")
        opened = [e for e in desk.browsers["sam"].events("ticket_opened")]
        assert [e["ticket_id"] for e in opened] == [ticket.id]
