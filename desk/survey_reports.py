"""Survey reports: CSAT %, average, NPS and response rate by agent, team, queue,
tier, channel or period; the answers themselves (JSON and CSV); the open
low-score follow-ups for the board.

A report covers the surveys *sent* in ``[start, end)`` (by their send time), so
its response rate compares like with like: answered / sent.  The database adds
up counts and sums per group in one query (``Tally``); the figures made from
them are pure (``scores_of``) and table-tested.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import String, case, cast, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from desk.models import Customer, OutboxMessage, Survey, SurveyFollowUp, Team, Ticket, User

MAX_WINDOW = timedelta(days=366)


class SurveyDimension(StrEnum):
    AGENT = "agent"
    TEAM = "team"
    QUEUE = "queue"
    TIER = "tier"
    CHANNEL = "channel"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    ALL = "all"


@dataclass(frozen=True, kw_only=True)
class ScoreRow:
    """One survey as reports see it."""

    sent: bool
    answered: bool
    csat: int | None = None
    nps: int | None = None
    ces: int | None = None


@dataclass(frozen=True, kw_only=True)
class Scores:
    sent: int
    answered: int
    response_rate: float | None  # answered / sent, percent
    csat_answers: int
    csat_percent: float | None  # share of CSAT answers that are 4 or 5, percent
    csat_average: float | None
    nps_answers: int
    promoters: int  # 9-10
    passives: int  # 7-8
    detractors: int  # 0-6
    nps: float | None  # % promoters - % detractors, -100 … 100
    ces_answers: int
    ces_average: float | None


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


@dataclass(frozen=True, kw_only=True)
class Tally:
    """Counts and sums a group's figures are made of (SQL adds them up per group)."""

    sent: int = 0
    answered: int = 0
    csat_n: int = 0
    csat_sum: int = 0
    csat_good: int = 0  # 4 or 5
    nps_n: int = 0
    promoters: int = 0  # 9-10
    detractors: int = 0  # 0-6
    ces_n: int = 0
    ces_sum: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(**{name: getattr(self, name) + getattr(other, name) for name in _TALLY_FIELDS})

    @classmethod
    def of(cls, row: ScoreRow) -> Tally:
        return cls(
            sent=int(row.sent),
            answered=int(row.answered),
            csat_n=int(row.csat is not None),
            csat_sum=row.csat or 0,
            csat_good=int(row.csat is not None and row.csat >= 4),
            nps_n=int(row.nps is not None),
            promoters=int(row.nps is not None and row.nps >= 9),
            detractors=int(row.nps is not None and row.nps <= 6),
            ces_n=int(row.ces is not None),
            ces_sum=row.ces or 0,
        )


_TALLY_FIELDS = tuple(Tally.__dataclass_fields__)


def scores_of(tally: Tally) -> Scores:
    """The figures of a group (pure)."""
    promoters = _percent(tally.promoters, tally.nps_n)
    detractors = _percent(tally.detractors, tally.nps_n)
    return Scores(
        sent=tally.sent,
        answered=tally.answered,
        response_rate=_percent(tally.answered, tally.sent),
        csat_answers=tally.csat_n,
        csat_percent=_percent(tally.csat_good, tally.csat_n),
        csat_average=round(tally.csat_sum / tally.csat_n, 2) if tally.csat_n else None,
        nps_answers=tally.nps_n,
        promoters=tally.promoters,
        passives=tally.nps_n - tally.promoters - tally.detractors,
        detractors=tally.detractors,
        nps=(
            round(promoters - detractors, 1)
            if promoters is not None and detractors is not None
            else None
        ),
        ces_answers=tally.ces_n,
        ces_average=round(tally.ces_sum / tally.ces_n, 2) if tally.ces_n else None,
    )


def scores(rows: Iterable[ScoreRow]) -> Scores:
    """The figures of a group of surveys, one by one (pure)."""
    return scores_of(sum((Tally.of(row) for row in rows), Tally()))


def window_problems(start: datetime, end: datetime) -> dict[str, str]:
    if end <= start:
        return {"to": "must be after from"}
    if end - start > MAX_WINDOW:
        return {"to": "at most 366 days after from"}
    return {}


def period_key(moment: datetime, by: SurveyDimension) -> str:
    if by is SurveyDimension.DAY:
        return moment.date().isoformat()
    if by is SurveyDimension.WEEK:
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{moment.year}-{moment.month:02d}"


@dataclass(frozen=True, kw_only=True)
class ReportGroup:
    key: str | None
    label: str
    scores: Scores


@dataclass(frozen=True, kw_only=True)
class SurveyReport:
    start: datetime
    end: datetime
    by: SurveyDimension
    groups: list[ReportGroup]
    total: ReportGroup


