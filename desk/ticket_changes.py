"""Changing tickets: fields and status (version-checked, audited) and messages.

Every change writes who, when and old → new to ``ticket_changes``.  A writer
sends the version it read; a stale version is refused, never overwritten.
SLA clocks follow each change through the ``SlaKeeper`` the caller passes in
(the routing layer implements it), inside the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from desk.errors import InvalidInput, StaleWrite
from desk.events import DomainEvent, Recipients
from desk.models import (
    MessageKind,
    Team,
    Ticket,
    TicketChange,
    TicketMessage,
    TicketPriority,
    TicketStatus,
    User,
)
from desk.surveys import survey_follows_ticket
from desk.ticket_status import check_transition, status_after_customer_message
from desk.tickets import agent_of_user, get_ticket

TicketTag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$"),
]


class TicketPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    version: int
    status: TicketStatus | None = None
    close_reason: Literal["spam", "duplicate"] | None = None
    priority: TicketPriority | None = None
    category: Annotated[str, StringConstraints(max_length=64)] | None = None
    subject: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
        | None
    ) = None
    assignee_id: int | None = None
    team_id: int | None = None
    tags: Annotated[list[TicketTag], Field(max_length=30)] | None = None


class MessageDraft(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    # customer_message: what the customer said, recorded by an agent (on the phone)
    # or relayed by an integration (an e-mail or chat gateway signed in as a user).
    kind: Literal["public_reply", "internal_note", "customer_message"]
    body: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50_000)]


class SlaKeeper(Protocol):
    """Keeps a ticket's SLA clocks in step with its changes, in the same transaction."""

    async def ticket_changed(
        self,
        session: AsyncSession,
        ticket: Ticket,
        *,
        old_status: TicketStatus | None,
        message: MessageKind | None,
        now: datetime,
    ) -> list[DomainEvent]: ...


@dataclass(frozen=True, kw_only=True)
class TicketChanged(DomainEvent):
    name: ClassVar[str] = "ticket_changed"
    ticket_id: int
    version: int
    changes: tuple[tuple[str, str | None, str | None], ...]
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
            "version": self.version,
            "changes": [{"field": f, "old": o, "new": n} for f, o, n in self.changes],
        }


def _text(value: object) -> str | None:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return None if value is None else str(value)


def _audit(
    session: AsyncSession,
    ticket: Ticket,
    field: str,
    old: object,
    new: object,
    *,
    actor_id: int | None,
    now: datetime,
) -> tuple[str, str | None, str | None]:
    change = (field, _text(old), _text(new))
    session.add(
        TicketChange(
            ticket_id=ticket.id,
            at=now,
            actor_id=actor_id,
            field=field,
            old=change[1],
            new=change[2],
        )
    )
    return change


def _set_status(ticket: Ticket, status: TicketStatus, now: datetime) -> None:
    ticket.status = status.value
    if status is TicketStatus.SOLVED:
        ticket.solved_at = now
    elif status is TicketStatus.CLOSED:
        ticket.closed_at = now
    elif status is TicketStatus.OPEN:
        ticket.solved_at = None


