"""Surveys for staff: templates, sending one now, answers (JSON and CSV), reports,
the board's low scores and their acknowledgement, and customers' opt-outs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from desk.customers import get_customer
from desk.errors import Conflict, PermissionDenied
from desk.models import Role, Survey, SurveyOptOut, SurveyTemplate
from desk.survey_customers import opt_in, opt_out, survey_on_request
from desk.survey_policy import Skip
from desk.survey_questions import Question
from desk.survey_reports import (
    list_surveys,
)
from desk.survey_templates import (
    TemplateDraft,
    TemplatePatch,
    change_template,
    create_template,
    get_template,
    list_templates,
    template_versions,
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
from web.state import CLOCK, MAIL_SENDER, READS, SURVEY_SCHEDULER

# --- templates ---------------------------------------------------------------------------


class TemplateVersionOut(Out):
    id: int
    version: int
    questions: list[Question]
    created_at: datetime
    created_by: int | None


class TemplateOut(Out):
    id: int
    name: str
    team_id: int | None
    channel: str | None
    active: bool
    current_version: int
    created_at: datetime
    updated_at: datetime


class TemplateDetailOut(TemplateOut):
    versions: list[TemplateVersionOut]


class TemplateListOut(BaseModel):
    items: list[TemplateOut]


async def _template_detail(session: Any, template: SurveyTemplate) -> TemplateDetailOut:
    versions = await template_versions(session, template.id)
    return TemplateDetailOut(
        **TemplateOut.model_validate(template).model_dump(),
        versions=[TemplateVersionOut.model_validate(v) for v in versions],
    )


async def survey_templates(request: web.Request) -> web.Response:
    async with request.app[READS]() as session:
        items = [TemplateOut.model_validate(t) for t in await list_templates(session)]
    return web.json_response(TemplateListOut(items=items).model_dump(mode="json"))


async def survey_template(request: web.Request) -> web.Response:
    async with request.app[READS]() as session:
        template = await get_template(session, path_id(request))
        out = await _template_detail(session, template)
    return web.json_response(out.model_dump(mode="json"))


async def create_survey_template(request: web.Request) -> web.Response:
    draft = await read_body(request, TemplateDraft)
    async with unit_of_work(request) as uow:
        template = await create_template(
            uow.session, draft, actor_id=current_user(request).id, now=request.app[CLOCK].now()
        )
        out = await _template_detail(uow.session, template)
        await uow.commit()
    return web.json_response(out.model_dump(mode="json"), status=201)


async def change_survey_template(request: web.Request) -> web.Response:
    patch = await read_body(request, TemplatePatch)
    async with unit_of_work(request) as uow:
        template = await change_template(
            uow.session,
            path_id(request),
            patch,
            actor_id=current_user(request).id,
            now=request.app[CLOCK].now(),
        )
        out = await _template_detail(uow.session, template)
        await uow.commit()
    return web.json_response(out.model_dump(mode="json"))


# --- surveys and answers -----------------------------------------------------------------


class SurveyOut(Out):
    id: int
    template_version_id: int
    trigger: str
    channel: str
    customer_id: int
    recipient: str
    language: str
    ticket_id: int | None
    call_id: int | None
    agent_id: int | None = Field(description="The user who handled the ticket or call.")
    team_id: int | None
    queue: str | None
    source_channel: str
    tier: str
    created_at: datetime
    send_at: datetime
    expires_at: datetime
    withdrawn_at: datetime | None
    withdrawn_reason: str | None
    answered_at: datetime | None
    changed_at: datetime | None
    csat: int | None
    nps: int | None
    ces: int | None
    answers: dict[str, Any]
    comment: str | None
    may_contact: bool | None


class SurveyPageOut(BaseModel):
    items: list[SurveyOut]


class SurveyListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: int | None = None
    ticket_id: int | None = None
    answered: bool | None = None
    start: AwareDatetime | None = Field(None, alias="from", description="Answered at or after.")
    end: AwareDatetime | None = Field(None, alias="to", description="Answered before.")
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


class SurveyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    ticket_id: int | None = None
    call_id: int | None = None
    ignore_period: bool = Field(
        False, description="Supervisors only: send even if the customer had one lately."
    )


async def surveys(request: web.Request) -> web.Response:
    query = read_query(request, SurveyListQuery)
    async with request.app[READS]() as session:
        rows = await list_surveys(
            session,
            customer_id=query.customer_id,
            ticket_id=query.ticket_id,
            answered=query.answered,
            start=query.start,
            end=query.end,
            limit=query.limit,
            offset=query.offset,
        )
    out = SurveyPageOut(items=[SurveyOut.model_validate(row) for row in rows])
    return web.json_response(out.model_dump(mode="json"))


async def survey(request: web.Request) -> web.Response:
    async with request.app[READS]() as session:
        row = await session.get(Survey, path_id(request))
    if row is None:
        raise ApiError(404, "not_found", "no such survey")
    return web.json_response(SurveyOut.model_validate(row).model_dump(mode="json"))


async def send_survey(request: web.Request) -> web.Response:
    wanted = await read_body(request, SurveyRequest)
    user = current_user(request)
    if wanted.ignore_period and Role(user.role) not in SUPERVISORS:
        raise PermissionDenied("only supervisors may ignore the survey period")
    scheduler = request.app.get(SURVEY_SCHEDULER)
    if scheduler is None:
        raise ApiError(409, "surveys_off", "surveys are off (or e-mail is not configured)")
    async with unit_of_work(request) as uow:
        sent = await survey_on_request(
            uow.session,
            scheduler,
            ticket_id=wanted.ticket_id,
            call_id=wanted.call_id,
            now=request.app[CLOCK].now(),
            ignore_period=wanted.ignore_period,
        )
        if isinstance(sent, Skip):
            raise Conflict(f"no survey sent: {sent.value}", fields={"survey": sent.value})
        out = SurveyOut.model_validate(sent)
        await uow.commit()
    sender = request.app.get(MAIL_SENDER)
    if sender is not None:
        sender.poke()  # due now: no need to wait for the sender's next round
    return web.json_response(out.model_dump(mode="json"), status=201)


# --- opt-outs ----------------------------------------------------------------------------


class OptOutOut(BaseModel):
    customer_id: int
    opted_out: bool
    opted_out_at: datetime | None = None
    source: str | None = None


async def survey_opt_out(request: web.Request) -> web.Response:
    customer_id = path_id(request, "customer_id")
    async with request.app[READS]() as session:
        await get_customer(session, customer_id)
        row = await session.get(SurveyOptOut, customer_id)
    out = OptOutOut(
        customer_id=customer_id,
        opted_out=row is not None,
        opted_out_at=row.opted_out_at if row else None,
        source=row.source if row else None,
    )
    return web.json_response(out.model_dump(mode="json"))


async def set_survey_opt_out(request: web.Request) -> web.Response:
    customer_id = path_id(request, "customer_id")
    async with unit_of_work(request) as uow:
        await get_customer(uow.session, customer_id)
        user = current_user(request)
        await opt_out(
            uow.session, customer_id, source=f"agent:{user.id}", now=request.app[CLOCK].now()
        )
        row = await uow.session.get(SurveyOptOut, customer_id)
        assert row is not None
        out = OptOutOut(
            customer_id=customer_id,
            opted_out=True,
            opted_out_at=row.opted_out_at,
            source=row.source,
        )
        await uow.commit()
    return web.json_response(out.model_dump(mode="json"))


async def clear_survey_opt_out(request: web.Request) -> web.Response:
    customer_id = path_id(request, "customer_id")
    async with unit_of_work(request) as uow:
        await get_customer(uow.session, customer_id)
        await opt_in(uow.session, customer_id)
        await uow.commit()
    return web.json_response(OptOutOut(customer_id=customer_id, opted_out=False).model_dump())


# Fixed paths before /surveys/{id}: aiohttp matches in the order routes were added
# (web.app lists survey_report_views, whose paths are all fixed, before these).
ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v1/surveys/templates",
        survey_templates,
        "Survey templates (which questions a survey asks, per team and/or channel)",
        "surveys",
        STAFF,
        response=TemplateListOut,
    ),
    Endpoint(
        "POST",
        "/api/v1/surveys/templates",
        create_survey_template,
        "Create a survey template (version 1 of its questions)",
        "surveys",
        SUPERVISORS,
        body=TemplateDraft,
        response=TemplateDetailOut,
        status=201,
        errors=(409,),
    ),
    Endpoint(
        "GET",
        "/api/v1/surveys/templates/{id}",
        survey_template,
        "A survey template with every version of its questions",
        "surveys",
        STAFF,
        response=TemplateDetailOut,
    ),
    Endpoint(
        "PATCH",
        "/api/v1/surveys/templates/{id}",
        change_survey_template,
        "Change a template; new questions become a new version (old answers keep theirs)",
        "surveys",
        SUPERVISORS,
        body=TemplatePatch,
        response=TemplateDetailOut,
        errors=(409,),
    ),
    Endpoint(
        "GET",
        "/api/v1/surveys/opt-outs/{customer_id}",
        survey_opt_out,
        "Whether a customer has opted out of surveys",
        "surveys",
        STAFF,
        response=OptOutOut,
    ),
    Endpoint(
        "PUT",
        "/api/v1/surveys/opt-outs/{customer_id}",
        set_survey_opt_out,
        "The customer gets no more surveys",
        "surveys",
        STAFF,
        response=OptOutOut,
    ),
    Endpoint(
        "DELETE",
        "/api/v1/surveys/opt-outs/{customer_id}",
        clear_survey_opt_out,
        "The customer may get surveys again",
        "surveys",
        STAFF,
        response=OptOutOut,
    ),
    Endpoint(
        "GET",
        "/api/v1/surveys",
        surveys,
        "Surveys newest first, by customer or ticket; from/to bound the answer time",
        "surveys",
        STAFF,
        query=SurveyListQuery,
        response=SurveyPageOut,
    ),
    Endpoint(
        "POST",
        "/api/v1/surveys",
        send_survey,
        "Send a survey about a ticket or call now (opt-outs and the period apply)",
        "surveys",
        STAFF,
        body=SurveyRequest,
        response=SurveyOut,
        status=201,
        errors=(409,),
    ),
    Endpoint(
        "GET",
        "/api/v1/surveys/{id}",
        survey,
        "One survey and its answer",
        "surveys",
        STAFF,
        response=SurveyOut,
    ),
]
