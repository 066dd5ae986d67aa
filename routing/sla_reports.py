"""SLA reports for supervisors: compliance and response times over a period.

Every clock is counted once, in the period of its decisive moment: a breached
clock at its ``breached_at`` (whether or not it has stopped since), a clock
that stopped without a breach (met) at its ``stopped_at``.  Compliance is
``met ÷ (met + breached)``; the denominator is reported with it, and a group
without clocks has no percentage (None), not 0 %.

Times are the *business* time each clock ran (the sum of its runs, as the SLA
keeper computed and stored them), over the clocks that stopped in the period;
median and p90 interpolate linearly between ranks (numpy's default, Excel's
PERCENTILE.INC), so the median of an even count is the mean of the middle two.

A ticket without a customer counts as standard tier, as its SLA policy does.
Only the current cycle of a clock is stored: a next-response clock that started
afresh has dropped its earlier cycles, so those are not counted.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from desk.models import Customer, Team, Ticket, TicketClock, Tier, User
from routing.sla import ClockKind
from routing.sla_keeper import state_from_json

MAX_REPORT_SPAN = timedelta(days=366)
TIME_BASIS: Literal["business"] = "business"
Outcome = Literal["met", "breached"]


class ReportDimension(StrEnum):
    TEAM = "team"
    AGENT = "agent"
    TIER = "tier"
    CHANNEL = "channel"
    CLOCK = "clock"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClockRecord:
    """One SLA clock of one ticket, with what reports group by."""

    ticket_id: int
    clock: str
    stopped_at: datetime | None
    breached_at: datetime | None
    business: timedelta  # business time of its finished runs
    team_id: int | None = None
    team_name: str | None = None
    assignee_id: int | None = None
    assignee_name: str | None = None
    tier: str = Tier.STANDARD.value
    channel: str = "api"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClockSummary:
    clock: str
    met: int
    breached: int
    compliance_percent: float | None
    completed: int  # clocks that stopped in the period: the times below are theirs
    median_seconds: float | None
    p90_seconds: float | None

    @property
    def denominator(self) -> int:
        return self.met + self.breached


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportGroup:
    key: str | None  # team or user id, tier, channel or clock; None: no team / unassigned
    label: str
    clocks: tuple[ClockSummary, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaReport:
    start: datetime
    end: datetime
    by: ReportDimension
    time_basis: Literal["business"]
    groups: tuple[ReportGroup, ...]
    total: ReportGroup


# --- the maths --------------------------------------------------------------------------


def compliance_percent(met: int, breached: int) -> float | None:
    """Met share in percent, rounded to two places; None when nothing was measured."""
    if met < 0 or breached < 0:
        raise ValueError("counts cannot be negative")
    measured = met + breached
    return None if measured == 0 else round(100 * met / measured, 2)


def percentile(values: Sequence[float], share: float) -> float | None:
    """The ``share`` (0..1) percentile, interpolating linearly between ranks."""
    if not 0 <= share <= 1:
        raise ValueError(f"a share between 0 and 1, got {share}")
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float | None:
    return percentile(values, 0.5)


def _within(moment: datetime | None, start: datetime, end: datetime) -> bool:
    return moment is not None and start <= moment < end


def outcome_in(record: ClockRecord, start: datetime, end: datetime) -> Outcome | None:
    """How the clock counts in ``[start, end)``: breached at its breach, met
    when it stopped unbreached, or not at all."""
    if record.breached_at is not None:
        return "breached" if _within(record.breached_at, start, end) else None
    return "met" if _within(record.stopped_at, start, end) else None


def summarise(
    records: Iterable[ClockRecord], clock: str, *, start: datetime, end: datetime
) -> ClockSummary:
    met = breached = 0
    times: list[float] = []
    for record in records:
        if record.clock != clock:
            continue
        outcome = outcome_in(record, start, end)
        met += outcome == "met"
        breached += outcome == "breached"
        if _within(record.stopped_at, start, end):
            times.append(record.business.total_seconds())
    return ClockSummary(
        clock=clock,
        met=met,
        breached=breached,
        compliance_percent=compliance_percent(met, breached),
        completed=len(times),
        median_seconds=median(times),
        p90_seconds=percentile(times, 0.9),
    )


def _counts(record: ClockRecord, start: datetime, end: datetime) -> bool:
    return outcome_in(record, start, end) is not None or _within(record.stopped_at, start, end)


def _group_of(record: ClockRecord, by: ReportDimension) -> tuple[str | None, str]:
    if by is ReportDimension.TEAM:
        if record.team_id is None:
            return None, "(no team)"
        return str(record.team_id), record.team_name or f"team {record.team_id}"
    if by is ReportDimension.AGENT:
        if record.assignee_id is None:
            return None, "(unassigned)"
        return str(record.assignee_id), record.assignee_name or f"user {record.assignee_id}"
    if by is ReportDimension.TIER:
        return record.tier, record.tier
    if by is ReportDimension.CHANNEL:
        return record.channel, record.channel
    return record.clock, record.clock.replace("_", " ")


def _clock_order(clock: str) -> tuple[int, str]:
    kinds = [kind.value for kind in ClockKind]
    return (kinds.index(clock), clock) if clock in kinds else (len(kinds), clock)


def build_report(
    records: Iterable[ClockRecord], *, by: ReportDimension, start: datetime, end: datetime
) -> SlaReport:
    """Per group, each clock's compliance and times; groups by label, the ones
    without a team or assignee last.  Every group lists the same clocks (all
    that occur in the period), except ``by=clock``, where a group is its clock."""
    counted = [record for record in records if _counts(record, start, end)]
    clocks = sorted({record.clock for record in counted}, key=_clock_order)
    grouped: dict[tuple[str | None, str], list[ClockRecord]] = defaultdict(list)
    for record in counted:
        grouped[_group_of(record, by)].append(record)

    def order(group: tuple[str | None, str]) -> tuple[object, ...]:
        key, label = group
        if by is ReportDimension.CLOCK:
            return (_clock_order(key or ""),)
        return (key is None, label, key or "")

    groups = []
    for key, label in sorted(grouped, key=order):
        mine = grouped[key, label]
        columns = [key] if by is ReportDimension.CLOCK and key is not None else clocks
        summaries = tuple(summarise(mine, clock, start=start, end=end) for clock in columns)
        groups.append(ReportGroup(key=key, label=label, clocks=summaries))
    total = ReportGroup(
        key=None,
        label="all",
        clocks=tuple(summarise(counted, clock, start=start, end=end) for clock in clocks),
    )
    return SlaReport(
        start=start, end=end, by=by, time_basis=TIME_BASIS, groups=tuple(groups), total=total
    )


def report_window_problems(start: datetime, end: datetime) -> dict[str, str]:
    """What is wrong with a report period, by query parameter; empty if nothing."""
    problems = {}
    for name, moment in (("from", start), ("to", end)):
        if moment.tzinfo is None or moment.utcoffset() is None:
            problems[name] = "needs a time zone, like 2026-03-01T00:00:00Z"
    if problems:
        return problems
    if end <= start:
        problems["to"] = "must be after from"
    elif end - start > MAX_REPORT_SPAN:
        problems["to"] = f"at most {MAX_REPORT_SPAN.days} days after from"
    return problems


# --- the query --------------------------------------------------------------------------


async def report_records(
    session: AsyncSession, *, start: datetime, end: datetime
) -> list[ClockRecord]:
    """Clocks that may count in ``[start, end)``: breached in it, or stopped (no
    due time) and last changed since ``start`` — a clock's ``updated_at`` is never
    before it stopped; the exact stop time is read from its state."""
    query = (
        select(
            TicketClock,
            Ticket.team_id,
            Team.name,
            Ticket.assignee_id,
            User.display_name,
            Customer.tier,
            Ticket.channel,
        )
        .join(Ticket, Ticket.id == TicketClock.ticket_id)
        .outerjoin(Team, Team.id == Ticket.team_id)
        .outerjoin(User, User.id == Ticket.assignee_id)
        .outerjoin(Customer, Customer.id == Ticket.customer_id)
        .where(
            or_(
                and_(TicketClock.breached_at >= start, TicketClock.breached_at < end),
                and_(TicketClock.due_at.is_(None), TicketClock.updated_at >= start),
            )
        )
        .order_by(TicketClock.id)
    )
    records = []
    for row, team_id, team_name, assignee_id, assignee_name, tier, channel in await session.execute(
        query
    ):
        state = state_from_json(row.state)
        records.append(
            ClockRecord(
                ticket_id=row.ticket_id,
                clock=row.clock,
                stopped_at=state.stopped_at,
                breached_at=row.breached_at,
                business=state.accumulated,
                team_id=team_id,
                team_name=team_name,
                assignee_id=assignee_id,
                assignee_name=assignee_name,
                tier=tier or Tier.STANDARD.value,
                channel=channel,
            )
        )
    return records


async def read_report(
    session: AsyncSession, *, start: datetime, end: datetime, by: ReportDimension
) -> SlaReport:
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    records = await report_records(session, start=start, end=end)
    return build_report(records, by=by, start=start, end=end)