_PERIODS = (SurveyDimension.DAY, SurveyDimension.WEEK, SurveyDimension.MONTH)


def _day(session: AsyncSession) -> Any:
    """The send day (UTC) as 'YYYY-MM-DD'; weeks and months are folded from days."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", Survey.send_at), "YYYY-MM-DD")
    return func.date(Survey.send_at)  # SQLite keeps naive UTC


def _group_key(session: AsyncSession, by: SurveyDimension) -> Any:
    if by in _PERIODS:
        return _day(session)
    return {
        SurveyDimension.AGENT: Survey.agent_id,
        SurveyDimension.TEAM: Survey.team_id,
        SurveyDimension.QUEUE: Survey.queue,
        SurveyDimension.TIER: Survey.tier,
        SurveyDimension.CHANNEL: Survey.source_channel,
        SurveyDimension.ALL: literal("all"),
    }[by]


def _count_if(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _score_sums() -> list[Any]:
    """The ``Tally`` columns of the scores, summed over the selected surveys."""
    return [
        func.count(Survey.csat).label("csat_n"),
        func.coalesce(func.sum(Survey.csat), 0).label("csat_sum"),
        _count_if(Survey.csat >= 4).label("csat_good"),
        func.count(Survey.nps).label("nps_n"),
        _count_if(Survey.nps >= 9).label("promoters"),
        _count_if(Survey.nps <= 6).label("detractors"),
        func.count(Survey.ces).label("ces_n"),
        func.coalesce(func.sum(Survey.ces), 0).label("ces_sum"),
    ]


async def read_report(
    session: AsyncSession, *, start: datetime, end: datetime, by: SurveyDimension
) -> SurveyReport:
    """One aggregate query, grouped in the database (a year of surveys never
    travels to Python); periods are grouped by day there and folded here."""
    key = _group_key(session, by).label("key")
    outbox = literal("survey:") + cast(Survey.id, String)
    answered = Survey.answered_at.is_not(None)
    rows = await session.execute(
        select(
            key,
            # An answer proves delivery even if the outbox row was cleaned away.
            _count_if(or_(OutboxMessage.sent_at.is_not(None), answered)).label("sent"),
            _count_if(answered).label("answered"),
            *_score_sums(),
        )
        .select_from(Survey)
        .outerjoin(OutboxMessage, OutboxMessage.dedupe_key == outbox)
        .where(Survey.send_at >= start, Survey.send_at < end, Survey.withdrawn_at.is_(None))
        .group_by(key)
    )
    groups: dict[str | None, Tally] = defaultdict(Tally)
    for row in rows:
        tally = Tally(**{name: int(getattr(row, name)) for name in _TALLY_FIELDS})
        group = None if row.key is None else str(row.key)
        if by in _PERIODS and group is not None:
            group = period_key(datetime.fromisoformat(group), by)
        groups[group] += tally
    labels = await _labels(session, by, [group for group in groups if group is not None])
    out = [
        ReportGroup(
            key=group,
            label=labels.get(group, group) if group is not None else "(none)",
            scores=scores_of(tally),
        )
        for group, tally in sorted(
            groups.items(), key=lambda item: (item[0] is None, item[0] or "")
        )
    ]
    total = sum(groups.values(), Tally())
    return SurveyReport(
        start=start,
        end=end,
        by=by,
        groups=out,
        total=ReportGroup(key=None, label="total", scores=scores_of(total)),
    )


async def answered_tally(session: AsyncSession, *, start: datetime, end: datetime) -> Tally:
    """What the answers *given* in ``[start, end)`` add up to (the wallboard's "CSAT
    today"), whenever their surveys were sent; a changed answer counts once."""
    answered = Survey.answered_at
    row = (
        await session.execute(
            select(func.count(Survey.id).label("answered"), *_score_sums()).where(
                answered >= start, answered < end
            )
        )
    ).one()
    fields = {name: int(getattr(row, name)) for name in _TALLY_FIELDS if name != "sent"}
    # Each of these surveys was delivered: an answer proves it.
    return Tally(sent=fields["answered"], **fields)


async def _labels(
    session: AsyncSession, by: SurveyDimension, keys: Sequence[str]
) -> dict[str, str]:
    ids = [int(key) for key in keys if key.isdigit()]
    if by is SurveyDimension.AGENT and ids:
        found = await session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))
        return {str(user_id): name for user_id, name in found}
    if by is SurveyDimension.TEAM and ids:
        found = await session.execute(select(Team.id, Team.name).where(Team.id.in_(ids)))
        return {str(team_id): name for team_id, name in found}
    return {}


# --- the answers -------------------------------------------------------------------------


