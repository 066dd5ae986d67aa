"""Keeps each ticket's SLA clocks and timers in step with the ticket, in the
caller's transaction (desk's ``SlaKeeper``).

On every change of a ticket the keeper

1. chooses the policy (customer tier, priority and category; a ticket no policy
   matches keeps the one it had, if it still exists);
2. records any breach that has already happened (the watcher may be behind);
3. moves the clocks (``routing.sla``: status change, customer message, public
   reply) and writes each transition on the audit trail as a ``TicketChange``
   with field ``sla:<clock>`` — "resolution paused", "resolution resumed after
   26h business time";
4. stores the clock rows with their due and warning times, and reschedules the
   clock's timers (``routing.escalation.timer_schedule``): unfired timers that
   no longer apply are deleted, fired ones are never scheduled again in the
   same cycle of the clock.

On PostgreSQL the clock rows are locked (``FOR UPDATE``) first, so a watcher
firing the same clock either finished before or waits to see the result; on
SQLite the caller's earlier write already holds the database's one write lock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from desk.events import DomainEvent, Recipients
from desk.models import (
    Agent,
    Customer,
    MessageKind,
    SlaTimer,
    Ticket,
    TicketChange,
    TicketClock,
    TicketStatus,
    Tier,
)
from routing.calendar import BusinessCalendar
from routing.escalation import TimerKind, timer_schedule
from routing.sla import (
    AuditNote,
    ClockKind,
    ClockPhase,
    ClockState,
    SlaPolicy,
    SlaTarget,
    Span,
    clocks_after_agent_reply,
    clocks_after_customer_message,
    clocks_after_status_change,
    due_at,
    record_breach,
    warn_at,
)
from routing.sla_config import SlaSetup

log = logging.getLogger(__name__)
AUDIT_PREFIX = "sla:"
POLICY_FIELD = "sla:policy"


# --- events -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SlaEvent(DomainEvent):
    ticket_id: int
    clock: str
    policy: str
    due_at: datetime | None
    assignee_agent_id: int | None
    team_id: int | None

    def _owners(self, *, supervisors: bool) -> Recipients:
        """The assignee's room, or the team's while nobody is assigned."""
        if self.assignee_agent_id is not None:
            return Recipients(agents=(self.assignee_agent_id,), supervisors=supervisors)
        teams = (self.team_id,) if self.team_id is not None else ()
        return Recipients(teams=teams, supervisors=supervisors)

    def payload(self) -> dict[str, Any]:
        return {
            "occurred_at": self.occurred_at.isoformat(),
            "ticket_id": self.ticket_id,
            "clock": self.clock,
            "policy": self.policy,
            "due_at": _iso(self.due_at),
        }


@dataclass(frozen=True, kw_only=True)
class SlaWarned(SlaEvent):
    name: ClassVar[str] = "sla_warned"
    warn_at: datetime

    @property
    def recipients(self) -> Recipients:
        return self._owners(supervisors=False)

    def payload(self) -> dict[str, Any]:
        return super().payload() | {"warn_at": _iso(self.warn_at)}


@dataclass(frozen=True, kw_only=True)
class SlaBreached(SlaEvent):
    name: ClassVar[str] = "sla_breached"
    breached_at: datetime

    @property
    def recipients(self) -> Recipients:
        return self._owners(supervisors=True)

    def payload(self) -> dict[str, Any]:
        return super().payload() | {"breached_at": _iso(self.breached_at)}


@dataclass(frozen=True, kw_only=True)
class TicketEscalated(SlaEvent):
    """One escalation step: to the person (their agent room) and the supervisors."""

    name: ClassVar[str] = "ticket_escalated"
    level: int
    who: str
    to_user_id: int | None
    to_agent_id: int | None
    to_team_id: int | None
    to_name: str
    # Addresses to mail when the level asks for e-mail; never sent to browsers.
    email_to: tuple[str, ...] = field(default=(), repr=False)

    @property
    def recipients(self) -> Recipients:
        return Recipients(
            agents=(self.to_agent_id,) if self.to_agent_id is not None else (),
            teams=(self.to_team_id,) if self.to_team_id is not None else (),
            supervisors=True,
        )

    def payload(self) -> dict[str, Any]:
        return super().payload() | {
            "level": self.level,
            "who": self.who,
            "to_user_id": self.to_user_id,
            "to_name": self.to_name,
        }


# --- stored clock state ------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _moment(text: object) -> datetime | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise ValueError(f"a stored clock time must be text, got {text!r}")
    return datetime.fromisoformat(text).astimezone(UTC)


def _spans_to_json(spans: Iterable[Span]) -> list[list[Any]]:
    return [[_iso(s.start), _iso(s.end), s.business // timedelta(microseconds=1)] for s in spans]


def _spans_from_json(raw: object) -> tuple[Span, ...]:
    if not isinstance(raw, list):
        return ()
    spans = []
    for start, end, micros in raw:
        begin, finish = _moment(start), _moment(end)
        assert begin is not None and finish is not None
        spans.append(Span(begin, finish, timedelta(microseconds=int(micros))))
    return tuple(spans)


def state_to_json(state: ClockState) -> dict[str, Any]:
    """Business time of closed spans is kept as computed then (exact microseconds)."""
    return {
        "running_since": _iso(state.running_since),
        "paused_since": _iso(state.paused_since),
        "stopped_at": _iso(state.stopped_at),
        "breached_at": _iso(state.breached_at),
        "runs": _spans_to_json(state.runs),
        "pauses": _spans_to_json(state.pauses),
    }


def state_from_json(raw: Mapping[str, Any]) -> ClockState:
    return ClockState(
        running_since=_moment(raw.get("running_since")),
        paused_since=_moment(raw.get("paused_since")),
        stopped_at=_moment(raw.get("stopped_at")),
        breached_at=_moment(raw.get("breached_at")),
        runs=_spans_from_json(raw.get("runs")),
        pauses=_spans_from_json(raw.get("pauses")),
    )


def describe_duration(amount: timedelta) -> str:
    """``26h``, ``16h30m``, ``45m``, ``1h0m20s``; whole seconds."""
    seconds = int(amount.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}h" if hours else ""
    if minutes or (hours and secs):
        text += f"{minutes}m"
    if secs:
        text += f"{secs}s"
    return text or "0m"


def clock_label(clock: ClockKind | str) -> str:
    return str(clock).replace("_", " ")


def note_text(note: AuditNote) -> str:
    if note.paused_business is None:
        return note.text
    paused = describe_duration(note.paused_business)
    if note.event == "resumed":
        return f"{note.text} after {paused} business time"
    return f"{note.text} (paused {paused} business time)"


def breach_text(clock: ClockKind | str, breached: datetime) -> str:
    return f"{clock_label(clock)} breached (due {_iso(breached)})"


def sla_audit(
    session: AsyncSession,
    ticket_id: int,
    field_name: str,
    text: str,
    *,
    now: datetime,
    old: str | None = None,
) -> None:
    session.add(
        TicketChange(
            ticket_id=ticket_id, at=now, actor_id=None, field=field_name, old=old, new=text
        )
    )


# --- queries ----------------------------------------------------------------------


async def ticket_clocks(session: AsyncSession, ticket_id: int) -> list[TicketClock]:
    rows = await session.scalars(
        select(TicketClock).where(TicketClock.ticket_id == ticket_id).order_by(TicketClock.id)
    )
    return list(rows.all())


async def ticket_timers(session: AsyncSession, ticket_id: int) -> list[SlaTimer]:
    rows = await session.scalars(
        select(SlaTimer)
        .where(SlaTimer.ticket_id == ticket_id)
        .order_by(SlaTimer.due_at, SlaTimer.level, SlaTimer.id)
    )
    return list(rows.all())


async def assignee_agent_id(session: AsyncSession, user_id: int | None) -> int | None:
    if user_id is None:
        return None
    return await session.scalar(select(Agent.id).where(Agent.user_id == user_id))


def _due(state: ClockState, target: SlaTarget, calendar: BusinessCalendar) -> datetime | None:
    return due_at(state, target, calendar=calendar) if state.phase is ClockPhase.RUNNING else None


def _warn(state: ClockState, target: SlaTarget, calendar: BusinessCalendar) -> datetime | None:
    if state.phase is not ClockPhase.RUNNING:
        return None
    return warn_at(state, target, calendar=calendar)


# --- the keeper --------------------------------------------------------------------


@dataclass
class _Clock:
    """One clock while a change is worked out."""

    kind: ClockKind
    row: TicketClock
    state: ClockState
    target: SlaTarget


class SlaClockKeeper:
    """desk's ``SlaKeeper``: clocks, audit entries and timers of one ticket change."""

    def __init__(self, setup: SlaSetup) -> None:
        self.setup = setup

    async def ticket_changed(
        self,
        session: AsyncSession,
        ticket: Ticket,
        *,
        old_status: TicketStatus | None,
        message: MessageKind | None,
        now: datetime,
    ) -> list[DomainEvent]:
        now = now.astimezone(UTC)
        query = select(TicketClock).where(TicketClock.ticket_id == ticket.id)
        rows = {
            ClockKind(row.clock): row
            for row in await session.scalars(query.order_by(TicketClock.id).with_for_update())
        }
        policy = await self._policy_for(session, ticket, rows)
        if policy is None:
            _park(rows.values(), now)
            await self._reschedule(session, ticket.id, [], now)
            return []
        created = not rows
        previous = {row.policy for row in rows.values()}
        if previous and previous != {policy.name}:
            old = ", ".join(sorted(previous))
            sla_audit(session, ticket.id, POLICY_FIELD, policy.name, now=now, old=old)
        # Clocks the policy has no target for keep their state but have no due times.
        _park((row for kind, row in rows.items() if policy.target_for(kind) is None), now)
        for existing in rows.values():
            existing.policy = policy.name
        clocks: dict[ClockKind, _Clock] = {}
        for target in policy.targets:
            row = rows.get(target.clock)
            if row is None:
                row = TicketClock(
                    ticket_id=ticket.id,
                    clock=target.clock.value,
                    policy=policy.name,
                    cycle=0,
                    state={},
                    escalated_level=0,
                    updated_at=now,
                )
                session.add(row)
            clocks[target.clock] = _Clock(target.clock, row, state_from_json(row.state), target)
        now = _not_before_last_change(now, clocks.values(), ticket_id=ticket.id)

        calendar = policy.calendar
        breaches = self._record_breaches(session, clocks.values(), now, calendar)
        states = {kind: clock.state for kind, clock in clocks.items()}
        notes: list[AuditNote] = []
        if created or old_status is not None:
            change = clocks_after_status_change(
                states,
                old_status=None if created else old_status,
                new_status=TicketStatus(ticket.status),
                now=now,
                calendar=calendar,
            )
            states = dict(change.clocks)
            notes += change.notes
        if message is MessageKind.CUSTOMER_MESSAGE:
            change = clocks_after_customer_message(states, now=now)
            states = dict(change.clocks)
            notes += change.notes
        elif message is MessageKind.PUBLIC_REPLY:
            change = clocks_after_agent_reply(states, now=now, calendar=calendar)
            states = dict(change.clocks)
            notes += change.notes
        for kind, clock in clocks.items():
            clock.state = states[kind]
        for note in notes:
            if note.event == "started":
                clocks[note.clock].row.cycle += 1  # a fresh run: its timers may fire again
                clocks[note.clock].row.escalated_level = 0
            sla_audit(session, ticket.id, f"{AUDIT_PREFIX}{note.clock}", note_text(note), now=now)
        breaches += self._record_breaches(session, clocks.values(), now, calendar)

        for clock in clocks.values():
            clock.row.state = state_to_json(clock.state)
            clock.row.due_at = _due(clock.state, clock.target, calendar)
            clock.row.warn_at = _warn(clock.state, clock.target, calendar)
            clock.row.breached_at = clock.state.breached_at
            clock.row.updated_at = now
        await session.flush()
        events: list[DomainEvent] = []
        if breaches:
            agent_id = await assignee_agent_id(session, ticket.assignee_id)
            for clock, breached, cycle in breaches:
                await _mark_breach_fired(session, clock, breached, cycle, now)
                events.append(
                    SlaBreached(
                        occurred_at=now,
                        ticket_id=ticket.id,
                        clock=clock.kind.value,
                        policy=policy.name,
                        due_at=breached,
                        breached_at=breached,
                        assignee_agent_id=agent_id,
                        team_id=ticket.team_id,
                    )
                )
        await self._reschedule(session, ticket.id, list(clocks.values()), now, calendar)
        return events

    async def _policy_for(
        self, session: AsyncSession, ticket: Ticket, rows: Mapping[ClockKind, TicketClock]
    ) -> SlaPolicy | None:
        tier = None
        if ticket.customer_id is not None:
            tier = await session.scalar(
                select(Customer.tier).where(Customer.id == ticket.customer_id)
            )
        policy = self.setup.choose(
            tier=tier or Tier.STANDARD.value, priority=ticket.priority, category=ticket.category
        )
        if policy is None and rows:
            # Nothing matches any more: the ticket keeps the policy it had.
            policy = self.setup.policy_named(next(iter(rows.values())).policy)
        return policy

    def _record_breaches(
        self,
        session: AsyncSession,
        clocks: Iterable[_Clock],
        now: datetime,
        calendar: BusinessCalendar,
    ) -> list[tuple[_Clock, datetime, int]]:
        """Breaches that have happened by ``now`` and are not stored yet (the
        watcher is behind, or a clock stopped after its due time)."""
        found = []
        for clock in clocks:
            if clock.state.breached_at is not None or clock.state.phase is ClockPhase.IDLE:
                continue
            after = record_breach(clock.state, now, target=clock.target, calendar=calendar)
            if after.breached_at is not None:
                clock.state = after
                found.append((clock, after.breached_at, clock.row.cycle))
                sla_audit(
                    session,
                    clock.row.ticket_id,
                    f"{AUDIT_PREFIX}{clock.kind}",
                    breach_text(clock.kind, after.breached_at),
                    now=now,
                )
        return found

    async def _reschedule(
        self,
        session: AsyncSession,
        ticket_id: int,
        clocks: list[_Clock],
        now: datetime,
        calendar: BusinessCalendar | None = None,
    ) -> None:
        """Make the unfired timers exactly those the clocks still need."""
        timers = list(
            await session.scalars(select(SlaTimer).where(SlaTimer.ticket_id == ticket_id))
        )
        wanted: set[tuple[str, int, str, int, datetime]] = set()
        for clock in clocks:
            assert calendar is not None
            fired = {
                (timer.kind, timer.level)
                for timer in timers
                if timer.clock == clock.kind.value
                and timer.cycle == clock.row.cycle
                and timer.fired_at is not None
            }
            for planned in timer_schedule(
                clock.state, clock.target, self.setup.escalation, calendar=calendar
            ):
                if (planned.kind.value, planned.level) not in fired:
                    wanted.add(
                        (
                            clock.kind.value,
                            clock.row.cycle,
                            planned.kind.value,
                            planned.level,
                            planned.due_at,
                        )
                    )
        for timer in timers:
            if timer.fired_at is not None:
                continue
            key = (timer.clock, timer.cycle, timer.kind, timer.level, timer.due_at)
            if key in wanted:
                wanted.discard(key)
            else:
                await session.delete(timer)
        await session.flush()
        if wanted:
            # One statement for all: nothing here needs the new rows as objects, and
            # the ORM would insert them one round trip each to learn their ids.
            await session.execute(
                insert(SlaTimer),
                [
                    {
                        "ticket_id": ticket_id,
                        "clock": clock_name,
                        "cycle": cycle,
                        "kind": kind,
                        "level": level,
                        "due_at": due,
                        "fired_at": None,
                    }
                    for clock_name, cycle, kind, level, due in sorted(
                        wanted, key=lambda k: (k[4], k[3])
                    )
                ],
            )


