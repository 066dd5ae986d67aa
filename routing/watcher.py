"""The SLA watcher: fires warnings, breaches and escalations when they fall due.

One task per process.  It sleeps until the earliest unfired timer is due, or
until ``poke()`` (a commit changed timers), and wakes at least every
``interval`` seconds so a jumped system clock is noticed.  Then it claims the
due timers in batches, each batch one transaction:

* PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED`` over the timers joined to
  their clock rows, then ``fired_at`` is set in the same transaction.  A second
  process skips what the first holds, and a keeper changing the same clock
  waits for the clock row, so a timer fires exactly once and never after its
  clock stopped.
* SQLite: ``UPDATE … SET fired_at = … WHERE id IN (…) AND fired_at IS NULL
  RETURNING id``; SQLite has one writer at a time, so the claim is atomic.

A breach is stored once (``record_breach``) on the clock row; each step is
written on the ticket's audit trail and published after commit as
``SlaWarned``, ``SlaBreached`` or ``TicketEscalated``.  Escalations that ask for
e-mail write it into the outbox (``desk.outbox``) in the same transaction, when
e-mail is on (``mail``), and poke its sender after the commit.  The message's
key names the ticket, clock, cycle and level, so it is written once however
often the escalation is fired.
Nothing is kept in memory between rounds: after a restart the watcher picks up
every timer that fell due meanwhile, in order.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypedDict

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from desk.background import PokedLoop
from desk.clock import Clock
from desk.events import DomainEvent, EventBus, UnitOfWork
from desk.models import Agent, Role, SlaTimer, Team, Ticket, TicketClock, User
from desk.outbox import Delivery, enqueue_mail
from routing.escalation import EscalationLevel, TimerKind, Who
from routing.sla import ClockKind, record_breach, warn_at
from routing.sla_config import SlaSetup
from routing.sla_keeper import (
    AUDIT_PREFIX,
    SlaBreached,
    SlaWarned,
    TicketEscalated,
    breach_text,
    clock_label,
    sla_audit,
    state_from_json,
    state_to_json,
)

log = logging.getLogger(__name__)
ONE_MICROSECOND = timedelta(microseconds=1)
# When something is due but held by another process, look again this soon.
RETRY_SECONDS = 0.5


class _Common(TypedDict):
    occurred_at: datetime
    ticket_id: int
    clock: str
    policy: str
    due_at: datetime | None
    assignee_agent_id: int | None
    team_id: int | None


@dataclass(frozen=True)
class _Person:
    """Whom an escalation level reaches on this ticket."""

    name: str
    user_id: int | None = None
    agent_id: int | None = None
    team_id: int | None = None
    emails: tuple[str, ...] = ()


class SlaWatcher:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        reads: async_sessionmaker[AsyncSession] | None = None,
        bus: EventBus,
        clock: Clock,
        setup: SlaSetup,
        interval: float = 60.0,
        batch: int = 100,
        mail: Delivery | None = None,
    ) -> None:
        if interval <= 0 or batch < 1:
            raise ValueError("the watcher needs a positive interval and batch size")
        self._sessions, self._reads = sessions, reads or sessions
        self._bus = bus
        self._clock = clock
        self._setup = setup
        self._interval = interval
        self._batch = batch
        self._mail = mail  # None: e-mail is off
        # One round at a time in this process: a fire_due() that arrives while the loop
        # (poked by a commit) holds a batch waits until that batch is committed and
        # announced, instead of finding the timers locked and returning early.
        self._firing = asyncio.Lock()
        self._loop = PokedLoop("sla-watcher", self._round, retry=interval)
        self.fired = 0  # timers claimed by this watcher

    # --- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    @property
    def running(self) -> bool:
        return self._loop.running

    @property
    def rounds(self) -> int:
        return self._loop.rounds

    def use_setup(self, setup: SlaSetup) -> None:
        """Escalate by a new set-up from the next timer on (an admin changed it)."""
        self._setup = setup

    def poke(self) -> None:
        """Timers changed (a commit): look again now instead of at the old wake time."""
        self._loop.poke()

    async def _round(self) -> float:
        # Look before claiming: a claim is a write, and pokes come with every
        # ticket change, while timers fall due rarely.
        next_due = await self.next_due()
        was_due = next_due is not None and next_due <= self._clock.now()
        fired = 0
        if was_due:
            fired = await self.fire_due()
            next_due = await self.next_due()
        # A timer due when this round looked but claimed by nobody here is
        # held by another process: pause.  One that fell due since (or that
        # the loop woke a hair early for) is fired at once.
        return self._delay_until(next_due, held=was_due and fired == 0)

    def _delay_until(self, next_due: datetime | None, *, held: bool) -> float:
        if next_due is None:
            return self._interval
        seconds = (next_due - self._clock.now()).total_seconds()
        if seconds <= 0:
            return min(RETRY_SECONDS, self._interval) if held else 0.0
        return min(seconds, self._interval)

    async def next_due(self) -> datetime | None:
        async with self._reads() as session:
            return await session.scalar(
                select(func.min(SlaTimer.due_at)).where(SlaTimer.fired_at.is_(None))
            )

    # --- firing -------------------------------------------------------------------

    async def fire_due(self) -> int:
        """Fire every timer due by now, batch by batch; how many this watcher claimed."""
        async with self._firing:
            total = 0
            while True:
                claimed = await self._fire_batch(self._clock.now().astimezone(UTC))
                total += claimed
                if claimed == 0:  # nothing due, or all of it held by another process
                    return total

    async def _fire_batch(self, now: datetime) -> int:
        async with UnitOfWork(sessions=self._sessions, bus=self._bus) as uow:
            ids = await self._claim(uow.session, now)
            if not ids:
                return 0
            events = await self._fire(uow.session, ids, now)
            for event in events:
                uow.record(event)
            if self._mail is not None and any(
                isinstance(event, TicketEscalated) and event.email_to for event in events
            ):  # _fire_one put their mail in the outbox: its sender may look after commit
                uow.when_committed(self._mail.poke)
            # Once claimed, a batch is committed and announced even if the watcher
            # is being stopped: a stop must not swallow events of fired timers.
            finish = asyncio.ensure_future(self._announce(uow, len(ids)))
            try:
                await asyncio.shield(finish)
            except asyncio.CancelledError:
                await finish
                raise
        return len(ids)

    async def _announce(self, uow: UnitOfWork, fired: int) -> None:
        await uow.commit()  # publishes the events after the commit
        self.fired += fired

    async def _claim(self, session: AsyncSession, now: datetime) -> list[int]:
        due = (
            select(SlaTimer.id)
            .where(SlaTimer.fired_at.is_(None), SlaTimer.due_at <= now)
            .order_by(SlaTimer.due_at, SlaTimer.level, SlaTimer.id)
            .limit(self._batch)
        )
        if session.get_bind().dialect.name == "postgresql":
            # Lock the timers and their clock rows; skip whatever another process
            # (or a keeper changing the clock) holds.
            locked = due.join(
                TicketClock,
                and_(
                    TicketClock.ticket_id == SlaTimer.ticket_id,
                    TicketClock.clock == SlaTimer.clock,
                ),
            ).with_for_update(skip_locked=True)
            ids = list((await session.scalars(locked)).all())
            if ids:
                await session.execute(
                    update(SlaTimer)
                    .where(SlaTimer.id.in_(ids))
                    .values(fired_at=now)
                    .execution_options(synchronize_session=False)
                )
            return ids
        # By id only: the subquery already reads unfired rows under SQLite's write
        # lock (BEGIN IMMEDIATE), and a second "fired_at IS NULL" here made SQLite
        # walk every unfired timer (millions) instead of looking up the ids.
        claim = (
            update(SlaTimer)
            .where(SlaTimer.id.in_(due))
            .values(fired_at=now)
            .returning(SlaTimer.id)
            .execution_options(synchronize_session=False)
        )
        return list((await session.execute(claim)).scalars().all())

    async def _fire(
        self, session: AsyncSession, ids: list[int], now: datetime
    ) -> list[DomainEvent]:
        timers = list(
            await session.scalars(
                select(SlaTimer)
                .where(SlaTimer.id.in_(ids))
                .order_by(SlaTimer.due_at, SlaTimer.level, SlaTimer.id)
            )
        )
        ticket_ids = sorted({timer.ticket_id for timer in timers})
        tickets = {
            ticket.id: ticket
            for ticket in await session.scalars(select(Ticket).where(Ticket.id.in_(ticket_ids)))
        }
        rows = {
            (row.ticket_id, row.clock): row
            for row in await session.scalars(
                select(TicketClock).where(TicketClock.ticket_id.in_(ticket_ids))
            )
        }
        assignees = {t.assignee_id for t in tickets.values() if t.assignee_id is not None}
        agents: dict[int | None, int] = {
            user_id: agent_id
            for user_id, agent_id in await session.execute(
                select(Agent.user_id, Agent.id).where(Agent.user_id.in_(assignees))
            )
        }
        with session.no_autoflush:
            events = await self._fire_all(session, timers, rows, tickets, agents, now)
        return events

    async def _fire_all(
        self,
        session: AsyncSession,
        timers: list[SlaTimer],
        rows: dict[tuple[int, str], TicketClock],
        tickets: dict[int, Ticket],
        agents: dict[int | None, int],
        now: datetime,
    ) -> list[DomainEvent]:
        people: dict[tuple[int, Who], _Person] = {}
        events: list[DomainEvent] = []
        for timer in timers:
            row = rows.get((timer.ticket_id, timer.clock))
            ticket = tickets.get(timer.ticket_id)
            if row is None or ticket is None or row.cycle != timer.cycle:
                log.warning("SLA timer %s has no current clock; dropped", timer.id)
                continue
            agent_id = agents.get(ticket.assignee_id)
            event = await self._fire_one(session, timer, row, ticket, agent_id, people, now)
            if event is not None:
                events.append(event)
        return events

    async def _fire_one(
        self,
        session: AsyncSession,
        timer: SlaTimer,
        row: TicketClock,
        ticket: Ticket,
        agent_id: int | None,
        people: dict[tuple[int, Who], _Person],
        now: datetime,
    ) -> DomainEvent | None:
        policy = self._setup.policy_named(row.policy)
        kind = ClockKind(timer.clock)
        target = policy.target_for(kind) if policy is not None else None
        if policy is None or target is None:
            log.warning(
                "SLA timer %s: policy %r no longer has a %s target", timer.id, row.policy, kind
            )
            return None
        state = state_from_json(row.state)
        field_name = f"{AUDIT_PREFIX}{kind}"
        common: _Common = {
            "occurred_at": now,
            "ticket_id": ticket.id,
            "clock": kind.value,
            "policy": policy.name,
            "due_at": row.due_at,
            "assignee_agent_id": agent_id,
            "team_id": ticket.team_id,
        }
        if timer.kind == TimerKind.WARNING:
            warned = warn_at(state, target, calendar=policy.calendar) or timer.due_at
            sla_audit(
                session,
                ticket.id,
                field_name,
                f"{clock_label(kind)} warning (due {_iso(row.due_at)})",
                now=now,
            )
            return SlaWarned(warn_at=warned, **common)
        if timer.kind == TimerKind.BREACH:
            if state.breached_at is not None:
                return None
            # Due exactly now counts: the clock is still running at its due time.
            moment = max(now, timer.due_at + ONE_MICROSECOND)
            after = record_breach(state, moment, target=target, calendar=policy.calendar)
            if after.breached_at is None:
                return None
            row.state = state_to_json(after)
            row.breached_at = after.breached_at
            sla_audit(session, ticket.id, field_name, breach_text(kind, after.breached_at), now=now)
            return SlaBreached(breached_at=after.breached_at, **common)
        level = self._setup.escalation.level(timer.level)
        if level is None:
            log.warning(
                "SLA timer %s: escalation level %s is not configured", timer.id, timer.level
            )
            return None
        person = people.get((ticket.id, level.who))
        if person is None:
            person = people[ticket.id, level.who] = await self._reached(session, ticket, level)
        row.escalated_level = max(row.escalated_level, level.level)
        sla_audit(
            session,
            ticket.id,
            field_name,
            f"{clock_label(kind)} escalated to level {level.level}: {person.name}",
            now=now,
        )
        escalated = TicketEscalated(
            level=level.level,
            who=level.who.value,
            to_user_id=person.user_id,
            to_agent_id=person.agent_id,
            to_team_id=person.team_id,
            to_name=person.name,
            email_to=person.emails if level.email else (),
            **common,
        )
        if self._mail is not None and escalated.email_to:
            subject, body = escalation_mail(escalated)
            await enqueue_mail(
                session,
                dedupe_key=f"escalation:{ticket.id}:{kind}:{timer.cycle}:{level.level}",
                to=escalated.email_to,
                subject=subject,
                body=body,
                now=now,
            )
        return escalated

    async def _reached(
        self, session: AsyncSession, ticket: Ticket, level: EscalationLevel
    ) -> _Person:
        if level.who is Who.SUPERVISORS:
            emails = await session.scalars(
                select(User.email).where(
                    User.role == Role.SUPERVISOR.value,
                    User.active.is_(True),
                    User.email.is_not(None),
                )
            )
            return _Person("supervisors", emails=tuple(e for e in emails if e))
        if level.who is Who.ASSIGNEE:
            if ticket.assignee_id is None:
                name = f"team {ticket.team_id} (unassigned)" if ticket.team_id else "unassigned"
                return _Person(name, team_id=ticket.team_id)
            return await _user(session, ticket.assignee_id, "assignee")
        lead = None
        if ticket.team_id is not None:
            lead = await session.scalar(select(Team.lead_user_id).where(Team.id == ticket.team_id))
        if lead is None:
            return _Person("supervisors (no team lead)")
        return await _user(session, lead, "team lead")


def escalation_mail(event: TicketEscalated) -> tuple[str, str]:
    """Subject and body of an escalation's e-mail."""
    subject = (
        f"Ticket #{event.ticket_id} escalated (level {event.level}): {clock_label(event.clock)}"
    )
    body = (
        f"Ticket #{event.ticket_id}: {clock_label(event.clock)} under policy "
        f"{event.policy!r}, due {_iso(event.due_at)}, escalated to {event.to_name}.\n"
    )
    return subject, body


async def _user(session: AsyncSession, user_id: int, role: str) -> _Person:
    found = (
        await session.execute(
            select(User.display_name, User.email, Agent.id)
            .outerjoin(Agent, Agent.user_id == User.id)
            .where(User.id == user_id)
        )
    ).first()
    if found is None:
        return _Person(f"{role} (deleted)")
    name, email, agent_id = found
    return _Person(
        f"{role} {name}", user_id=user_id, agent_id=agent_id, emails=(email,) if email else ()
    )


def _iso(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).isoformat()
