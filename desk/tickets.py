"""Tickets: opened by agents, customers, the API — and from calls, in one click.

This module holds what the phone side needs today (a ticket from a call, a
callback ticket for an abandoned call); SLA clocks, status rules and routing
build on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from desk.customers import add_to_timeline
from desk.errors import InvalidInput, NotFound
from desk.events import DomainEvent, Recipients
from desk.models import (
    Agent,
    Call,
    Customer,
    Team,
    Ticket,
    TicketCall,
    TicketChange,
    TicketChannel,
    TicketPriority,
    TicketStatus,
    User,
)

if TYPE_CHECKING:
    from desk.ticket_changes import SlaKeeper

Subject = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class TicketDraft(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    subject: Subject
    description: Annotated[str, StringConstraints(max_length=20_000)] = ""
    priority: TicketPriority = TicketPriority.NORMAL
    category: Annotated[str, StringConstraints(max_length=64)] | None = None
    channel: TicketChannel = TicketChannel.API
    customer_id: int | None = None
    assignee_id: int | None = None
    team_id: int | None = None


class TicketFromCall(BaseModel):
    """What the agent may add when turning a call into a ticket; all optional."""

    model_config = ConfigDict(extra="forbid", strict=True)

    subject: Subject | None = None
    description: Annotated[str, StringConstraints(max_length=20_000)] = ""
    priority: TicketPriority = TicketPriority.NORMAL
    customer_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class TicketOpened(DomainEvent):
    name: ClassVar[str] = "ticket_opened"
    ticket_id: int
    subject: str
    priority: str
    category: str | None
    customer_id: int | None
    assignee_agent_id: int | None
    team_id: int | None

    @property
    def recipients(self) -> Recipients:
        return Recipients(
            agents=(self.assignee_agent_id,) if self.assignee_agent_id else (),
            teams=(self.team_id,) if self.team_id else (),
            supervisors=True,
        )

    def payload(self) -> dict[str, Any]:
        return {
            "occurred_at": self.occurred_at.isoformat(),
            "ticket_id": self.ticket_id,
            "subject": self.subject,
            "priority": self.priority,
            "category": self.category,
            "customer_id": self.customer_id,
        }


async def _check_refs(session: AsyncSession, draft: TicketDraft) -> None:
    checks = (
        ("customer_id", draft.customer_id, Customer),
        ("assignee_id", draft.assignee_id, User),
        ("team_id", draft.team_id, Team),
    )
    errors = {
        field: "not found"
        for field, value, model in checks
        if value is not None and await session.get(model, value) is None
    }
    if errors:
        raise InvalidInput("the ticket refers to records that do not exist", fields=errors)


async def agent_of_user(session: AsyncSession, user_id: int | None) -> Agent | None:
    if user_id is None:
        return None
    return await session.scalar(select(Agent).where(Agent.user_id == user_id))


async def open_ticket(
    session: AsyncSession,
    draft: TicketDraft,
    *,
    actor_id: int | None,
    now: datetime,
    sla: SlaKeeper | None = None,
) -> tuple[Ticket, TicketOpened]:
    """Create the ticket with its first audit entry; the caller records the event.
    With ``sla``, the ticket's SLA clocks start in the same transaction."""
    await _check_refs(session, draft)
    ticket = Ticket(
        subject=draft.subject,
        description=draft.description,
        status=TicketStatus.NEW.value,
        priority=draft.priority.value,
        category=draft.category,
        channel=draft.channel.value,
        customer_id=draft.customer_id,
        assignee_id=draft.assignee_id,
        team_id=draft.team_id,
        created_at=now,
        updated_at=now,
    )
    session.add(ticket)
    await session.flush()
    session.add(
        TicketChange(
            ticket_id=ticket.id, at=now, actor_id=actor_id, field="status", old=None, new="new"
        )
    )
    if ticket.customer_id is not None:
        add_to_timeline(
            session,
            customer_id=ticket.customer_id,
            kind="ticket",
            ref_id=ticket.id,
            occurred_at=now,
            summary=f"ticket #{ticket.id} opened: {ticket.subject}",
            data={"ticket_id": ticket.id, "channel": ticket.channel, "priority": ticket.priority},
        )
    if sla is not None:
        started = await sla.ticket_changed(session, ticket, old_status=None, message=None, now=now)
        if started:  # fresh clocks cannot have fired; an event here would be lost
            raise RuntimeError(f"SLA keeper reported {started} for a ticket just opened")
    agent = await agent_of_user(session, ticket.assignee_id)
    event = TicketOpened(
        occurred_at=now,
        ticket_id=ticket.id,
        subject=ticket.subject,
        priority=ticket.priority,
        category=ticket.category,
        customer_id=ticket.customer_id,
        assignee_agent_id=agent.id if agent else None,
        team_id=ticket.team_id,
    )
    return ticket, event


