"""Surveys for supervisors: reports, the answers as CSV, and the board's low scores
with their acknowledgement."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select

from desk.errors import PermissionDenied
from desk.models import Role, SurveyFollowUp
from desk.survey_follow_ups import acknowledge
from desk.survey_reports import (
    OpenFollowUp,
    ReportGroup,
    SurveyDimension,
    answers_csv,
    follow_ups,
    read_report,
    window_problems,
)
from web.api.endpoints import (
    STAFF,
    SUPERVISORS,
    Endpoint,
    current_user,
    path_id,
    read_body,
    read_query,
    unit_of_work,
)
from web.api.errors import ApiError
from web.api.schemas import Out
from web.state import CLOCK, READS

# --- the answers as CSV ------------------------------------------------------------------


class WindowQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: AwareDatetime = Field(alias="from", description="Start, inclusive; ISO 8601 with zone.")
    end: AwareDatetime = Field(alias="to", description="End, exclusive; at most 366 days later.")


async def survey_answers_csv(request: web.Request) -> web.Response:
    query = read_query(request, WindowQuery)
    _check_window(query.start, query.end)
    async with request.app[READS]() as session:
        text = await answers_csv(session, start=query.start, end=query.end)
    name = f"survey-answers-{query.start.date()}-{query.end.date()}.csv"
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _check_window(start: datetime, end: datetime) -> None:
    problems = window_problems(start, end)
    if problems:
        raise ApiError(422, "invalid_input", "the query has invalid parameters", problems)


# --- reports -----------------------------------------------------------------------------


class ReportQuery(WindowQuery):
    by: SurveyDimension = SurveyDimension.ALL


class ScoresOut(Out):
    sent: int
    answered: int
    response_rate: float | None = Field(description="answered / sent, percent")
    csat_answers: int
    csat_percent: float | None = Field(description="CSAT answers of 4 or 5, percent")
    csat_average: float | None
    nps_answers: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None = Field(description="% promoters (9-10) - % detractors (0-6)")
    ces_answers: int
    ces_average: float | None


class ReportGroupOut(Out):
    key: str | None
    label: str
    scores: ScoresOut


class SurveyReportOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    by: SurveyDimension
    groups: list[ReportGroupOut]
    total: ReportGroupOut


def _group_out(group: ReportGroup) -> ReportGroupOut:
    return ReportGroupOut.model_validate(group)


async def survey_reports(request: web.Request) -> web.Response:
    query = read_query(request, ReportQuery)
    _check_window(query.start, query.end)
    async with request.app[READS]() as session:
        report = await read_report(session, start=query.start, end=query.end, by=query.by)
    out = SurveyReportOut(
        start=report.start,
        end=report.end,
        by=report.by,
        groups=[_group_out(group) for group in report.groups],
        total=_group_out(report.total),
    )
    return web.json_response(out.model_dump(mode="json", by_alias=True))


# --- low scores on the board -------------------------------------------------------------


class FollowUpOut(Out):
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
    acknowledged_at: datetime | None
    acknowledged_by: int | None
    note: str | None


class FollowUpListOut(BaseModel):
    items: list[FollowUpOut]


class FollowUpQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    open: bool = Field(True, description="Only those nobody has acknowledged yet.")
    limit: Annotated[int, Field(ge=1, le=500)] = 100


class Acknowledgement(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    note: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class AcknowledgedOut(Out):
    id: int
    survey_id: int
    acknowledged_at: datetime | None
    acknowledged_by: int | None
    note: str | None


def follow_up_payload(item: OpenFollowUp) -> dict[str, Any]:
    return FollowUpOut.model_validate(item).model_dump(mode="json")


async def survey_follow_ups(request: web.Request) -> web.Response:
    query = read_query(request, FollowUpQuery)
    async with request.app[READS]() as session:
        items = await follow_ups(session, open_only=query.open, limit=query.limit)
    out = FollowUpListOut(items=[FollowUpOut.model_validate(item) for item in items])
    return web.json_response(out.model_dump(mode="json"))


async def acknowledge_follow_up(request: web.Request) -> web.Response:
    body = await read_body(request, Acknowledgement)
    user = current_user(request)
    follow_up_id = path_id(request)
    async with unit_of_work(request) as uow:
        lead = await uow.session.scalar(
            select(SurveyFollowUp.lead_user_id).where(SurveyFollowUp.id == follow_up_id)
        )
        if Role(user.role) not in SUPERVISORS and lead != user.id:
            raise PermissionDenied("only supervisors and the team lead may acknowledge this")
        follow_up = await acknowledge(
            uow, follow_up_id, actor=user, note=body.note, now=request.app[CLOCK].now()
        )
        out = AcknowledgedOut.model_validate(follow_up)
        await uow.commit()
    return web.json_response(out.model_dump(mode="json"))


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v1/surveys/answers.csv",
        survey_answers_csv,
        "Every survey answer given in [from, to) as CSV",
        "surveys",
        SUPERVISORS,
        query=WindowQuery,
    ),
    Endpoint(
        "GET",
        "/api/v1/surveys/reports",
        survey_reports,
        "CSAT %, average, NPS, CES and response rate of surveys sent in [from, to), "
        "by agent, team, queue, tier, channel, day, week or month",
        "surveys",
        SUPERVISORS,
        query=ReportQuery,
        response=SurveyReportOut,
    ),
    Endpoint(
        "GET",
        "/api/v1/surveys/follow-ups",
        survey_follow_ups,
        "Low scores for the board: open ones oldest first (also pushed live as the "
        "socket.io events survey_low_score and survey_low_score_acknowledged)",
        "surveys",
        STAFF,
        query=FollowUpQuery,
        response=FollowUpListOut,
    ),
    Endpoint(
        "POST",
        "/api/v1/surveys/follow-ups/{id}/acknowledge",
        acknowledge_follow_up,
        "Acknowledge a low score with a note (supervisors, or the team lead alerted)",
        "surveys",
        STAFF,
        body=Acknowledgement,
        response=AcknowledgedOut,
        errors=(409,),
    ),
]
