"""What an agent sees about a caller before picking up: the caller card of a pop."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from desk.calls import recent_calls
from desk.customers import match_phone
from desk.models import Call, Customer, Ticket, TicketClock, TicketStatus
from desk.surveys import last_satisfaction

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


class ClockStatus(StrEnum):
    """How an SLA clock stands, worst first: what the pop's ticket badges show."""

    BREACHED = "breached"
    AT_RISK = "at_risk"
    ON_TRACK = "on_track"
    PAUSED = "paused"
    MET = "met"


_SEVERITY = {status: rank for rank, status in enumerate(ClockStatus)}


def clock_status(
    *,
    state: Mapping[str, Any],
    due_at: datetime | None,
    warn_at: datetime | None,
    breached_at: datetime | None,
    now: datetime,
) -> ClockStatus:
    """One clock's standing at ``now`` from its stored row (``state`` is the clock's
    JSON: ``running_since`` / ``paused_since`` / ``stopped_at``)."""
    running = state.get("running_since") is not None
    # A running clock past its due time has breached even before the watcher records it.
    if breached_at is not None or (running and due_at is not None and due_at <= now):
        return ClockStatus.BREACHED
    if state.get("stopped_at") is not None:
        return ClockStatus.MET
    if not running or due_at is None:
        return ClockStatus.PAUSED
    if warn_at is not None and warn_at <= now:
        return ClockStatus.AT_RISK
    return ClockStatus.ON_TRACK


def _started(state: Mapping[str, Any]) -> bool:
    return any(
        state.get(mark) is not None for mark in ("running_since", "paused_since", "stopped_at")
    )


def worst_status(statuses: Iterable[ClockStatus]) -> ClockStatus | None:
    return min(statuses, key=_SEVERITY.__getitem__, default=None)


async def caller_card(
    session: AsyncSession,
    number_raw: str,
    *,
    region: str,
    now: datetime,
    exclude_call: str | None = None,
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
            "open_tickets": await open_ticket_summaries(session, customer.id, now=now),
            "last_satisfaction": satisfaction_summary(
                await last_satisfaction(session, customer.id)
            ),
        }
    return card


def satisfaction_summary(answer: Mapping[str, Any] | None) -> JsonDict | None:
    """The customer's newest survey answer, as the pop shows it (JSON-ready)."""
    if answer is None:
        return None
    answered_at = answer["answered_at"]
    return {**answer, "answered_at": answered_at.isoformat() if answered_at else None}


async def open_ticket_summaries(
    session: AsyncSession, customer_id: int, *, now: datetime
) -> list[JsonDict]:
    """The customer's open tickets, newest first, each with its SLA clocks."""
    tickets = await open_tickets(session, customer_id)
    clocks = await clocks_of(session, [t.id for t in tickets])
    return [ticket_summary(t, clocks.get(t.id, ()), now=now) for t in tickets]


async def clocks_of(
    session: AsyncSession, ticket_ids: Sequence[int]
) -> dict[int, list[TicketClock]]:
    if not ticket_ids:
        return {}
    rows = await session.scalars(
        select(TicketClock)
        .where(TicketClock.ticket_id.in_(ticket_ids))
        .order_by(TicketClock.ticket_id, TicketClock.id)
    )
    by_ticket: dict[int, list[TicketClock]] = {}
    for row in rows:
        by_ticket.setdefault(row.ticket_id, []).append(row)
    return by_ticket


def clock_summary(row: TicketClock, *, now: datetime) -> JsonDict:
    return {
        "clock": row.clock,
        "status": clock_status(
            state=row.state,
            due_at=row.due_at,
            warn_at=row.warn_at,
            breached_at=row.breached_at,
            now=now,
        ).value,
        "due_at": row.due_at.isoformat() if row.due_at is not None else None,
        "warn_at": row.warn_at.isoformat() if row.warn_at is not None else None,
        "breached_at": row.breached_at.isoformat() if row.breached_at is not None else None,
    }


def ticket_summary(ticket: Ticket, clocks: Iterable[TicketClock], *, now: datetime) -> JsonDict:
    # A clock not started yet (next response before any reply) says nothing to the agent.
    sla = [clock_summary(row, now=now) for row in clocks if _started(row.state)]
    worst = worst_status(ClockStatus(c["status"]) for c in sla)
    return {
        "id": ticket.id,
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "updated_at": ticket.updated_at.isoformat(),
        "sla_status": worst.value if worst is not None else None,
        "sla": sla,
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
