"""Two writers of one deployment on PostgreSQL: the call log surveying a call while
the screen-pop lane writes another call of the same customer.

The survey locks its customer row, so two triggers for one customer queue; a row
that merely references the customer (a call row) takes PostgreSQL's KEY SHARE lock
on it.  Were the survey's lock FOR UPDATE, it would wait for the pop lane's
transaction, which in turn waits for a call row the call log has inserted: under
load the two lanes deadlocked (found by tests/cluster/test_chaos.py).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from desk.calls import CallStart, call_row_id, log_call_answered, log_call_ended, log_call_started
from desk.clock import FakeClock
from desk.models import CallDirection, CallOutcome, CustomerPhone, Survey
from tests.conftest import Database
from tests.desk.survey_support import seed_people, survey_settings, surveying_sessions

NUMBER = "+49301234567"


def _start(call_id: str, clock: FakeClock) -> CallStart:
    return CallStart(
        call_id=call_id,
        direction=CallDirection.INBOUND,
        caller_raw=NUMBER,
        caller_name="",
        queue="support",
        started_at=clock.now(),
    )


async def test_surveying_a_call_does_not_wait_for_another_call_row_of_the_same_customer(
    postgres: Database, clock: FakeClock
) -> None:
    people = await seed_people(postgres, clock)
    async with postgres.sessions() as session:
        session.add(
            CustomerPhone(
                customer_id=people.customer, number_e164=NUMBER, number_raw=NUMBER, label=""
            )
        )
        await session.commit()
    settings = survey_settings(surveys_call_answered={"enabled": True, "delay_minutes": 0})
    call_log = surveying_sessions(postgres, settings)

    async with postgres.sessions() as pop_lane:
        # The pop lane's transaction: a new call of this customer, not yet committed.
        await call_row_id(
            pop_lane, _start("1795460000.2", clock), caller_e164=NUMBER, customer_id=people.customer
        )

        async def end_an_answered_call() -> None:
            async with call_log() as session:
                call = await log_call_started(session, _start("1795460000.1", clock), region="DE")
                await log_call_answered(session, call, agent_id=None, answered_at=clock.now())
                ended = clock.now() + timedelta(minutes=3)
                await log_call_ended(session, call, outcome=CallOutcome.ANSWERED, ended_at=ended)
                await session.commit()

        # Meanwhile the call log ends an answered call of the same customer.
        await asyncio.wait_for(end_an_answered_call(), timeout=5)
        await pop_lane.commit()

    async with postgres.sessions() as session:
        surveyed = list(await session.scalars(select(Survey.customer_id)))
    assert surveyed == [people.customer]