async def ticket_for_call(session: AsyncSession, call: Call) -> Ticket | None:
    return await session.scalar(
        select(Ticket)
        .join(TicketCall, TicketCall.ticket_id == Ticket.id)
        .where(TicketCall.call_id == call.id)
        .order_by(Ticket.id)
        .limit(1)
    )


def _caller_label(call: Call) -> str:
    return call.caller_name or call.caller_e164 or call.caller_raw or "withheld number"


async def open_ticket_from_call(
    session: AsyncSession,
    call: Call,
    extra: TicketFromCall,
    *,
    actor: User,
    now: datetime,
    sla: SlaKeeper | None = None,
) -> tuple[Ticket, TicketOpened | None]:
    """One click on a pop: the call's ticket, created once (a second click returns it)."""
    existing = await ticket_for_call(session, call)
    if existing is not None:
        return existing, None
    agent = await agent_of_user(session, actor.id)
    draft = TicketDraft(
        subject=extra.subject or f"Call from {_caller_label(call)}",
        description=extra.description,
        priority=extra.priority,
        channel=TicketChannel.PHONE,
        customer_id=extra.customer_id or call.customer_id,
        assignee_id=actor.id,
        team_id=agent.team_id if agent else None,
    )
    ticket, event = await open_ticket(session, draft, actor_id=actor.id, now=now, sla=sla)
    session.add(TicketCall(ticket_id=ticket.id, call_id=call.id))
    if extra.customer_id is not None and call.customer_id is None:
        # The agent picked the customer among candidates: the call is theirs too.
        call.customer_id = extra.customer_id
    return ticket, event


async def open_callback_ticket(
    session: AsyncSession,
    call: Call,
    *,
    team_id: int | None,
    now: datetime,
    sla: SlaKeeper | None = None,
) -> tuple[Ticket, TicketOpened] | None:
    """An abandoned caller is owed a call back; None when there is no number to call."""
    if call.caller_e164 is None or await ticket_for_call(session, call) is not None:
        return None
    waited = round(call.wait_seconds or 0)
    draft = TicketDraft(
        subject=f"Call back {_caller_label(call)} ({call.caller_e164})",
        description=f"Hung up after waiting {waited} s in queue {call.queue or '-'}.",
        priority=TicketPriority.HIGH,
        category="callback",
        channel=TicketChannel.PHONE,
        customer_id=call.customer_id,
        team_id=team_id,
    )
    ticket, event = await open_ticket(session, draft, actor_id=None, now=now, sla=sla)
    session.add(TicketCall(ticket_id=ticket.id, call_id=call.id))
    return ticket, event


async def get_ticket(session: AsyncSession, ticket_id: int) -> Ticket:
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} not found")
    return ticket


async def linked_calls(session: AsyncSession, ticket_id: int) -> list[int]:
    rows = await session.scalars(
        select(TicketCall.call_id)
        .where(TicketCall.ticket_id == ticket_id)
        .order_by(TicketCall.call_id)
    )
    return list(rows.all())


async def list_tickets(
    session: AsyncSession,
    *,
    status: TicketStatus | None = None,
    category: str | None = None,
    customer_id: int | None = None,
    assignee_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Ticket], int]:
    query = select(Ticket)
    if status is not None:
        query = query.where(Ticket.status == status.value)
    if category is not None:
        query = query.where(Ticket.category == category)
    if customer_id is not None:
        query = query.where(Ticket.customer_id == customer_id)
    if assignee_id is not None:
        query = query.where(Ticket.assignee_id == assignee_id)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.scalars(query.order_by(Ticket.id.desc()).limit(limit).offset(offset))
    return list(rows.all()), total
