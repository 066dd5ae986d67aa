from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import func, select

from desk.calls import (
    CallStart,
    PopClaim,
    call_row_id,
    claim_pops,
    close_calls_ended_unseen,
    log_call_answered,
    log_call_ended,
    log_call_started,
    recent_calls,
)
from desk.clock import FakeClock
from desk.customers import CustomerDraft, PhoneIn, create_customer, timeline
from desk.events import EventBus, UnitOfWork
from desk.models import Call, CallDirection, CallOutcome
from desk.users import AgentIn, UserDraft, create_user
from tests.conftest import Database


async def _customer(database: Database, clock: FakeClock) -> int:
    async with UnitOfWork(sessions=database.sessions, bus=EventBus()) as uow:
        customer = await create_customer(
            uow,
            CustomerDraft(name="Erika", phones=[PhoneIn(number="+4930123456789")]),
            region="DE",
            now=clock.now(),
        )
        await uow.commit()
        return customer.id


async def _agent(database: Database, clock: FakeClock) -> int:
    async with database.sessions() as session:
        user = await create_user(
            session,
            UserDraft(
                username="alice",
                display_name="Alice",
                password="long enough",
                agent=AgentIn(extension="1001"),
            ),
            now=clock.now(),
        )
        await session.commit()
        assert user.agent is not None
        return user.agent.id


def _start(clock: FakeClock, number: str = "030123456789") -> CallStart:
    return CallStart(
        call_id="1795464262.10",
        direction=CallDirection.INBOUND,
        caller_raw=number,
        caller_name="Erika Mustermann",
        queue="support",
        started_at=clock.now(),
    )


async def test_a_call_is_logged_once_however_often_it_is_seen(
    database: Database, clock: FakeClock
) -> None:
    customer_id = await _customer(database, clock)
    async with database.sessions() as session:
        first = await log_call_started(session, _start(clock), region="DE")
        again = await log_call_started(session, _start(clock), region="DE")
        await session.commit()
        assert first.id == again.id
        assert first.customer_id == customer_id
        assert first.caller_e164 == "+4930123456789"
        assert await session.scalar(select(func.count()).select_from(Call)) == 1


async def test_an_answered_call_gets_wait_and_talk_time_and_a_timeline_entry(
    database: Database, clock: FakeClock
) -> None:
    customer_id = await _customer(database, clock)
    agent_id = await _agent(database, clock)
    async with database.sessions() as session:
        call = await log_call_started(session, _start(clock), region="DE")
        await log_call_answered(
            session, call, agent_id=agent_id, answered_at=clock.now() + timedelta(seconds=2)
        )
        closed = await log_call_ended(
            session, call, outcome=CallOutcome.ANSWERED, ended_at=clock.now() + timedelta(seconds=6)
        )
        closed_twice = await log_call_ended(
            session, call, outcome=CallOutcome.ANSWERED, ended_at=clock.now() + timedelta(seconds=9)
        )
        await session.commit()
        assert (closed, closed_twice) == (True, False)
        assert (call.wait_seconds, call.talk_seconds, call.agent_id) == (2.0, 4.0, agent_id)
        entries = await timeline(session, customer_id)
        assert [e.kind for e in entries] == ["call"]
        assert entries[0].data["outcome"] == "answered"
        assert [c.id for c in await recent_calls(session, customer_id)] == [call.id]


async def test_an_unknown_caller_is_logged_without_a_customer(
    database: Database, clock: FakeClock
) -> None:
    async with database.sessions() as session:
        call = await log_call_started(session, _start(clock, "+14155550100"), region="DE")
        await log_call_ended(session, call, outcome=CallOutcome.ABANDONED, ended_at=clock.now())
        await session.commit()
        assert call.customer_id is None
        assert call.outcome == "abandoned"


async def test_a_pop_is_claimed_once_per_call_agent_and_phase(
    database: Database, clock: FakeClock
) -> None:
    agent_id = await _agent(database, clock)
    ringing = PopClaim("c1", agent_id, "ringing")
    connected = PopClaim("c1", agent_id, "connected")
    async with database.sessions() as session:
        first = await claim_pops(session, [ringing], now=clock.now())
        again = await claim_pops(session, [ringing, connected, connected], now=clock.now())
        await session.commit()
    assert set(first) == {ringing} and set(again) == {connected}
    assert again[connected] > first[ringing]


