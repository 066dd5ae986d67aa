"""The ticket router at work: loads agents and tickets, asks ``routing.router``,
and assigns through desk's change path.

``TicketAssigner`` decides nothing itself.  For each decision it reads the
agents as the router sees them (skills, weighted load of their unsolved
tickets, availability from an ``AvailabilitySource``) and writes the outcome:

* an ``Assignment`` becomes ``change_ticket(assignee_id=…)`` — version-checked,
  on the audit trail, SLA clocks kept — plus a ``routing`` audit line with the
  reason, and a ``TicketAssigned`` event for the agent after commit;
* a ``QueuedForTeam`` of a ticket without a team puts it in that team's queue
  (``team_id``, audited); otherwise the ticket simply stays unassigned.

When it routes: a ticket opened or handed back without an assignee
(``ticket_needs_agent``); the whole backlog — unassigned tickets, plus those of
agents offline past the grace when ``reassign_when_offline`` — when an agent
becomes available (``agent_became_available``), when a ticket is solved, closed
or taken from someone (room freed), and every ``sweep_interval`` seconds
(``rebalance``).  Bus handlers (``on_…``) only queue the work; one task per
process does it in order, so two decisions of this process never see the same
stale load.  Another process's assigner may race for a ticket: the version
check lets one win and the other leave it.

``last_assigned_at`` (round-robin among equals) is this process's memory since
it started.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from desk.background import OwnedTask
from desk.clock import Clock
from desk.errors import DeskError
from desk.events import DomainEvent, EventBus, Recipients, UnitOfWork
from desk.models import Ticket, TicketChange, TicketPriority, TicketStatus
from desk.ticket_changes import SlaKeeper, TicketChanged, TicketPatch, change_ticket
from desk.tickets import TicketOpened
from desk.users import agent_roster
from routing.router import (
    AgentSnapshot,
    Assignment,
    PhoneState,
    Presence,
    QueuedForTeam,
    RoutingRules,
    TicketToRoute,
    absent_agents,
    reassignments,
    route,
    route_backlog,
    why_unavailable,
)
from routing.ticket_automation import TicketAutomation

log = logging.getLogger(__name__)
DONE = (TicketStatus.SOLVED.value, TicketStatus.CLOSED.value)
# Unassigned tickets routed per pass, most urgent and oldest first.
BACKLOG_LIMIT = 500
_RANK = {priority.value: rank for rank, priority in enumerate(TicketPriority)}
# Phone states that say nothing of the agent being at work: web presence decides.
PHONE_ABSENT = (PhoneState.LOGGED_OUT, PhoneState.UNKNOWN)


# --- where agents are ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Availability:
    """One agent as the router needs to know: web presence, phone state, and since
    when they have been away from both (None: unknown, they keep their tickets)."""

    presence: Presence = Presence.OFFLINE
    phone: PhoneState = PhoneState.UNKNOWN
    offline_since: datetime | None = None


UNSEEN = Availability()


class AvailabilitySource(Protocol):
    def agent_availability(self) -> Mapping[int, Availability]:
        """By agent id; agents left out are offline since an unknown time."""
        ...


class Attendance:
    """An ``AvailabilitySource`` fed by the web layer: browsers signed in to the desk
    (several tabs count once) and phone states as the PBX reports them, by agent
    id.  Plain values; it sees this process's sockets only (``routing.attendance``
    merges those of every process when they share Redis)."""

    def __init__(self) -> None:
        self._sockets: dict[int, set[str]] = {}
        self._web_left: dict[int, datetime] = {}
        self._phones: dict[int, PhoneState] = {}
        self._phone_left: dict[int, datetime] = {}
        self._listeners: list[Callable[[], object]] = []

    def on_change(self, listener: Callable[[], object]) -> None:
        """``listener()`` after an agent came online, went offline or their phone's
        state changed (called synchronously: keep it short, no I/O)."""
        self._listeners.append(listener)

    def online(self) -> frozenset[int]:
        """The agents with at least one browser open on this process."""
        return frozenset(self._sockets)

    def phones(self) -> dict[int, PhoneState]:
        """The phone states this process heard of, by agent id."""
        return dict(self._phones)

    def connected(self, agent_id: int, sid: str) -> bool:
        """True when this is the agent's first browser: they came online."""
        sockets = self._sockets.setdefault(agent_id, set())
        came = not sockets
        sockets.add(sid)
        self._web_left.pop(agent_id, None)
        if came:
            self._changed()
        return came

    def disconnected(self, agent_id: int, sid: str, *, now: datetime) -> bool:
        """True when this was the agent's last browser: they went offline."""
        sockets = self._sockets.get(agent_id)
        if not sockets or sid not in sockets:
            return False
        sockets.discard(sid)
        if sockets:
            return False
        del self._sockets[agent_id]
        self._web_left[agent_id] = now
        self._changed()
        return True

    def phone_changed(self, agent_id: int, phone: PhoneState, *, now: datetime) -> bool:
        """True when the state is new (``PhoneState`` values are the CTI's statuses)."""
        old = self._phones.get(agent_id, PhoneState.UNKNOWN)
        self._phones[agent_id] = phone
        if phone in PHONE_ABSENT and old not in PHONE_ABSENT:
            self._phone_left[agent_id] = now
        elif phone not in PHONE_ABSENT:
            self._phone_left.pop(agent_id, None)
        if old != phone:
            self._changed()
        return old != phone

    def _changed(self) -> None:
        for listener in self._listeners:
            try:
                listener()
            except Exception:  # a listener's bug must not lose a browser's connect
                log.exception("an attendance listener failed")

    def agent_availability(self) -> dict[int, Availability]:
        ids = self._sockets.keys() | self._web_left.keys() | self._phones.keys()
        return {agent_id: self._of(agent_id) for agent_id in ids}

    def _of(self, agent_id: int) -> Availability:
        online = agent_id in self._sockets
        phone = self._phones.get(agent_id, PhoneState.UNKNOWN)
        away = [self._web_left.get(agent_id), self._phone_left.get(agent_id)]
        known = [moment for moment in away if moment is not None]
        offline = online or phone not in PHONE_ABSENT or not known
        return Availability(
            presence=Presence.ONLINE if online else Presence.OFFLINE,
            phone=phone,
            offline_since=None if offline else max(known),
        )


