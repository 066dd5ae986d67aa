"""The agent desk: status control, screen pops, click-to-call, a ticket from the call.

The page is rendered on the server; ``static/desk.js`` then connects to socket.io
(``screen_pop_snapshot``, ``screen_pop``, ``agent_state``, ``originate_result``)
and calls the REST API with the session cookie and the CSRF header.  Without
JavaScript the status form still works (it posts here); pops need JavaScript.
"""

from __future__ import annotations

import contextlib
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from cti.link import PbxActionFailed
from desk.models import Role
from web.api.endpoints import STAFF
from web.pages.desk_tickets import TicketView, ticket_rows, ticket_view
from web.pages.sign_in import form_poster, staff_context, staff_page_user
from web.state import CLOCK, READS, SWITCHBOARD
from web.switchboard import PbxUnavailable

# Offered pause reasons (wording keys); the PBX stores the English word.
PAUSE_REASONS = {
    "break": "Break",
    "lunch": "Lunch",
    "training": "Training",
    "back_office": "Back-office work",
}
STATES = ("ready", "ringing", "on_call", "wrap_up", "paused", "logged_out")


def reason_key(pause_reason: str) -> str | None:
    """The offered reason a PBX reason stands for (the PBX may hold any text)."""
    return next((key for key, said in PAUSE_REASONS.items() if said == pause_reason), None)


async def desk_page(request: web.Request) -> web.Response:
    user = staff_page_user(request, STAFF)
    pbx = request.app.get(SWITCHBOARD)
    state: dict[str, Any] | None = None
    if pbx is not None and user.agent is not None:
        # No process holding the link just now: the page says "unknown" until
        # desk.js hears the state.
        with contextlib.suppress(PbxUnavailable):
            state = await pbx.agent_state(user.agent.interface)
    view = ticket_view(request.query.get("tickets", ""))
    async with request.app[READS]() as session:
        tickets = await ticket_rows(session, user, view, now=request.app[CLOCK].now())
    context = staff_context(request, user)
    t = context["t"]
    context |= {
        "live": True,
        "view": view.value,
        "views": [v.value for v in TicketView],
        "tickets": tickets,
        "state": state,
        "pause_reasons": [(key, t[f"reason_{key}"]) for key in PAUSE_REASONS],
        "reason_key": reason_key(state["pause_reason"]) if state else None,
        "is_agent": user.agent is not None,
        "pbx": pbx is not None,
        "supervisor": Role(user.role) in (Role.SUPERVISOR, Role.ADMIN),
        # What desk.js needs: its words and who it is.
        "config": {
            "words": t,
            "agentId": user.agent.id if user.agent is not None else None,
            "reasons": PAUSE_REASONS,
            "state": state,
            "view": view.value,
        },
    }
    return aiohttp_jinja2.render_template("desk/desk.html", request, context)


async def set_status(request: web.Request) -> web.StreamResponse:
    """The status form without JavaScript (desk.js uses PUT /api/v1/agents/me/state)."""
    form = await request.post()
    user = await form_poster(request, form, STAFF)
    status = str(form.get("status", ""))
    reason = PAUSE_REASONS.get(str(form.get("reason", "")), "")
    pbx = request.app.get(SWITCHBOARD)
    if status not in ("ready", "paused") or user.agent is None or pbx is None:
        raise web.HTTPBadRequest(text="Choose ready or paused; you need a phone and a PBX.")
    try:
        await pbx.pause(user.agent.interface, paused=status == "paused", reason=reason)
    except PbxActionFailed as exc:
        raise web.HTTPBadGateway(text=f"The PBX refused: {exc}") from None
    except PbxUnavailable as exc:
        raise web.HTTPServiceUnavailable(text=f"The PBX cannot be reached: {exc}") from None
    raise web.HTTPSeeOther("/desk")


ROUTES = [
    web.get("/desk", desk_page),
    web.post("/desk/status", set_status),
]
