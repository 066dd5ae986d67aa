"""The supervisors' SLA board: what is about to breach, what has, who is escalated,
how much work waits per team and how loaded each agent is.

The board is decided by pure functions over plain rows (``ClockFacts`` and
counts), with ``now`` a parameter; ``read_board`` does the queries.  Only live
work counts: tickets not solved or closed, and clocks that have not stopped (a
first response breached and then answered is history, for the reports).

* *At risk*: a running clock not breached yet, warned already (``warn_at``
  passed) or due within the horizon; soonest breach first.
* *Breached*: a clock with a recorded breach, or a running one past its due time
  that the watcher has not recorded yet (``breached_at`` is then the due time,
  as ``record_breach`` will store it); oldest breach first.
* *Escalations*: clocks at an escalation level, since that level's timer fired;
  highest level first.
* *Agent load*: unsolved tickets per assignee, weighted by priority with
  routing's weights (``routing.router.DEFAULT_WEIGHTS`` unless given).

``SlaBoardFeed`` keeps the board live: it recomputes when poked (after SLA
events or ticket changes) or every ``interval`` seconds and hands the board to
a callback, which publishes it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from desk.background import PokedLoop
from desk.clock import Clock
from desk.models import Agent, SlaTimer, Team, Ticket, TicketClock, TicketStatus, User
from routing.escalation import TimerKind
from routing.router import DEFAULT_WEIGHTS
from routing.sla import ClockPhase
from routing.sla_keeper import state_from_json

DEFAULT_HORIZON = timedelta(hours=1)
UNSOLVED = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.ON_HOLD)


# --- what the board is made of -------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ClockFacts:
    """One SLA clock of an unsolved ticket, as the board reads it."""

    ticket_id: int
    subject: str
    priority: str
    team_id: int | None
    assignee_id: int | None
    clock: str
    policy: str
    phase: ClockPhase
    due_at: datetime | None
    warn_at: datetime | None
    breached_at: datetime | None
    escalated_level: int = 0
    escalated_since: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AtRisk:
    ticket_id: int
    subject: str
    priority: str
    team_id: int | None
    assignee_id: int | None
    clock: str
    policy: str
    due_at: datetime
    seconds_left: float
    warned: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Breach:
    ticket_id: int
    subject: str
    priority: str
    team_id: int | None
    assignee_id: int | None
    clock: str
    policy: str
    breached_at: datetime
    seconds_overdue: float
    recorded: bool  # False: past due, the watcher has not recorded it yet


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenEscalation:
    ticket_id: int
    subject: str
    team_id: int | None
    assignee_id: int | None
    clock: str
    level: int
    since: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TeamBacklog:
    team_id: int | None  # None: tickets without a team
    name: str
    new: int = 0
    open: int = 0
    pending: int = 0
    on_hold: int = 0

    @property
    def total(self) -> int:
        return self.new + self.open + self.pending + self.on_hold


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentLoad:
    user_id: int
    agent_id: int | None
    name: str
    open_tickets: int
    by_priority: Mapping[str, int]
    load: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaBoard:
    at: datetime
    horizon_seconds: float
    at_risk: tuple[AtRisk, ...]
    breached: tuple[Breach, ...]
    escalations: tuple[OpenEscalation, ...]
    teams: tuple[TeamBacklog, ...]
    agents: tuple[AgentLoad, ...]


@dataclass(frozen=True, slots=True)
class Person:
    user_id: int
    agent_id: int | None
    name: str


# --- the decisions ---------------------------------------------------------------------


def _live(facts: ClockFacts) -> bool:
    return facts.phase in (ClockPhase.RUNNING, ClockPhase.PAUSED)


def _breached_at(facts: ClockFacts, now: datetime) -> datetime | None:
    if facts.breached_at is not None:
        return facts.breached_at
    running = facts.phase is ClockPhase.RUNNING
    if running and facts.due_at is not None and facts.due_at < now:
        return facts.due_at
    return None


def tickets_at_risk(
    clocks: Iterable[ClockFacts], *, now: datetime, horizon: timedelta = DEFAULT_HORIZON
) -> list[AtRisk]:
    """Running, unbreached clocks warned already or due within ``horizon``; soonest first."""
    found = []
    for facts in clocks:
        if facts.phase is not ClockPhase.RUNNING or facts.due_at is None:
            continue
        if _breached_at(facts, now) is not None:
            continue
        warned = facts.warn_at is not None and facts.warn_at <= now
        if not warned and facts.due_at - now > horizon:
            continue
        found.append(
            AtRisk(
                ticket_id=facts.ticket_id,
                subject=facts.subject,
                priority=facts.priority,
                team_id=facts.team_id,
                assignee_id=facts.assignee_id,
                clock=facts.clock,
                policy=facts.policy,
                due_at=facts.due_at,
                seconds_left=(facts.due_at - now).total_seconds(),
                warned=warned,
            )
        )
    return sorted(found, key=lambda risk: (risk.due_at, risk.ticket_id, risk.clock))


def breached_tickets(clocks: Iterable[ClockFacts], *, now: datetime) -> list[Breach]:
    """Clocks still owed whose due time has passed; the oldest breach first."""
    found = []
    for facts in clocks:
        moment = _breached_at(facts, now)
        if moment is None or not _live(facts):
            continue
        found.append(
            Breach(
                ticket_id=facts.ticket_id,
                subject=facts.subject,
                priority=facts.priority,
                team_id=facts.team_id,
                assignee_id=facts.assignee_id,
                clock=facts.clock,
                policy=facts.policy,
                breached_at=moment,
                seconds_overdue=(now - moment).total_seconds(),
                recorded=facts.breached_at is not None,
            )
        )
    return sorted(found, key=lambda breach: (breach.breached_at, breach.ticket_id, breach.clock))


def open_escalations(clocks: Iterable[ClockFacts]) -> list[OpenEscalation]:
    """Clocks still owed at an escalation level: highest level first, then longest."""
    found = [
        OpenEscalation(
            ticket_id=facts.ticket_id,
            subject=facts.subject,
            team_id=facts.team_id,
            assignee_id=facts.assignee_id,
            clock=facts.clock,
            level=facts.escalated_level,
            since=facts.escalated_since,
        )
        for facts in clocks
        if facts.escalated_level > 0 and _live(facts)
    ]
    far_future = datetime.max.replace(tzinfo=UTC)
    return sorted(found, key=lambda e: (-e.level, e.since or far_future, e.ticket_id, e.clock))


def team_backlog(
    teams: Mapping[int, str], counts: Iterable[tuple[int | None, str, int]]
) -> list[TeamBacklog]:
    """Unsolved tickets per team and status, every team listed (by name), then
    a row for tickets without a team if there are any."""
    tally: dict[int | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for team_id, status, count in counts:
        if status in UNSOLVED:
            tally[team_id][status] += count
    rows = [
        TeamBacklog(team_id=team_id, name=name, **tally.get(team_id, {}))
        for team_id, name in sorted(teams.items(), key=lambda item: (item[1], item[0]))
    ]
    loose = {team_id: statuses for team_id, statuses in tally.items() if team_id not in teams}
    if loose:
        merged: dict[str, int] = defaultdict(int)
        for statuses in loose.values():  # no team, or a team deleted meanwhile
            for status, count in statuses.items():
                merged[status] += count
        rows.append(TeamBacklog(team_id=None, name="(no team)", **merged))
    return rows


def agent_loads(
    people: Iterable[Person],
    counts: Iterable[tuple[int, str, int]],
    *,
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
) -> list[AgentLoad]:
    """Unsolved tickets per assignee, weighted by priority; the most loaded first.
    A priority without a weight counts 1."""
    by_user: dict[int, dict[str, int]] = defaultdict(dict)
    for user_id, priority, count in counts:
        by_user[user_id][priority] = by_user[user_id].get(priority, 0) + count
    loads = []
    for person in people:
        mine = by_user.get(person.user_id, {})
        loads.append(
            AgentLoad(
                user_id=person.user_id,
                agent_id=person.agent_id,
                name=person.name,
                open_tickets=sum(mine.values()),
                by_priority=dict(sorted(mine.items())),
                load=sum(weights.get(p, 1.0) * n for p, n in mine.items()),
            )
        )
    return sorted(loads, key=lambda a: (-a.load, -a.open_tickets, a.name, a.user_id))


def build_board(
    *,
    clocks: Sequence[ClockFacts],
    teams: Mapping[int, str],
    team_counts: Iterable[tuple[int | None, str, int]],
    people: Iterable[Person],
    assignee_counts: Iterable[tuple[int, str, int]],
    now: datetime,
    horizon: timedelta = DEFAULT_HORIZON,
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
) -> SlaBoard:
    return SlaBoard(
        at=now,
        horizon_seconds=horizon.total_seconds(),
        at_risk=tuple(tickets_at_risk(clocks, now=now, horizon=horizon)),
        breached=tuple(breached_tickets(clocks, now=now)),
        escalations=tuple(open_escalations(clocks)),
        teams=tuple(team_backlog(teams, team_counts)),
        agents=tuple(agent_loads(people, assignee_counts, weights=weights)),
    )


# --- the queries -----------------------------------------------------------------------


def _unsolved() -> Any:
    return Ticket.status.in_([status.value for status in UNSOLVED])


async def board_clocks(
    session: AsyncSession, *, now: datetime, horizon: timedelta = DEFAULT_HORIZON
) -> list[ClockFacts]:
    """Clocks of unsolved tickets that can be on the board: due within the
    horizon, warned, breached or escalated."""
    since = (
        select(func.min(SlaTimer.fired_at))
        .where(
            SlaTimer.ticket_id == TicketClock.ticket_id,
            SlaTimer.clock == TicketClock.clock,
            SlaTimer.cycle == TicketClock.cycle,
            SlaTimer.kind == TimerKind.ESCALATION.value,
            SlaTimer.level == TicketClock.escalated_level,
            SlaTimer.fired_at.is_not(None),
        )
        .correlate(TicketClock)
        .scalar_subquery()
    )
    query = (
        select(
            TicketClock,
            Ticket.subject,
            Ticket.priority,
            Ticket.team_id,
            Ticket.assignee_id,
            since,
        )
        .join(Ticket, Ticket.id == TicketClock.ticket_id)
        .where(
            _unsolved(),
            or_(
                TicketClock.due_at <= now + horizon,
                TicketClock.warn_at <= now,
                TicketClock.breached_at.is_not(None),
                TicketClock.escalated_level > 0,
            ),
        )
        .order_by(TicketClock.id)
    )
    facts = []
    for row, subject, priority, team_id, assignee_id, escalated_since in await session.execute(
        query
    ):
        facts.append(
            ClockFacts(
                ticket_id=row.ticket_id,
                subject=subject,
                priority=priority,
                team_id=team_id,
                assignee_id=assignee_id,
                clock=row.clock,
                policy=row.policy,
                phase=state_from_json(row.state).phase,
                due_at=row.due_at,
                warn_at=row.warn_at,
                breached_at=row.breached_at,
                escalated_level=row.escalated_level,
                escalated_since=escalated_since,
            )
        )
    return facts


async def read_board(
    session: AsyncSession,
    *,
    now: datetime,
    horizon: timedelta = DEFAULT_HORIZON,
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
) -> SlaBoard:
    now = now.astimezone(UTC)
    clocks = await board_clocks(session, now=now, horizon=horizon)
    teams = {team_id: name for team_id, name in await session.execute(select(Team.id, Team.name))}
    team_counts = [
        (team_id, status, count)
        for team_id, status, count in await session.execute(
            select(Ticket.team_id, Ticket.status, func.count())
            .where(_unsolved())
            .group_by(Ticket.team_id, Ticket.status)
        )
    ]
    assignee_counts: list[tuple[int, str, int]] = [
        (user_id, priority, count)
        for user_id, priority, count in await session.execute(
            select(Ticket.assignee_id, Ticket.priority, func.count())
            .where(_unsolved(), Ticket.assignee_id.is_not(None))
            .group_by(Ticket.assignee_id, Ticket.priority)
        )
        if user_id is not None
    ]
    assignees = {user_id for user_id, _, _ in assignee_counts}
    people = [
        Person(user_id, agent_id, name)
        for user_id, agent_id, name in await session.execute(
            select(User.id, Agent.id, User.display_name)
            .outerjoin(Agent, Agent.user_id == User.id)
            .where(or_(and_(Agent.id.is_not(None), User.active.is_(True)), User.id.in_(assignees)))
        )
    ]
    return build_board(
        clocks=clocks,
        teams=teams,
        team_counts=team_counts,
        people=people,
        assignee_counts=assignee_counts,
        now=now,
        horizon=horizon,
        weights=weights,
    )


# --- the live board -----------------------------------------------------------------------


Publish = Callable[[SlaBoard], Awaitable[None]]


class SlaBoardFeed:
    """Recomputes the board when poked or every ``interval`` seconds and hands it
    to ``publish``.  Pokes that arrive while it works, or within ``min_gap`` of
    the last board, are answered by one more board, not one each."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        publish: Publish,
        interval: float = 30.0,
        min_gap: float = 1.0,
        horizon: timedelta = DEFAULT_HORIZON,
        weights: Mapping[str, float] = DEFAULT_WEIGHTS,
    ) -> None:
        if interval <= 0 or min_gap < 0:
            raise ValueError("the board feed needs a positive interval and a non-negative gap")
        self._sessions = sessions
        self._clock = clock
        self._publish = publish
        self._interval = interval
        self._min_gap = min_gap
        self._horizon = horizon
        self._weights = weights
        self._loop = PokedLoop("sla-board-feed", self._round, retry=interval)
        self.latest: SlaBoard | None = None  # for a supervisor who connects now
        self.published = 0

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    @property
    def running(self) -> bool:
        return self._loop.running

    def poke(self) -> None:
        """Something the board shows may have changed: recompute soon."""
        self._loop.poke()

    async def refresh(self) -> SlaBoard:
        """Compute the board now and publish it."""
        async with self._sessions() as session:
            board = await read_board(
                session, now=self._clock.now(), horizon=self._horizon, weights=self._weights
            )
        self.latest = board
        await self._publish(board)
        self.published += 1
        return board

    async def _round(self) -> float:
        await self.refresh()
        if self._min_gap:  # pokes meanwhile are kept: the next round comes right after
            await asyncio.sleep(self._min_gap)
        return self._interval