# --- the event an agent hears --------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TicketAssigned(DomainEvent):
    """The router gave a ticket to an agent (``taken_from``: the agent it was
    moved from, who has been offline too long)."""

    name: ClassVar[str] = "ticket_assigned"
    ticket_id: int
    agent_id: int
    subject: str
    priority: str
    reason: str
    taken_from: int | None = None

    @property
    def recipients(self) -> Recipients:
        return Recipients(agents=(self.agent_id,))

    def payload(self) -> dict[str, Any]:
        return {
            "occurred_at": self.occurred_at.isoformat(),
            "ticket_id": self.ticket_id,
            "subject": self.subject,
            "priority": self.priority,
            "reason": self.reason,
        }


# --- the service ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Route:
    ticket_id: int
    returned_by: int | None  # user id


@dataclass(frozen=True, slots=True)
class _Opened:
    ticket_id: int


@dataclass(frozen=True, slots=True)
class _Rebalance:
    pass


_Job = _Route | _Opened | _Rebalance


@dataclass(frozen=True, slots=True)
class _People:
    agents: list[AgentSnapshot]
    user_of: dict[int, int]  # agent id → user id
    agent_of: dict[int, int]  # user id → agent id

    def ticket(self, row: Ticket, *, returned_by: int | None = None) -> TicketToRoute:
        holder = row.assignee_id if row.assignee_id is not None else returned_by
        return TicketToRoute(
            ticket_id=row.id,
            category=row.category,
            priority=TicketPriority(row.priority),
            team_id=row.team_id,
            current_assignee=self.agent_of.get(holder) if holder is not None else None,
        )