def _not_before_last_change(now: datetime, clocks: Iterable[_Clock], *, ticket_id: int) -> datetime:
    """Clocks never run backwards: a change stamped before a clock's last change (the
    system clock was set back, or another process's clock is behind) happens at that
    change instead of being refused, so the ticket change itself still goes through."""
    latest = max((c.state.since for c in clocks if c.state.since is not None), default=None)
    if latest is None or now >= latest:
        return now
    log.warning(
        "ticket %s: now (%s) is before its SLA clocks' last change (%s); using that",
        ticket_id,
        now.isoformat(),
        latest.isoformat(),
    )
    return latest


def _park(rows: Iterable[TicketClock], now: datetime) -> None:
    for row in rows:
        if row.due_at is not None or row.warn_at is not None:
            row.due_at = row.warn_at = None
            row.updated_at = now


async def _mark_breach_fired(
    session: AsyncSession, clock: _Clock, breached: datetime, cycle: int, now: datetime
) -> None:
    """The breach is recorded now: its timer (or a record of one) counts as fired."""
    timer = await session.scalar(
        select(SlaTimer).where(
            SlaTimer.ticket_id == clock.row.ticket_id,
            SlaTimer.clock == clock.kind.value,
            SlaTimer.cycle == cycle,
            SlaTimer.kind == TimerKind.BREACH.value,
            SlaTimer.fired_at.is_(None),
        )
    )
    if timer is not None:
        timer.fired_at = now
        return
    session.add(
        SlaTimer(
            ticket_id=clock.row.ticket_id,
            clock=clock.kind.value,
            cycle=cycle,
            kind=TimerKind.BREACH.value,
            level=0,
            due_at=breached,
            fired_at=now,
        )
    )
