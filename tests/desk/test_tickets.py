from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from desk.calls import CallStart, get_call, log_call_ended, log_call_started
from desk.clock import FakeClock
from desk.customers import CustomerDraft, PhoneIn, create_customer, timeline
from desk.events import EventBus, UnitOfWork
from desk.models import CallDirection, CallOutcome, TicketChange
from desk.tickets import (
    TicketFromCall,
    linked_calls,
    open_callback_ticket,
    open_ticket_from_call,
)
from desk.users import AgentIn, TeamDraft, UserDraft, create_team, create_user, get_user
from tests.conftest import Database


async def _setup(database: Database, clock: FakeClock) -> dict[str, int]:
    async with UnitOfWork(sessions=database.sessions, bus=EventBus()) as uow:
        customer = await create_customer(
            uow,
            CustomerDraft(name="Hans", phones=[PhoneIn(number="+4930555000111")]),
            region="DE",
            now=clock.now(),
        )
        team = await create_team(uow.session, TeamDraft(name="Support"), now=clock.now())
        alice = await create_user(
            uow.session,
            UserDraft(
                username="alice",
                display_name="Alice",
                password="long enough",
                agent=AgentIn(extension="1001", team_id=team.id),
            ),
            now=clock.now(),
        )
        await uow.commit()
        return {"customer": customer.id, "team": team.id, "alice": alice.id}


async def _call(database: Database, clock: FakeClock, outcome: CallOutcome) -> int:
    async with database.sessions() as session:
        call = await log_call_started(
            session,
            CallStart(
                call_id="c-1",
                direction=CallDirection.INBOUND,
                caller_raw="+4930555000111",
                caller_name="Hans Wartend",
                queue="support",
                started_at=clock.now(),
            ),
            region="DE",
        )
        await log_call_ended(
            session, call, outcome=outcome, ended_at=clock.now() + timedelta(seconds=6)
        )
        await session.commit()
        return call.id


async def test_a_call_becomes_a_ticket_for_its_customer_assigned_to_the_agent(
    database: Database, clock: FakeClock
) -> None:
    ids = await _setup(database, clock)
    call_id = await _call(database, clock, CallOutcome.ANSWERED)
    async with database.sessions() as session:
        call = await get_call(session, call_id)
        alice = await get_user(session, ids["alice"])
        ticket, event = await open_ticket_from_call(
            session, call, TicketFromCall(), actor=alice, now=clock.now()
        )
        await session.commit()
        assert ticket.channel == "phone"
        assert ticket.customer_id == ids["customer"]
        assert ticket.assignee_id == ids["alice"]
        assert ticket.team_id == ids["team"]
        assert ticket.subject == "Call from Hans Wartend"
        assert await linked_calls(session, ticket.id) == [call_id]
        assert event is not None and event.team_id == ids["team"]
        again, second_event = await open_ticket_from_call(
            session, call, TicketFromCall(), actor=alice, now=clock.now()
        )
        assert again.id == ticket.id and second_event is None
        kinds = [e.kind for e in await timeline(session, ids["customer"])]
        assert "ticket" in kinds and "call" in kinds
        audit = (await session.scalars(select(TicketChange))).all()
        assert [(a.field, a.old, a.new, a.actor_id) for a in audit] == [
            ("status", None, "new", ids["alice"])
        ]


async def test_an_abandoned_call_opens_one_high_priority_callback_ticket(
    database: Database, clock: FakeClock
) -> None:
    ids = await _setup(database, clock)
    call_id = await _call(database, clock, CallOutcome.ABANDONED)
    async with database.sessions() as session:
        call = await get_call(session, call_id)
        opened = await open_callback_ticket(session, call, team_id=ids["team"], now=clock.now())
        assert opened is not None
        ticket, _ = opened
        assert (ticket.category, ticket.priority, ticket.team_id) == (
            "callback",
            "high",
            ids["team"],
        )
        assert "+4930555000111" in ticket.subject
        assert (
            await open_callback_ticket(session, call, team_id=ids["team"], now=clock.now()) is None
        )