class TicketAssigner:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        reads: async_sessionmaker[AsyncSession] | None = None,
        bus: EventBus,
        clock: Clock,
        rules: RoutingRules,
        availability: AvailabilitySource,
        sla: SlaKeeper | None = None,
        sweep_interval: float = 60.0,
        automation: TicketAutomation | None = None,
    ) -> None:
        if sweep_interval <= 0:
            raise ValueError("the assigner needs a positive sweep interval")
        self._sessions, self._reads = sessions, reads or sessions
        self._bus, self._clock, self._rules = bus, clock, rules
        self._availability, self._sla = availability, sla
        self._interval = sweep_interval
        self._automation = automation
        self._last_assigned: dict[int, datetime] = {}
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue()
        self._waiting: set[_Job] = set()
        self._task = OwnedTask("assigner", self._run)
        self.assigned = 0  # tickets this assigner has handed out

    # --- lifecycle and bus handlers (queue the work) ----------------------------

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def settled(self) -> None:
        """Wait until the queued work is done (tests, orderly shutdown)."""
        await self._jobs.join()

    async def on_ticket_opened(self, event: DomainEvent) -> None:
        if not isinstance(event, TicketOpened):
            return
        if self._automation is not None and self._automation.active:
            # Rules first: the priority and team they set decide the route.
            self._post(_Opened(event.ticket_id))
        elif event.assignee_agent_id is None:
            self._post(_Route(event.ticket_id, None))

    async def on_ticket_changed(self, event: DomainEvent) -> None:
        if not isinstance(event, TicketChanged):
            return
        changed = {name: (old, new) for name, old, new in event.changes}
        old_assignee, new_assignee = changed.get("assignee_id", (None, None))
        if old_assignee is not None:  # someone has room now
            if new_assignee is None:
                self._post(_Route(event.ticket_id, int(old_assignee)))
            self._post(_Rebalance())
        elif changed.get("status", (None, None))[1] in DONE:
            self._post(_Rebalance())
        elif changed.keys() & {"status", "team_id", "category", "priority"}:
            self._post(_Route(event.ticket_id, None))  # if unassigned: route afresh

    def on_agent_available(self, agent_id: int) -> None:
        """The agent came online, became ready, or may otherwise take tickets."""
        self._post(_Rebalance())

    def _post(self, job: _Job) -> None:
        if job not in self._waiting:
            self._waiting.add(job)
            self._jobs.put_nowait(job)

    async def _run(self) -> None:
        while True:
            try:
                job: _Job | None = await asyncio.wait_for(self._jobs.get(), self._interval)
            except TimeoutError:
                job = None
            try:
                if isinstance(job, _Route):
                    self._waiting.discard(job)
                    await self.ticket_needs_agent(job.ticket_id, returned_by=job.returned_by)
                elif isinstance(job, _Opened):
                    self._waiting.discard(job)
                    if self._automation is not None:
                        await self._automation.ticket_opened(job.ticket_id)
                    await self.ticket_needs_agent(job.ticket_id)
                else:
                    self._waiting.discard(_Rebalance())
                    await self.rebalance()
            except Exception:
                log.exception("routing failed (%r)", job)
            finally:
                if job is not None:
                    self._jobs.task_done()

    # --- the work (callable directly) ------------------------------------------

    async def ticket_needs_agent(
        self, ticket_id: int, *, returned_by: int | None = None
    ) -> Assignment | QueuedForTeam | None:
        """Route the ticket if it is unassigned and not solved: to an agent, or into
        its team's queue.  ``returned_by`` (a user id) handed it back and does not
        get it again.  None when the ticket needs nothing or changed meanwhile."""
        now = self._clock.now()
        async with self._reads() as session:
            row = await session.get(Ticket, ticket_id)
            if row is None or row.assignee_id is not None or row.status in DONE:
                return None
            people = await self._people(session)
            ticket = people.ticket(row, returned_by=returned_by)
            version, team_id = row.version, row.team_id
        decision = route(ticket, people.agents, self._rules, now=now)
        if isinstance(decision, Assignment):
            done = await self._assign(decision, people, version=version)
            return decision if done else None
        if decision.team_id is not None and team_id is None:
            done = await self._write(
                decision.ticket_id,
                TicketPatch(version=version, team_id=decision.team_id),
                f"waiting in team {decision.team_id}'s queue: {decision.reason.text}",
                now=now,
            )
            return decision if done else None
        return decision

    async def agent_became_available(self, agent_id: int) -> list[Assignment]:
        """Route the backlog now that ``agent_id`` may take tickets (nothing if they
        may not); the tickets may go to any agent who fits them best."""
        return await self.rebalance(for_agent=agent_id)

    async def rebalance(self, *, for_agent: int | None = None) -> list[Assignment]:
        """Route the unassigned tickets and those of agents offline past the grace
        (when configured), most urgent and oldest first; the assignments made."""
        now = self._clock.now()
        rules = self._rules
        async with self._reads() as session:
            waiting = list(await session.scalars(_unassigned().limit(BACKLOG_LIMIT)))
            if not waiting and not rules.reassign_when_offline:
                return []
            people = await self._people(session)
            if for_agent is not None:
                me = next((a for a in people.agents if a.agent_id == for_agent), None)
                if me is None or why_unavailable(me, rules) is not None:
                    return []
            absent = absent_agents(people.agents, rules, now=now)
            if absent:
                waiting += await self._held_by(session, [people.user_of[a] for a in absent])
            if not waiting:
                return []
            held: defaultdict[int, list[int]] = defaultdict(list)
            for row in waiting:
                if row.assignee_id is not None:
                    held[people.agent_of[row.assignee_id]].append(row.id)
            moving = set(reassignments(held, people.agents, rules, now=now))
            rows = sorted(
                (row for row in waiting if row.assignee_id is None or row.id in moving),
                key=lambda row: (-_RANK.get(row.priority, 0), row.created_at, row.id),
            )
            tickets = [people.ticket(row) for row in rows]
            versions = {row.id: row.version for row in rows}
        decisions, _ = route_backlog(tickets, people.agents, rules, now=now)
        made: list[Assignment] = []
        for decision, ticket in zip(decisions, tickets, strict=True):
            if isinstance(decision, Assignment) and await self._assign(
                decision,
                people,
                version=versions[decision.ticket_id],
                taken_from=ticket.current_assignee,
            ):
                made.append(decision)
        return made

    # --- reading ---------------------------------------------------------------

    async def _people(self, session: AsyncSession) -> _People:
        # Rows, not entities: this runs for every ticket routed (docs/benchmarks.md).
        roster = await agent_roster(session, active_only=True)
        counts: defaultdict[int, dict[str, int]] = defaultdict(dict)
        loads = await session.execute(
            select(Ticket.assignee_id, Ticket.priority, func.count())
            .where(Ticket.assignee_id.is_not(None), Ticket.status.not_in(DONE))
            .group_by(Ticket.assignee_id, Ticket.priority)
        )
        for user_id, priority, count in loads:
            if user_id is not None:
                counts[user_id][priority] = count
        where = self._availability.agent_availability()
        agents = []
        for row in roster:
            seen = where.get(row.agent_id, UNSEEN)
            agents.append(
                AgentSnapshot(
                    agent_id=row.agent_id,
                    team_id=row.team_id,
                    skills=row.skills,
                    presence=seen.presence,
                    phone=seen.phone,
                    open_load=self._rules.load_of(counts.get(row.user_id, {})),
                    last_assigned_at=self._last_assigned.get(row.agent_id),
                    offline_since=seen.offline_since,
                )
            )
        return _People(
            agents=agents,
            user_of={row.agent_id: row.user_id for row in roster},
            agent_of={row.user_id: row.agent_id for row in roster},
        )

    async def _held_by(self, session: AsyncSession, user_ids: Sequence[int]) -> list[Ticket]:
        rows = await session.scalars(
            select(Ticket).where(Ticket.assignee_id.in_(user_ids), Ticket.status.not_in(DONE))
        )
        return list(rows.all())

    # --- writing ---------------------------------------------------------------

    async def _assign(
        self,
        decision: Assignment,
        people: _People,
        *,
        version: int,
        taken_from: int | None = None,
    ) -> bool:
        agent_id = decision.agent_id
        reason = decision.reason.text
        note = f"assigned to agent {agent_id}" + (
            f" (from agent {taken_from}, offline)" if taken_from is not None else ""
        )

        def assigned(ticket: Ticket) -> DomainEvent:
            return TicketAssigned(
                occurred_at=decision.at,
                ticket_id=ticket.id,
                agent_id=agent_id,
                subject=ticket.subject,
                priority=ticket.priority,
                reason=reason,
                taken_from=taken_from,
            )

        def remember() -> None:
            self._last_assigned[agent_id] = decision.at
            self.assigned += 1

        return await self._write(
            decision.ticket_id,
            TicketPatch(version=version, assignee_id=people.user_of[agent_id]),
            f"{note}: {reason}",
            now=decision.at,
            event=assigned,
            committed=remember,
        )

    async def _write(
        self,
        ticket_id: int,
        patch: TicketPatch,
        note: str,
        *,
        now: datetime,
        event: Callable[[Ticket], DomainEvent] | None = None,
        committed: Callable[[], None] | None = None,
    ) -> bool:
        """Change the ticket through desk's change path with a ``routing`` audit
        line; False when it changed since it was read (someone else acted)."""
        try:
            async with UnitOfWork(sessions=self._sessions, bus=self._bus) as uow:
                ticket, events = await change_ticket(
                    uow.session, ticket_id, patch, actor=None, now=now, sla=self._sla
                )
                uow.session.add(
                    TicketChange(
                        ticket_id=ticket_id,
                        at=now,
                        actor_id=None,
                        field="routing",
                        old=None,
                        new=note,
                    )
                )
                for each in events:
                    uow.record(each)
                if event is not None:
                    uow.record(event(ticket))
                if committed is not None:
                    uow.when_committed(committed)
                await uow.commit()
        except (DeskError, StaleDataError) as error:
            log.info("ticket %s not routed, it changed meanwhile: %s", ticket_id, error)
            return False
        return True


def _unassigned() -> Select[Ticket]:
    rank = case(_RANK, value=Ticket.priority, else_=0)
    return (
        select(Ticket)
        .where(Ticket.assignee_id.is_(None), Ticket.status.not_in(DONE))
        .order_by(rank.desc(), Ticket.created_at, Ticket.id)
    )
