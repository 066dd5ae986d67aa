"""What an agent sees about a caller before picking up: the caller card of a pop."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from desk.calls import recent_calls
from desk.customers import match_phone
from desk.models import Call, Customer, Ticket, TicketStatus

JsonDict = dict[str, Any]


def customer_summary(customer: Customer) -> JsonDict:
    return {
        "id": customer.id,
        "name": customer.name,
        "kind": customer.kind,
        "tier": customer.tier,
        "language": customer.language,
        "organisation_id": customer.organisation_id,
        "tags": [t.tag for t in customer.tags],
        "phones": [p.number_e164 for p in customer.phones],
        "emails": [e.address for e in customer.emails],
    }


def call_summary(call: Call) -> JsonDict:
    return {
        "id": call.id,
        "direction": call.direction,
        "started_at": call.started_at.isoformat(),
        "queue": call.queue,
        "agent_id": call.agent_id,
        "outcome": call.outcome,
        "wait_seconds": call.wait_seconds,
        "talk_seconds": call.talk_seconds,
    }


async def caller_card(
    session: AsyncSession, number_raw: str, *, region: str, exclude_call: str | None = None
) -> JsonDict:
    """Caller, matched customer (or candidates, or nothing), and their last calls.

    A number shared by several customers gives candidates to choose from and no
    customer; an unknown number gives neither, so the desk offers a new-customer
    form with ``caller.number_e164`` filled in; a withheld number is anonymous.
    """
    match = await match_phone(session, number_raw, region=region)
    customer = match.candidates[0] if len(match.candidates) == 1 else None
    card: JsonDict = {
        "caller": {
            "number_raw": number_raw,
            "number_e164": match.number.e164,
            "status": match.number.status.value,
        },
        "customer": None,
        "candidates": [customer_summary(c) for c in match.candidates]
        if len(match.candidates) > 1
        else [],
    }
    if customer is not None:
        calls = [
            c
            for c in await recent_calls(session, customer.id, limit=6)
            if c.call_id != exclude_call
        ]
        card["customer"] = {
            **customer_summary(customer),
            "last_calls": [call_summary(c) for c in calls[:5]],
            "open_tickets": [ticket_summary(t) for t in await open_tickets(session, customer.id)],
        }
    return card


def ticket_summary(ticket: Ticket) -> JsonDict:
    return {
        "id": ticket.id,
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "updated_at": ticket.updated_at.isoformat(),
    }


async def open_tickets(session: AsyncSession, customer_id: int, *, limit: int = 10) -> list[Ticket]:
    rows = await session.scalars(
        select(Ticket)
        .where(
            Ticket.customer_id == customer_id,
            Ticket.status.not_in([TicketStatus.SOLVED.value, TicketStatus.CLOSED.value]),
        )
        .order_by(Ticket.updated_at.desc())
        .limit(limit)
    )
    return list(rows.all())
