"""A customer for agents: the card, open tickets with SLA clocks, click-to-call on every
number and the interaction timeline (calls, tickets, surveys, newest first)."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from desk.caller_card import customer_summary, open_ticket_summaries
from desk.customer_audit import AuditAction
from desk.customers import get_customer, timeline
from desk.errors import NotFound
from web.api.endpoints import STAFF
from web.audit import note_read
from web.pages.sign_in import staff_context, staff_page_user
from web.state import CLOCK, READS

TIMELINE_LIMIT = 100


async def customer_page(request: web.Request) -> web.Response:
    user = staff_page_user(request, STAFF)
    try:
        customer_id = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound(text="No such customer.") from None
    async with request.app[READS]() as session:
        try:
            customer = await get_customer(session, customer_id)
        except NotFound:
            raise web.HTTPNotFound(text="No such customer.") from None
        card = customer_summary(customer)
        tickets = await open_ticket_summaries(session, customer_id, now=request.app[CLOCK].now())
        entries = await timeline(session, customer_id, limit=TIMELINE_LIMIT)
    note_read(request, customer_id, AuditAction.TIMELINE, user=user, detail={"via": "page"})
    context = staff_context(request, user)
    context |= {
        "customer": card,
        "tickets": tickets,
        "entries": entries,
        "config": {"words": context["t"]},
    }
    return aiohttp_jinja2.render_template("desk/customer.html", request, context)


ROUTES = [web.get("/desk/customers/{id}", customer_page)]
