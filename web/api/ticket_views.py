"""Tickets: open, list, read, and turn a call into a ticket in one click."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from desk.calls import get_call
from desk.models import MessageKind, Ticket, TicketStatus
from desk.ticket_changes import (
    MessageDraft,
    TicketPatch,
    add_message,
    change_ticket,
    ticket_history,
    ticket_messages,
)
from desk.tickets import (
    TicketDraft,
    TicketFromCall,
    get_ticket,
    linked_calls,
    list_tickets,
    open_ticket,
    open_ticket_from_call,
)
from web.api.endpoints import (
    STAFF,
    Endpoint,
    current_user,
    path_id,
    read_body,
    read_query,
    unit_of_work,
)
from web.state import CLOCK, SESSIONS, SETTINGS, SLA_KEEPER


class TicketOut(BaseModel):
    id: int
    subject: str
    description: str
    status: str
    priority: str
    category: str | None
    channel: str
    customer_id: int | None
    assignee_id: int | None
    team_id: int | None
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    version: int
    calls: list[int]


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    author_id: int | None
    body: str
    created_at: datetime


class MessageListOut(BaseModel):
    items: list[MessageOut]


class ChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    at: datetime
    actor_id: int | None
    field: str
    old: str | None
    new: str | None


class HistoryOut(BaseModel):
    items: list[ChangeOut]


class TicketPageOut(BaseModel):
    items: list[TicketOut]
    total: int


class TicketQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: TicketStatus | None = None
    category: Annotated[str, StringConstraints(max_length=64)] | None = None
    customer_id: int | None = None
    assignee_id: int | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


def ticket_out(ticket: Ticket, calls: list[int]) -> TicketOut:
    return TicketOut(
        id=ticket.id,
        subject=ticket.subject,
        description=ticket.description,
        status=ticket.status,
        priority=ticket.priority,
        category=ticket.category,
        channel=ticket.channel,
        customer_id=ticket.customer_id,
        assignee_id=ticket.assignee_id,
        team_id=ticket.team_id,
        tags=list(ticket.tags or []),
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        version=ticket.version,
        calls=calls,
    )


async def create(request: web.Request) -> web.Response:
    draft = await read_body(request, TicketDraft)
    async with unit_of_work(request) as uow:
        ticket, event = await open_ticket(
            uow.session,
            draft,
            actor_id=current_user(request).id,
            now=request.app[CLOCK].now(),
            sla=request.app[SLA_KEEPER],
        )
        uow.record(event)
        out = ticket_out(ticket, [])
        await uow.commit()
    return web.json_response(out.model_dump(mode="json"), status=201)


async def from_call(request: web.Request) -> web.Response:
    call_log_id = path_id(request)
    extra = await read_body(request, TicketFromCall)
    async with unit_of_work(request) as uow:
        call = await get_call(uow.session, call_log_id)
        ticket, event = await open_ticket_from_call(
            uow.session,
            call,
            extra,
            actor=current_user(request),
            now=request.app[CLOCK].now(),
            sla=request.app[SLA_KEEPER],
        )
        if event is not None:
            uow.record(event)
        await uow.session.flush()
        out = ticket_out(ticket, await linked_calls(uow.session, ticket.id))
        await uow.commit()
    return web.json_response(out.model_dump(mode="json"), status=201 if event else 200)


async def update(request: web.Request) -> web.Response:
    ticket_id = path_id(request)
    patch = await read_body(request, TicketPatch)
    async with unit_of_work(request) as uow:
        ticket, events = await change_ticket(
            uow.session,
            ticket_id,
            patch,
            actor=current_user(request),
            now=request.app[CLOCK].now(),
            sla=request.app[SLA_KEEPER],
        )
        for event in events:
            uow.record(event)
        out = ticket_out(ticket, await linked_calls(uow.session, ticket.id))
        await uow.commit()
    return web.json_response(out.model_dump(mode="json"))


async def post_message(request: web.Request) -> web.Response:
    ticket_id = path_id(request)
    draft = await read_body(request, MessageDraft)
    async with unit_of_work(request) as uow:
        message, events = await add_message(
            uow.session,
            ticket_id,
            kind=MessageKind(draft.kind),
            body=draft.body,
            author=current_user(request),
            now=request.app[CLOCK].now(),
            sla=request.app[SLA_KEEPER],
            reopen_window=timedelta(days=request.app[SETTINGS].tickets_reopen_days),
        )
        for event in events:
            uow.record(event)
        out = MessageOut.model_validate(message)
        await uow.commit()
    return web.json_response(out.model_dump(mode="json"), status=201)


async def messages(request: web.Request) -> web.Response:
    ticket_id = path_id(request)
    async with request.app[SESSIONS]() as session:
        await get_ticket(session, ticket_id)
        items = [MessageOut.model_validate(m) for m in await ticket_messages(session, ticket_id)]
    return web.json_response(MessageListOut(items=items).model_dump(mode="json"))


async def history(request: web.Request) -> web.Response:
    ticket_id = path_id(request)
    async with request.app[SESSIONS]() as session:
        await get_ticket(session, ticket_id)
        items = [ChangeOut.model_validate(c) for c in await ticket_history(session, ticket_id)]
    return web.json_response(HistoryOut(items=items).model_dump(mode="json"))


async def index(request: web.Request) -> web.Response:
    query = read_query(request, TicketQuery)
    async with request.app[SESSIONS]() as session:
        tickets, total = await list_tickets(
            session,
            status=query.status,
            category=query.category,
            customer_id=query.customer_id,
            assignee_id=query.assignee_id,
            limit=query.limit,
            offset=query.offset,
        )
        items = [ticket_out(t, await linked_calls(session, t.id)) for t in tickets]
    return web.json_response(TicketPageOut(items=items, total=total).model_dump(mode="json"))


async def read(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        ticket = await get_ticket(session, path_id(request))
        out = ticket_out(ticket, await linked_calls(session, ticket.id))
    return web.json_response(out.model_dump(mode="json"))


ENDPOINTS = [
    Endpoint(
        "POST",
        "/api/v1/tickets",
        create,
        "Open a ticket",
        "tickets",
        STAFF,
        body=TicketDraft,
        response=TicketOut,
        status=201,
    ),
    Endpoint(
        "GET",
        "/api/v1/tickets",
        index,
        "Tickets, newest first",
        "tickets",
        STAFF,
        query=TicketQuery,
        response=TicketPageOut,
    ),
    Endpoint(
        "GET", "/api/v1/tickets/{id}", read, "One ticket", "tickets", STAFF, response=TicketOut
    ),
    Endpoint(
        "PATCH",
        "/api/v1/tickets/{id}",
        update,
        "Change status, priority, category, subject, assignee or team (send the version "
        "you read; a stale one is refused with 409; a forbidden status change with 422)",
        "tickets",
        STAFF,
        body=TicketPatch,
        response=TicketOut,
        errors=(409,),
    ),
    Endpoint(
        "POST",
        "/api/v1/tickets/{id}/messages",
        post_message,
        "Add a public reply or an internal note",
        "tickets",
        STAFF,
        body=MessageDraft,
        response=MessageOut,
        status=201,
    ),
    Endpoint(
        "GET",
        "/api/v1/tickets/{id}/messages",
        messages,
        "Replies, notes and customer messages, oldest first",
        "tickets",
        STAFF,
        response=MessageListOut,
    ),
    Endpoint(
        "GET",
        "/api/v1/tickets/{id}/history",
        history,
        "The audit trail: who changed what, when, from what to what",
        "tickets",
        STAFF,
        response=HistoryOut,
    ),
    Endpoint(
        "POST",
        "/api/v1/calls/{id}/ticket",
        from_call,
        "Turn a call into a ticket (one click on the pop); a second click returns the "
        "same ticket with 200",
        "tickets",
        STAFF,
        body=TicketFromCall,
        response=TicketOut,
        status=201,
        repeat_status=200,
    ),
]
