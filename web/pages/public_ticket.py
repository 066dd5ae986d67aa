"""The public "contact us" form: customers open a ticket with no account and no JavaScript.

Post/Redirect/Get: a valid form opens the ticket and redirects to a page with its
number; an invalid one is shown again with every value kept and each problem
next to its field.  A signed, time-limited form token and an invisible honeypot
field keep scripted posts out without asking people to solve puzzles.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from pydantic import ValidationError

from desk.errors import InvalidInput
from desk.events import UnitOfWork
from desk.public_tickets import PublicTicketRequest, open_public_ticket
from web.pages.wording import language_of, wording
from web.security import form_token as signed_form_token
from web.security import form_token_is_valid
from web.state import BUS, CLOCK, SESSIONS, SETTINGS, SLA_KEEPER

FORM_FIELDS = ("name", "email", "phone", "subject", "description")
HONEYPOT = "website"


FORM_PURPOSE = "public-ticket"


def form_token(secret: str, now: datetime) -> str:
    return signed_form_token(secret, FORM_PURPOSE, now)


def token_is_valid(secret: str, token: str, now: datetime) -> bool:
    return form_token_is_valid(secret, FORM_PURPOSE, token, now)


def _render(
    request: web.Request,
    *,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> web.Response:
    settings, now = request.app[SETTINGS], request.app[CLOCK].now()
    language = language_of(request)
    context: dict[str, Any] = {
        "t": wording(language),
        "lang": language,
        "values": values,
        "errors": errors,
        "token": form_token(settings.secret_key.get_secret_value(), now),
        "honeypot": HONEYPOT,
    }
    return aiohttp_jinja2.render_template(
        "public/ticket_form.html", request, context, status=status
    )


async def show_form(request: web.Request) -> web.Response:
    return _render(request, values={}, errors={})


async def submit_form(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    values = {name: str(form.get(name, "")) for name in FORM_FIELDS}
    t = wording(language_of(request))
    secret = request.app[SETTINGS].secret_key.get_secret_value()
    now = request.app[CLOCK].now()
    if not token_is_valid(secret, str(form.get("form_token", "")), now):
        return _render(request, values=values, errors={"form": t["expired"]}, status=400)
    if form.get(HONEYPOT):
        # Only a robot fills a field people cannot see; tell it nothing.
        raise web.HTTPSeeOther("/help/tickets/sent")
    try:
        wanted = PublicTicketRequest.model_validate(values)
    except ValidationError as exc:
        return _render(request, values=values, errors=_field_errors(exc, t), status=422)
    try:
        async with UnitOfWork(sessions=request.app[SESSIONS], bus=request.app[BUS]) as uow:
            ticket = await open_public_ticket(
                uow,
                wanted,
                region=request.app[SETTINGS].phone_region,
                now=now,
                sla=request.app[SLA_KEEPER],
            )
            await uow.commit()
    except InvalidInput as exc:
        errors = {name: t.get(f"bad_{name}", problem) for name, problem in exc.fields.items()}
        return _render(request, values=values, errors=errors or {"form": exc.message}, status=422)
    raise web.HTTPSeeOther(f"/help/tickets/sent?ticket={ticket.id}")


async def sent(request: web.Request) -> web.Response:
    number = request.query.get("ticket", "")
    language = language_of(request)
    context = {
        "t": wording(language),
        "lang": language,
        "number": number if number.isdigit() else None,
    }
    return aiohttp_jinja2.render_template("public/ticket_sent.html", request, context)


def _field_errors(exc: ValidationError, t: dict[str, str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "form"
        errors.setdefault(name, t.get(f"bad_{name}", t["bad_form"]))
    return errors


ROUTES = [
    web.get("/help/tickets/new", show_form),
    web.post("/help/tickets", submit_form),
    web.get("/help/tickets/sent", sent),
]
