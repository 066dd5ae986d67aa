"""SLA for supervisors: the live board and compliance reports."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from routing.router import DEFAULT_WEIGHTS
from routing.sla_board import SlaBoard, read_board
from routing.sla_reports import ReportDimension, SlaReport, read_report, report_window_problems
from web.api.endpoints import SUPERVISORS, Endpoint, read_query
from web.api.errors import ApiError
from web.api.schemas import Out
from web.state import CLOCK, LOAD_WEIGHTS, READS

# --- the board ---------------------------------------------------------------------------


class SlaBoardQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    horizon_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = Field(
        60, description="Count a clock as at risk when it is due within this many minutes."
    )


class AtRiskOut(Out):
    ticket_id: int
    subject: str
    priority: str
    team_id: int | None
    assignee_id: int | None
    clock: str
    policy: str
    due_at: datetime
    seconds_left: float = Field(description="Wall-clock seconds from the board's `at`.")
    warned: bool


class BreachOut(Out):
    ticket_id: int
    subject: str
    priority: str
    team_id: int | None
    assignee_id: int | None
    clock: str
    policy: str
    breached_at: datetime
    seconds_overdue: float
    recorded: bool = Field(description="False: past due, not yet recorded by the SLA watcher.")


class EscalationOut(Out):
    ticket_id: int
    subject: str
    team_id: int | None
    assignee_id: int | None
    clock: str
    level: int
    since: datetime | None


class TeamBacklogOut(Out):
    team_id: int | None
    name: str
    new: int
    open: int
    pending: int
    on_hold: int
    total: int


class AgentLoadOut(Out):
    user_id: int
    agent_id: int | None
    name: str
    open_tickets: int
    by_priority: dict[str, int]
    load: float = Field(description="Unsolved tickets weighted by priority (routing's weights).")


class SlaBoardOut(Out):
    at: datetime
    horizon_seconds: float
    at_risk: list[AtRiskOut]
    breached: list[BreachOut]
    escalations: list[EscalationOut]
    teams: list[TeamBacklogOut]
    agents: list[AgentLoadOut]


def sla_board_payload(board: SlaBoard) -> dict[str, Any]:
    """The board as JSON, for the API and for the ``sla_board`` socket.io event."""
    return SlaBoardOut.model_validate(board).model_dump(mode="json")


async def sla_board(request: web.Request) -> web.Response:
    query = read_query(request, SlaBoardQuery)
    configured: dict[str, float] | None = request.app.get(LOAD_WEIGHTS)
    async with request.app[READS]() as session:
        board = await read_board(
            session,
            now=request.app[CLOCK].now(),
            horizon=timedelta(minutes=query.horizon_minutes),
            weights=configured if configured is not None else DEFAULT_WEIGHTS,
        )
    return web.json_response(sla_board_payload(board))


# --- reports ----------------------------------------------------------------------------


class SlaReportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: AwareDatetime = Field(
        alias="from", description="Start, inclusive; ISO 8601 with a time zone."
    )
    end: AwareDatetime = Field(
        alias="to", description="End, exclusive; at most 366 days after `from`."
    )
    by: ReportDimension = ReportDimension.CLOCK


class ClockSummaryOut(Out):
    clock: str
    met: int
    breached: int
    denominator: int = Field(description="met + breached: the clocks the percentage is of.")
    compliance_percent: float | None = Field(description="None when nothing was measured.")
    completed: int = Field(description="Clocks that stopped in the period; the times are theirs.")
    median_seconds: float | None
    p90_seconds: float | None


class ReportGroupOut(Out):
    key: str | None
    label: str
    clocks: list[ClockSummaryOut]


class SlaReportOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    by: ReportDimension
    time_basis: Literal["business"] = Field(
        description="Times are business seconds on each policy's calendar."
    )
    groups: list[ReportGroupOut]
    total: ReportGroupOut


def report_out(report: SlaReport) -> SlaReportOut:
    return SlaReportOut(
        start=report.start,
        end=report.end,
        by=report.by,
        time_basis=report.time_basis,
        groups=[ReportGroupOut.model_validate(group) for group in report.groups],
        total=ReportGroupOut.model_validate(report.total),
    )


async def sla_reports(request: web.Request) -> web.Response:
    query = read_query(request, SlaReportQuery)
    problems = report_window_problems(query.start, query.end)
    if problems:
        raise ApiError(422, "invalid_input", "the query has invalid parameters", problems)
    async with request.app[READS]() as session:
        report = await read_report(session, start=query.start, end=query.end, by=query.by)
    return web.json_response(report_out(report).model_dump(mode="json", by_alias=True))


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v1/sla/board",
        sla_board,
        "The SLA board: tickets about to breach and breached, open escalations, "
        "backlog per team, load per agent (also pushed live as the socket.io event sla_board)",
        "sla",
        SUPERVISORS,
        query=SlaBoardQuery,
        response=SlaBoardOut,
    ),
    Endpoint(
        "GET",
        "/api/v1/sla/reports",
        sla_reports,
        "SLA compliance per clock, with median and p90 times, for clocks met or breached "
        "in [from, to), grouped by team, agent, tier, channel or clock",
        "sla",
        SUPERVISORS,
        query=SlaReportQuery,
        response=SlaReportOut,
    ),
]