async def list_surveys(
    session: AsyncSession,
    *,
    customer_id: int | None = None,
    ticket_id: int | None = None,
    answered: bool | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Survey]:
    """Surveys newest first; ``start``/``end`` bound the answer time when given."""
    query = select(Survey)
    if customer_id is not None:
        query = query.where(Survey.customer_id == customer_id)
    if ticket_id is not None:
        query = query.where(Survey.ticket_id == ticket_id)
    if answered is not None:
        query = query.where(
            Survey.answered_at.is_not(None) if answered else Survey.answered_at.is_(None)
        )
    if start is not None:
        query = query.where(Survey.answered_at >= start)
    if end is not None:
        query = query.where(Survey.answered_at < end)
    rows = await session.scalars(
        query.order_by(Survey.created_at.desc(), Survey.id.desc()).limit(limit).offset(offset)
    )
    return list(rows)


CSV_COLUMNS = (
    "survey_id",
    "answered_at",
    "customer_id",
    "customer",
    "ticket_id",
    "call_id",
    "agent",
    "team",
    "queue",
    "tier",
    "channel",
    "csat",
    "nps",
    "ces",
    "may_contact",
    "comment",
)


def csv_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: a leading = + - @ (or tab/CR) would
    otherwise run as a formula (CSV injection), so it gets a leading apostrophe."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


async def answers_csv(session: AsyncSession, *, start: datetime, end: datetime) -> str:
    """Every answer given in ``[start, end)``, one row each, oldest first."""
    rows = await session.execute(
        select(
            Survey,
            Customer.name.label("customer"),
            User.display_name.label("agent"),
            Team.name.label("team"),
        )
        .join(Customer, Customer.id == Survey.customer_id)
        .outerjoin(User, User.id == Survey.agent_id)
        .outerjoin(Team, Team.id == Survey.team_id)
        .where(Survey.answered_at >= start, Survey.answered_at < end)
        .order_by(Survey.answered_at, Survey.id)
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for survey, customer, agent, team in rows:
        assert survey.answered_at is not None
        values: tuple[object, ...] = (
            survey.id,
            survey.answered_at.isoformat(),
            survey.customer_id,
            customer,
            survey.ticket_id,
            survey.call_id,
            agent,
            team,
            survey.queue,
            survey.tier,
            survey.source_channel,
            survey.csat,
            survey.nps,
            survey.ces,
            "" if survey.may_contact is None else ("yes" if survey.may_contact else "no"),
            survey.comment,
        )
        writer.writerow([csv_cell(value) for value in values])
    return out.getvalue()


# --- the board's low scores ---------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class OpenFollowUp:
    id: int
    survey_id: int
    raised_at: datetime
    reason: str
    reopened_ticket: bool
    lead_user_id: int | None
    customer_id: int
    customer: str
    ticket_id: int | None
    ticket_subject: str | None
    call_id: int | None
    agent_user_id: int | None
    team_id: int | None
    csat: int | None
    nps: int | None
    comment: str | None
    may_contact: bool | None
    acknowledged_at: datetime | None = None
    acknowledged_by: int | None = None
    note: str | None = None


async def follow_ups(
    session: AsyncSession, *, open_only: bool = True, limit: int = 100
) -> list[OpenFollowUp]:
    """Low scores, oldest first; ``open_only``: those nobody has acknowledged."""
    query = (
        select(SurveyFollowUp, Survey, Customer.name, Ticket.subject)
        .join(Survey, Survey.id == SurveyFollowUp.survey_id)
        .join(Customer, Customer.id == Survey.customer_id)
        .outerjoin(Ticket, Ticket.id == Survey.ticket_id)
    )
    if open_only:
        query = query.where(SurveyFollowUp.acknowledged_at.is_(None))
        query = query.order_by(SurveyFollowUp.raised_at, SurveyFollowUp.id)
    else:
        query = query.order_by(SurveyFollowUp.raised_at.desc(), SurveyFollowUp.id.desc())
    rows = await session.execute(query.limit(limit))
    return [
        OpenFollowUp(
            id=follow_up.id,
            survey_id=survey.id,
            raised_at=follow_up.raised_at,
            reason=follow_up.reason,
            reopened_ticket=follow_up.reopened_ticket,
            lead_user_id=follow_up.lead_user_id,
            customer_id=survey.customer_id,
            customer=customer,
            ticket_id=survey.ticket_id,
            ticket_subject=subject,
            call_id=survey.call_id,
            agent_user_id=survey.agent_id,
            team_id=survey.team_id,
            csat=survey.csat,
            nps=survey.nps,
            comment=survey.comment,
            may_contact=survey.may_contact,
            acknowledged_at=follow_up.acknowledged_at,
            acknowledged_by=follow_up.acknowledged_by,
            note=follow_up.note,
        )
        for follow_up, survey, customer, subject in rows
    ]