async def change_ticket(
    session: AsyncSession,
    ticket_id: int,
    patch: TicketPatch,
    *,
    actor: User | None,
    now: datetime,
    sla: SlaKeeper | None = None,
) -> tuple[Ticket, list[DomainEvent]]:
    """Apply ``patch``; ``actor`` None is the system (the router), audited with no user."""
    actor_id = actor.id if actor is not None else None
    ticket = await get_ticket(session, ticket_id)
    if ticket.version != patch.version:
        raise StaleWrite(
            f"ticket {ticket_id} was changed by someone else (version {ticket.version}, "
            f"you sent {patch.version}); reload and retry",
            fields={"version": f"current version is {ticket.version}"},
        )
    given = patch.model_fields_set - {"version", "close_reason"}
    old_status = TicketStatus(ticket.status)
    if patch.status is not None:
        check_transition(old_status, patch.status, close_reason=patch.close_reason)
    for ref, model in (("assignee_id", User), ("team_id", Team)):
        value = getattr(patch, ref)
        if ref in given and value is not None and await session.get(model, value) is None:
            raise InvalidInput(f"{ref} refers to nothing", fields={ref: "not found"})
    changes = []
    for field in sorted(given):
        new = getattr(patch, field)
        if field == "status":
            if new is None:
                raise InvalidInput("status cannot be empty", fields={"status": "required"})
            changes.append(
                _audit(
                    session, ticket, "status", ticket.status, new.value, actor_id=actor_id, now=now
                )
            )
            _set_status(ticket, new, now)
            continue
        if field in ("priority", "subject") and new is None:
            raise InvalidInput(f"{field} cannot be empty", fields={field: "required"})
        value = new.value if isinstance(new, TicketPriority) else new
        if field == "tags":
            if new is None:
                raise InvalidInput("tags cannot be empty; send []", fields={"tags": "required"})
            value = sorted(set(new))
        if getattr(ticket, field) != value:
            changes.append(
                _audit(
                    session,
                    ticket,
                    field,
                    getattr(ticket, field),
                    value,
                    actor_id=actor_id,
                    now=now,
                )
            )
            setattr(ticket, field, value)
    if not changes:
        return ticket, []
    ticket.updated_at = now
    await session.flush()
    events: list[DomainEvent] = []
    if sla is not None:
        events += await sla.ticket_changed(
            session,
            ticket,
            old_status=old_status if "status" in given else None,
            message=None,
            now=now,
        )
    if patch.status is not None:  # solved: a survey; reopened: take back an unsent one
        await survey_follows_ticket(
            session,
            ticket,
            old=old_status,
            new=patch.status,
            close_reason=patch.close_reason,
            now=now,
        )
    events.insert(0, await _changed_event(session, ticket, changes, now))
    return ticket, events


async def _changed_event(
    session: AsyncSession,
    ticket: Ticket,
    changes: list[tuple[str, str | None, str | None]],
    now: datetime,
) -> TicketChanged:
    agent = await agent_of_user(session, ticket.assignee_id)
    return TicketChanged(
        occurred_at=now,
        ticket_id=ticket.id,
        version=ticket.version,
        changes=tuple(changes),
        assignee_agent_id=agent.id if agent else None,
        team_id=ticket.team_id,
    )


async def add_message(
    session: AsyncSession,
    ticket_id: int,
    *,
    kind: MessageKind,
    body: str,
    author: User | None,
    now: datetime,
    reopen_window: timedelta = timedelta(days=7),
    sla: SlaKeeper | None = None,
) -> tuple[TicketMessage, list[DomainEvent]]:
    """An agent's reply or note, or the customer's message (``author`` None)."""
    ticket = await get_ticket(session, ticket_id)
    if TicketStatus(ticket.status) is TicketStatus.CLOSED:
        raise InvalidInput(
            "the ticket is closed; open a follow-up ticket", fields={"ticket": "closed"}
        )
    message = TicketMessage(
        ticket_id=ticket.id,
        kind=kind.value,
        author_id=author.id if author else None,
        body=body,
        created_at=now,
    )
    session.add(message)
    old_status = TicketStatus(ticket.status)
    new_status: TicketStatus | None = None
    if kind is MessageKind.CUSTOMER_MESSAGE:
        new_status = status_after_customer_message(
            old_status, solved_at=ticket.solved_at, now=now, reopen_window=reopen_window
        )
    elif kind is MessageKind.PUBLIC_REPLY and old_status is TicketStatus.NEW:
        new_status = TicketStatus.OPEN  # answering a new ticket opens it
    changes = []
    if new_status is not None:
        changes.append(
            _audit(
                session,
                ticket,
                "status",
                ticket.status,
                new_status.value,
                actor_id=author.id if author else None,
                now=now,
            )
        )
        _set_status(ticket, new_status, now)
    ticket.updated_at = now
    await session.flush()
    events: list[DomainEvent] = []
    if sla is not None:
        events += await sla.ticket_changed(
            session, ticket, old_status=old_status if new_status else None, message=kind, now=now
        )
    if new_status is not None:
        await survey_follows_ticket(
            session, ticket, old=old_status, new=new_status, close_reason=None, now=now
        )
    changes.append(("message", None, kind.value))
    events.insert(0, await _changed_event(session, ticket, changes, now))
    return message, events


async def ticket_messages(session: AsyncSession, ticket_id: int) -> list[TicketMessage]:
    rows = await session.scalars(
        select(TicketMessage).where(TicketMessage.ticket_id == ticket_id).order_by(TicketMessage.id)
    )
    return list(rows.all())


async def ticket_history(session: AsyncSession, ticket_id: int) -> list[TicketChange]:
    rows = await session.scalars(
        select(TicketChange).where(TicketChange.ticket_id == ticket_id).order_by(TicketChange.id)
    )
    return list(rows.all())
