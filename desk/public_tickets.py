"""Tickets customers open themselves, through the public form, without an account.

The customer is found by e-mail address (then by phone number) or created, so
what they send lands on their timeline beside their calls and earlier tickets.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator
from sqlalchemy import select

from desk.customers import CustomerDraft, EmailIn, PhoneIn, create_customer, match_phone
from desk.errors import InvalidInput
from desk.events import UnitOfWork
from desk.models import Customer, CustomerEmail, Ticket, TicketChannel
from desk.phones import NumberStatus, read_number
from desk.ticket_changes import SlaKeeper
from desk.tickets import TicketDraft, open_ticket

Line = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class PublicTicketRequest(BaseModel):
    """What the public form asks for; all text, as a browser posts it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Line
    email: Annotated[str, StringConstraints(to_lower=True, min_length=3, max_length=320)]
    phone: Annotated[str, StringConstraints(max_length=64)] = ""
    subject: Line
    description: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]

    @field_validator("email")
    @classmethod
    def _looks_like_email(cls, value: str) -> str:
        # The same check customers get everywhere else.
        return EmailIn(address=value).address


async def open_public_ticket(
    uow: UnitOfWork,
    request: PublicTicketRequest,
    *,
    region: str,
    now: datetime,
    sla: SlaKeeper | None = None,
) -> Ticket:
    """Open the ticket for the customer the request names; the events go with ``uow``."""
    session = uow.session
    phone = request.phone
    if phone and read_number(phone, region=region).status is not NumberStatus.VALID:
        raise InvalidInput(
            "the phone number is not one we can call back",
            fields={"phone": "not a phone number we can call back"},
        )
    customer = await _customer_by_email(uow, request.email)
    if customer is None and phone:
        match = await match_phone(session, phone, region=region)
        customer = match.candidates[0] if len(match.candidates) == 1 else None
    if customer is None:
        draft = CustomerDraft(
            name=request.name,
            emails=[EmailIn(address=request.email)],
            phones=[PhoneIn(number=phone)] if phone else [],
        )
        customer = await create_customer(uow, draft, region=region, now=now)
    ticket, opened = await open_ticket(
        session,
        TicketDraft(
            subject=request.subject,
            description=request.description,
            channel=TicketChannel.WEB,
            customer_id=customer.id,
        ),
        actor_id=None,
        now=now,
        sla=sla,
    )
    uow.record(opened)
    return ticket


async def _customer_by_email(uow: UnitOfWork, address: str) -> Customer | None:
    rows = await uow.session.scalars(
        select(Customer)
        .join(CustomerEmail, CustomerEmail.customer_id == Customer.id)
        .where(CustomerEmail.address == address)
        .order_by(Customer.id)
    )
    found = list(rows.unique().all())
    # An address shared by several records is not guessed: the agent merges later.
    return found[0] if len(found) == 1 else None
