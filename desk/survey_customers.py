"""A customer's surveys asked for by hand, and opting out of them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from desk.errors import InvalidInput, NotFound
from desk.models import Call, Survey, SurveyOptOut, Ticket
from desk.survey_policy import MANUAL_POLICY, Skip, Trigger
from desk.surveys import SurveyScheduler, call_topic, schedule, ticket_topic


async def survey_on_request(
    session: AsyncSession,
    scheduler: SurveyScheduler,
    *,
    ticket_id: int | None = None,
    call_id: int | None = None,
    now: datetime,
    ignore_period: bool = False,
) -> Survey | Skip:
    """An agent asks for a survey about a ticket or a call, sent now.  Opt-outs,
    excluded tickets and (unless ``ignore_period``) the period still apply."""
    if (ticket_id is None) == (call_id is None):
        raise InvalidInput("give a ticket_id or a call_id", fields={"ticket_id": "or call_id"})
    if ticket_id is not None:
        ticket = await session.get(Ticket, ticket_id)
        if ticket is None:
            raise NotFound(f"ticket {ticket_id} not found")
        customer_id, excluded = ticket.customer_id, scheduler.policy.excludes(ticket)
        about = await ticket_topic(session, ticket)
    else:
        call = await session.get(Call, call_id)
        if call is None:
            raise NotFound(f"call {call_id} not found")
        customer_id, excluded = call.customer_id, False
        about = await call_topic(session, call)
    if customer_id is None:
        return Skip.NO_CUSTOMER
    return await schedule(
        session,
        scheduler,
        trigger=Trigger.MANUAL,
        policy=MANUAL_POLICY,
        customer_id=customer_id,
        about=about,
        now=now,
        excluded=excluded,
        ignore_period=ignore_period,
    )


async def opt_out(session: AsyncSession, customer_id: int, *, source: str, now: datetime) -> bool:
    """The customer gets no more surveys; False if they had opted out already."""
    if await session.get(SurveyOptOut, customer_id) is not None:
        return False
    session.add(SurveyOptOut(customer_id=customer_id, opted_out_at=now, source=source[:32]))
    await session.flush()
    return True


async def opt_in(session: AsyncSession, customer_id: int) -> bool:
    row = await session.get(SurveyOptOut, customer_id)
    if row is None:
        return False
    await session.delete(row)
    await session.flush()
    return True
