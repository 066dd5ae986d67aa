"""The agent's tickets: the desk's list (mine / team / unassigned) with SLA clocks, and
one ticket's page with its conversation, status and who else has it open.

Both read the database here and render on the server; ``static/desk.js`` reloads the
list (``/desk/tickets.json``) when ticket or SLA events arrive, ``static/ticket.js``
sends replies and status changes through the REST API and reports presence.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from desk.caller_card import clocks_of, ticket_summary
from desk.errors import NotFound
from desk.models import Customer, Ticket, TicketStatus, User
from desk.ticket_changes import ticket_messages
from desk.tickets import get_ticket
from web.api.endpoints import STAFF
from web.pages.sign_in import staff_context, staff_page_user
from web.state import CLOCK, READS

LIST_LIMIT = 50
CLOSED = (TicketStatus.SOLVED.value, TicketStatus.CLOSED.value)


class TicketView(StrEnum):
    MINE = "mine"
    TEAM = "team"
    UNASSIGNED = "unassigned"


def ticket_view(asked: str) -> TicketView:
    try:
        return TicketView(asked)
    except ValueError:
        return TicketView.MINE


async def ticket_rows(
    session: AsyncSession, user: User, view: TicketView, *, now: datetime
) -> list[dict[str, Any]]:
    """Unsolved tickets of the view, most recently changed first, each with its clocks."""
    query = select(Ticket).where(Ticket.status.not_in(CLOSED))
    if view is TicketView.MINE:
        query = query.where(Ticket.assignee_id == user.id)
    elif view is TicketView.TEAM:
        team_id = user.agent.team_id if user.agent is not None else None
        if team_id is None:
            return []
        query = query.where(Ticket.team_id == team_id)
    else:
        query = query.where(Ticket.assignee_id.is_(None))
    tickets = list(
        (await session.scalars(query.order_by(Ticket.updated_at.desc()).limit(LIST_LIMIT))).all()
    )
    clocks = await clocks_of(session, [t.id for t in tickets])
    return [ticket_summary(t, clocks.get(t.id, ()), now=now) for t in tickets]


async def tickets_json(request: web.Request) -> web.Response:
    user = staff_page_user(request, STAFF)
    view = ticket_view(request.query.get("view", ""))
    async with request.app[READS]() as session:
        rows = await ticket_rows(session, user, view, now=request.app[CLOCK].now())
    return web.json_response({"view": view.value, "tickets": rows})


async def ticket_page(request: web.Request) -> web.Response:
    user = staff_page_user(request, STAFF)
    try:
        ticket_id = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound(text="No such ticket.") from None
    now = request.app[CLOCK].now()
    async with request.app[READS]() as session:
        try:
            ticket = await get_ticket(session, ticket_id)
        except NotFound:
            raise web.HTTPNotFound(text="No such ticket.") from None
        clocks = await clocks_of(session, [ticket.id])
        summary = ticket_summary(ticket, clocks.get(ticket.id, ()), now=now)
        messages = await ticket_messages(session, ticket.id)
        customer = (
            await session.get(Customer, ticket.customer_id)
            if ticket.customer_id is not None
            else None
        )
        authors = {
            row.id: row.display_name
            for row in await session.scalars(
                select(User).where(User.id.in_({m.author_id for m in messages if m.author_id}))
            )
        }
    context = staff_context(request, user)
    context |= {
        "live": True,
        "ticket": ticket,
        "summary": summary,
        "messages": messages,
        "authors": authors,
        "customer": customer,
        "statuses": [s.value for s in TicketStatus],
        "config": {
            "words": context["t"],
            "ticketId": ticket.id,
            "version": ticket.version,
            "userId": user.id,
            "userName": user.display_name,
        },
    }
    return aiohttp_jinja2.render_template("desk/ticket.html", request, context)


ROUTES = [
    web.get("/desk/tickets.json", tickets_json),
    web.get("/desk/tickets/{id}", ticket_page),
]
