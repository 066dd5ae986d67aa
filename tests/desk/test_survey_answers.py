"""Recording answers in desk: one answer per survey, the edit window, and the
caller card's "last satisfaction"."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from desk.caller_card import caller_card
from desk.clock import FakeClock
from desk.events import EventBus
from desk.models import CustomerPhone, Survey
from desk.survey_answers import Outcome, SurveyAnswers
from desk.survey_questions import Answer, LowScoreRule
from desk.surveys import last_satisfaction
from tests.conftest import Database
from tests.desk.survey_support import (
    open_ticket_for,
    seed_people,
    solve,
    survey_settings,
    surveying_sessions,
)


def _answers(database: Database) -> SurveyAnswers:
    return SurveyAnswers(
        sessions=database.sessions,
        reads=database.sessions,
        bus=EventBus(),
        rule=LowScoreRule(),
        edit_window=timedelta(minutes=30),
        reopen_ticket=False,
    )


async def _surveyed_tickets(database: Database, clock: FakeClock, count: int) -> list[int]:
    people = await seed_people(database, clock)
    sessions = surveying_sessions(database, survey_settings(surveys_period_days=0))
    for _ in range(count):
        await solve(sessions, clock, await open_ticket_for(sessions, clock, people))
    async with database.sessions() as session:
        return list(await session.scalars(select(Survey.id).order_by(Survey.id)))


async def test_last_satisfaction_is_the_customers_newest_answer(
    database: Database, clock: FakeClock
) -> None:
    first, second = await _surveyed_tickets(database, clock, 2)
    answers = _answers(database)
    await answers.record(first, Answer(csat=2), now=clock.now())
    clock.advance(timedelta(hours=1))
    await answers.record(second, Answer(csat=5, nps=10), now=clock.now())

    async with database.sessions() as session:
        customer_id = (await session.get(Survey, second)).customer_id  # type: ignore[union-attr]
        last = await last_satisfaction(session, customer_id)

    assert last is not None
    assert (last["survey_id"], last["score"], last["nps"], last["answered_at"]) == (
        second,
        5,
        10,
        clock.now(),
    )
    assert last["ticket_id"] is not None and last["call_id"] is None


async def test_a_customer_who_never_answered_has_no_last_satisfaction(
    database: Database, clock: FakeClock
) -> None:
    await _surveyed_tickets(database, clock, 1)
    async with database.sessions() as session:
        customer_id = (await session.scalar(select(Survey.customer_id))) or 0
        assert await last_satisfaction(session, customer_id) is None


async def test_concurrent_first_answers_make_one_answer_and_the_rest_edits(
    database: Database, clock: FakeClock
) -> None:
    [survey_id] = await _surveyed_tickets(database, clock, 1)
    answers = _answers(database)

    outcomes = await asyncio.gather(
        *(answers.record(survey_id, Answer(csat=1 + n % 5), now=clock.now()) for n in range(12))
    )

    assert sorted(o.outcome for o in outcomes).count(Outcome.RECORDED) == 1
    assert {o.outcome for o in outcomes} <= {Outcome.RECORDED, Outcome.CHANGED}


async def test_a_face_link_after_the_full_answer_changes_only_the_score(
    database: Database, clock: FakeClock
) -> None:
    [survey_id] = await _surveyed_tickets(database, clock, 1)
    answers = _answers(database)
    await answers.record(survey_id, Answer(csat=3, nps=8, comment="ok"), now=clock.now())

    await answers.record(survey_id, Answer(csat=4), now=clock.now(), only_csat=True)

    async with database.sessions() as session:
        survey = await session.get(Survey, survey_id)
    assert survey is not None and (survey.csat, survey.nps, survey.comment) == (4, 8, "ok")


async def test_an_answer_after_the_survey_expired_is_refused(
    database: Database, clock: FakeClock
) -> None:
    [survey_id] = await _surveyed_tickets(database, clock, 1)
    clock.advance(timedelta(days=15))

    recorded = await _answers(database).record(survey_id, Answer(csat=5), now=clock.now())

    assert recorded.outcome is Outcome.EXPIRED


async def test_the_caller_card_shows_the_callers_last_satisfaction_score(
    database: Database, clock: FakeClock
) -> None:
    [survey_id] = await _surveyed_tickets(database, clock, 1)
    await _answers(database).record(survey_id, Answer(csat=2), now=clock.now())
    phone = "+4930555000999"
    async with database.sessions() as session:
        survey = await session.get(Survey, survey_id)
        assert survey is not None
        session.add(
            CustomerPhone(customer_id=survey.customer_id, number_e164=phone, number_raw=phone)
        )
        await session.commit()
        card = await caller_card(session, phone, region="DE", now=clock.now())
    last = card["customer"]["last_satisfaction"]
    assert (last["survey_id"], last["score"], last["answered_at"]) == (
        survey_id,
        2,
        clock.now().isoformat(),
    )
