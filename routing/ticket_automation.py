"""Applies the automation rules to each new ticket, before the router sees it.

The decision is ``routing.automation.apply_rules`` (pure); this module reads the
ticket, writes the actions through desk's change path (version check, audit
trail, SLA clocks: a new priority moves the due times) and sends notifications,
all in one transaction whose events go out after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from desk.clock import Clock
from desk.errors import StaleWrite
from desk.events import DomainEvent, EventBus, Recipients, UnitOfWork
from desk.models import Customer, Ticket, TicketChange
from desk.ticket_changes import SlaKeeper, TicketPatch, change_ticket
from desk.tickets import agent_of_user
from routing.automation import (
    AddTag,
    AutomationRule,
    Notify,
    NotifyTarget,
    SetPriority,
    SetTeam,
    TicketValues,
    apply_rules,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TicketFlagged(DomainEvent):
    """An automation rule asks people to look at a ticket."""

    name: ClassVar[str] = "ticket_flagged"
    ticket_id: int
    subject: str
    priority: str
    rule: str
    target: str
    agent_id: int | None = None
    team_id: int | None = None

    @property
    def recipients(self) -> Recipients:
        if self.target == NotifyTarget.SUPERVISORS:
            return Recipients(supervisors=True)
        if self.target == NotifyTarget.TEAM:
            return Recipients(teams=(self.team_id,) if self.team_id else ())
        return Recipients(agents=(self.agent_id,) if self.agent_id else ())

    def payload(self) -> dict[str, Any]:
        return {
            "occurred_at": self.occurred_at.isoformat(),
            "ticket_id": self.ticket_id,
            "subject": self.subject,
            "priority": self.priority,
            "rule": self.rule,
        }


def ticket_values(ticket: Ticket, tier: str | None) -> TicketValues:
    return TicketValues(
        priority=ticket.priority,
        category=ticket.category,
        channel=ticket.channel,
        tier=tier,
        subject=ticket.subject,
        tags=frozenset(ticket.tags or ()),
    )


class TicketAutomation:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        clock: Clock,
        rules: Sequence[AutomationRule],
        sla: SlaKeeper | None = None,
    ) -> None:
        self._sessions, self._bus, self._clock = sessions, bus, clock
        self._rules = tuple(rules)
        self._sla = sla
        self.applied = 0  # tickets at least one rule changed or flagged

    @property
    def active(self) -> bool:
        return bool(self._rules)

    async def ticket_opened(self, ticket_id: int) -> list[str]:
        """Apply the rules to a new ticket; the names of the rules that matched."""
        if not self._rules:
            return []
        for _attempt in range(3):
            try:
                return await self._apply(ticket_id)
            except StaleWrite:
                continue  # an agent changed it meanwhile: look again at the new version
        log.warning("automation gave up on ticket %s: it keeps changing", ticket_id)
        return []

    async def _apply(self, ticket_id: int) -> list[str]:
        now = self._clock.now()
        async with UnitOfWork(sessions=self._sessions, bus=self._bus) as uow:
            session = uow.session
            ticket = await session.get(Ticket, ticket_id)
            if ticket is None:
                return []
            customer = (
                await session.get(Customer, ticket.customer_id) if ticket.customer_id else None
            )
            actions = apply_rules(
                ticket_values(ticket, customer.tier if customer else None), self._rules
            )
            if not actions:
                return []
            fields: dict[str, Any] = {}
            tags = set(ticket.tags or ())
            for action in actions:
                if isinstance(action, SetPriority):
                    fields["priority"] = action.priority
                elif isinstance(action, SetTeam):
                    fields["team_id"] = action.team_id
                elif isinstance(action, AddTag):
                    tags.add(action.tag)
            if tags != set(ticket.tags or ()):
                fields["tags"] = sorted(tags)
            rules = list(dict.fromkeys(action.rule for action in actions))
            if fields:
                patch = TicketPatch(version=ticket.version, **fields)
                ticket, events = await change_ticket(
                    session, ticket_id, patch, actor=None, now=now, sla=self._sla
                )
                for event in events:
                    uow.record(event)
            session.add(
                TicketChange(
                    ticket_id=ticket_id,
                    at=now,
                    actor_id=None,
                    field="automation",
                    old=None,
                    new=", ".join(rules)[:1000],
                )
            )
            agent = await agent_of_user(session, ticket.assignee_id)
            for action in actions:
                if isinstance(action, Notify):
                    uow.record(
                        TicketFlagged(
                            occurred_at=now,
                            ticket_id=ticket.id,
                            subject=ticket.subject,
                            priority=ticket.priority,
                            rule=action.rule,
                            target=action.target.value,
                            agent_id=agent.id if agent else None,
                            team_id=ticket.team_id,
                        )
                    )
            await uow.commit()
        self.applied += 1
        return rules
