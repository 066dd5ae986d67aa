"""A customer's audit log (supervisors), the export of everything about them and
their erasure (admins); see desk.customer_privacy and desk.customer_audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from desk.customer_audit import audit_trail
from desk.customer_privacy import CustomerRecord, erase_customer, export_customer
from web.api.call_views import CallOut
from web.api.endpoints import (
    ADMINS,
    SUPERVISORS,
    Endpoint,
    current_user,
    path_id,
    read_query,
    unit_of_work,
)
from web.api.schemas import CustomerOut, Out, PageQuery, TimelineEntryOut, customer_out
from web.api.survey_views import SurveyOut
from web.api.ticket_views import ChangeOut, MessageOut
from web.audit import AUDIT_READS, actor_of
from web.state import CLOCK, SESSIONS


class AuditEntryOut(Out):
    id: int
    customer_id: int
    at: datetime
    user_id: int | None
    username: str
    role: str
    action: str
    detail: dict[str, Any]
    request_id: str
    address: str


class AuditPageOut(BaseModel):
    items: list[AuditEntryOut]
    total: int
    limit: int
    offset: int


class ExportedTicketOut(Out):
    id: int
    subject: str
    description: str
    status: str
    priority: str
    category: str | None
    channel: str
    assignee_id: int | None
    team_id: int | None
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    solved_at: datetime | None
    closed_at: datetime | None
    calls: list[int]
    messages: list[MessageOut]
    history: list[ChangeOut]


class CustomerExportOut(BaseModel):
    exported_at: datetime
    customer: CustomerOut
    erased_at: datetime | None
    survey_opt_out_at: datetime | None
    calls: list[CallOut]
    tickets: list[ExportedTicketOut]
    surveys: list[SurveyOut]
    timeline: list[TimelineEntryOut]
    audit: list[AuditEntryOut]


class ErasureOut(BaseModel):
    customer_id: int
    erased_at: datetime
    already_erased: bool


def export_out(record: CustomerRecord, *, now: datetime) -> CustomerExportOut:
    return CustomerExportOut(
        exported_at=now,
        customer=customer_out(record.customer),
        erased_at=record.erasure.erased_at if record.erasure is not None else None,
        survey_opt_out_at=(
            record.survey_opt_out.opted_out_at if record.survey_opt_out is not None else None
        ),
        calls=[CallOut.model_validate(call) for call in record.calls],
        tickets=[
            ExportedTicketOut(
                **{
                    name: getattr(item.ticket, name)
                    for name in ExportedTicketOut.model_fields
                    if name not in ("calls", "messages", "history")
                },
                calls=item.call_ids,
                messages=[MessageOut.model_validate(m) for m in item.messages],
                history=[ChangeOut.model_validate(c) for c in item.changes],
            )
            for item in record.tickets
        ],
        surveys=[SurveyOut.model_validate(survey) for survey in record.surveys],
        timeline=[TimelineEntryOut.model_validate(entry) for entry in record.timeline],
        audit=[AuditEntryOut.model_validate(entry) for entry in record.audit],
    )


async def customer_audit(request: web.Request) -> web.Response:
    customer_id = path_id(request)
    query = read_query(request, PageQuery)
    # Reads still waiting in this process's buffer belong in the answer.
    await request.app[AUDIT_READS].flush()
    # No check that the customer exists: a deleted one's trail says who deleted it.
    async with request.app[SESSIONS]() as session:
        entries, total = await audit_trail(
            session, customer_id, limit=query.limit, offset=query.offset
        )
        out = AuditPageOut(
            items=[AuditEntryOut.model_validate(entry) for entry in entries],
            total=total,
            limit=query.limit,
            offset=query.offset,
        )
    return web.json_response(out.model_dump(mode="json"))


async def export(request: web.Request) -> web.Response:
    customer_id = path_id(request)
    now = request.app[CLOCK].now()
    await request.app[AUDIT_READS].flush()
    async with request.app[SESSIONS]() as session:
        record = await export_customer(
            session, customer_id, actor=actor_of(request, current_user(request)), now=now
        )
        out = export_out(record, now=now)
        await session.commit()
    response = web.json_response(out.model_dump(mode="json"))
    response.headers["Content-Disposition"] = f'attachment; filename="customer-{customer_id}.json"'
    response.headers["Cache-Control"] = "no-store"
    return response


async def erase(request: web.Request) -> web.Response:
    customer_id = path_id(request)
    async with unit_of_work(request) as uow:
        erasure = await erase_customer(
            uow,
            customer_id,
            actor=actor_of(request, current_user(request)),
            now=request.app[CLOCK].now(),
        )
        await uow.commit()
    out = ErasureOut(
        customer_id=erasure.customer_id,
        erased_at=erasure.erased_at,
        already_erased=erasure.already_erased,
    )
    return web.json_response(out.model_dump(mode="json"))


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v1/customers/{id}/audit",
        customer_audit,
        "Who read or changed the customer, when, how and from where, newest first",
        "customers",
        SUPERVISORS,
        query=PageQuery,
        response=AuditPageOut,
    ),
    Endpoint(
        "GET",
        "/api/v1/customers/{id}/export",
        export,
        "Everything stored about the customer, as one JSON document (audited)",
        "customers",
        ADMINS,
        response=CustomerExportOut,
    ),
    Endpoint(
        "POST",
        "/api/v1/customers/{id}/erase",
        erase,
        "Erase the customer's personal data: name, contacts, caller numbers, what they "
        "wrote and said; counts, durations, scores and times stay for statistics. "
        "Repeating it changes nothing",
        "customers",
        ADMINS,
        response=ErasureOut,
    ),
]