async def test_a_call_seen_by_two_writers_at_once_is_logged_once(
    database: Database, clock: FakeClock
) -> None:
    start = _start(clock, "+14155550100")
    async with database.sessions() as one, database.sessions() as two:
        first = await log_call_started(one, start, region="DE")
        # The second writer looks while the first's row is not committed yet.
        racing = asyncio.create_task(log_call_started(two, start, region="DE"))
        await asyncio.sleep(0.2)
        await one.commit()
        second = await racing
        await two.commit()
    assert first.id == second.id


async def test_the_pop_and_the_call_log_share_one_row_whichever_comes_first(
    database: Database, clock: FakeClock
) -> None:
    first, second = _start(clock, "+14155550100"), _start(clock, "+14155550101")
    second = replace(second, call_id="c2")
    async with database.sessions() as session:
        popped = await call_row_id(session, first, caller_e164="+14155550100", customer_id=None)
        logged = await log_call_started(session, first, region="DE")
        logged_first = await log_call_started(session, second, region="DE")
        popped_later = await call_row_id(
            session, second, caller_e164="+14155550101", customer_id=None
        )
        await session.commit()
    assert popped == logged.id and popped_later == logged_first.id != popped


async def _open_call(
    database: Database, call_id: str, started_at: datetime, *, answered_after: float | None
) -> None:
    async with database.sessions() as session:
        call = await log_call_started(
            session,
            CallStart(
                call_id=call_id,
                direction=CallDirection.INBOUND,
                caller_raw="+4930123456789",
                caller_name="",
                queue="support",
                started_at=started_at,
            ),
            region="DE",
        )
        if answered_after is not None:
            answered_at = started_at + timedelta(seconds=answered_after)
            await log_call_answered(session, call, agent_id=None, answered_at=answered_at)
        await session.commit()


async def _rows(database: Database) -> dict[str, Call]:
    async with database.sessions() as session:
        return {call.call_id: call for call in await session.scalars(select(Call))}


async def test_after_a_listing_the_open_calls_the_pbx_no_longer_has_are_closed_as_of_it(
    database: Database, clock: FakeClock
) -> None:
    await _customer(database, clock)
    listed_at = clock.now() + timedelta(seconds=60)
    await _open_call(database, "gone.answered", clock.now(), answered_after=5)
    await _open_call(database, "gone.waiting", clock.now(), answered_after=None)
    await _open_call(database, "still.live", clock.now(), answered_after=5)

    async with database.sessions() as session:
        closed = await close_calls_ended_unseen(session, live={"still.live"}, listed_at=listed_at)
        await session.commit()

    assert sorted(call.call_id for call in closed) == ["gone.answered", "gone.waiting"]
    rows = await _rows(database)
    answered, waiting, live = rows["gone.answered"], rows["gone.waiting"], rows["still.live"]
    assert (answered.outcome, answered.ended_at, answered.talk_seconds) == (
        "answered",
        listed_at,
        55.0,
    )
    # Gave up or answered unseen: it cannot be told, so no abandon (and no call back).
    assert (waiting.outcome, waiting.ended_at, waiting.wait_seconds) == ("missed", listed_at, 60.0)
    assert (live.outcome, live.ended_at) == (None, None)
    async with database.sessions() as session:
        entries = await timeline(session, answered.customer_id or 0)
    assert len([e for e in entries if e.kind == "call"]) == 2


async def test_a_call_that_began_after_the_listing_is_not_closed_by_it(
    database: Database, clock: FakeClock
) -> None:
    await _open_call(database, "newer", clock.now() + timedelta(seconds=1), answered_after=None)

    async with database.sessions() as session:
        closed = await close_calls_ended_unseen(session, live=(), listed_at=clock.now())
        await session.commit()

    assert closed == []
    assert (await _rows(database))["newer"].ended_at is None


async def test_a_call_already_ended_is_left_as_it_was(database: Database, clock: FakeClock) -> None:
    await _open_call(database, "done", clock.now(), answered_after=2)
    async with database.sessions() as session:
        call = await session.scalar(select(Call))
        assert call is not None
        ended_at = clock.now() + timedelta(seconds=9)
        await log_call_ended(session, call, outcome=CallOutcome.ANSWERED, ended_at=ended_at)
        await session.commit()

    async with database.sessions() as session:
        closed = await close_calls_ended_unseen(
            session, live=(), listed_at=clock.now() + timedelta(minutes=5)
        )
        await session.commit()

    assert closed == []
    assert (await _rows(database))["done"].ended_at == ended_at
