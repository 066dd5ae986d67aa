"""When a survey is sent: a solved ticket or an answered call writes the survey and
its e-mail in the same transaction, due after the delay — unless fatigue, an
opt-out, an excluded ticket or a switched-off trigger says no; a reopened
ticket takes back a survey that has not gone out."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from desk.calls import (
    CallStart,
    close_calls_ended_unseen,
    log_call_answered,
    log_call_ended,
    log_call_started,
)
from desk.clock import FakeClock
from desk.db import session_factory
from desk.models import (
    CallDirection,
    CallOutcome,
    CustomerPhone,
    OutboxMessage,
    Survey,
    SurveyTemplateVersion,
    TicketStatus,
)
from desk.outbox import outbox_messages
from desk.survey_customers import opt_out
from desk.survey_questions import Question, QuestionKind
from desk.survey_templates import TemplateDraft, TemplatePatch, change_template, create_template
from desk.surveys import scheduler_of
from desk.ticket_changes import TicketPatch, change_ticket
from desk.tickets import get_ticket
from tests.conftest import Database
from tests.desk.survey_support import (
    BASE_URL,
    HALF_HOUR,
    LINK,
    CountedDelivery,
    open_ticket_for,
    seed_people,
    set_status,
    solve,
    survey_settings,
    surveying_sessions,
)


async def _surveys(database: Database) -> list[Survey]:
    async with database.sessions() as session:
        return list(await session.scalars(select(Survey).order_by(Survey.id)))


async def _mail(database: Database) -> list[OutboxMessage]:
    async with database.sessions() as session:
        return await outbox_messages(session)


async def test_the_mail_sender_is_told_of_a_new_survey_once_its_change_is_committed(
    database: Database, clock: FakeClock
) -> None:
    people = await seed_people(database, clock)
    delivery = CountedDelivery()
    sessions = surveying_sessions(database, survey_settings(), delivery)
    ticket_id = await open_ticket_for(sessions, clock, people)
    assert delivery.pokes == 0  # an open ticket asks for no survey

    await solve(sessions, clock, ticket_id)

    assert delivery.pokes == 1


async def test_a_rolled_back_solve_never_wakes_the_mail_sender(
    database: Database, clock: FakeClock
) -> None:
    people = await seed_people(database, clock)
    delivery = CountedDelivery()
    sessions = surveying_sessions(database, survey_settings(), delivery)
    ticket_id = await open_ticket_for(sessions, clock, people)

    async with sessions() as session:
        ticket = await get_ticket(session, ticket_id)
        await change_ticket(
            session,
            ticket_id,
            TicketPatch(version=ticket.version, status=TicketStatus.SOLVED),
            actor=None,
            now=clock.now(),
        )
        await session.rollback()
    async with sessions() as session:
        await session.commit()  # a later commit in a new session is not that survey's

    assert delivery.pokes == 0 and await _surveys(database) == []


async def test_solving_a_ticket_writes_one_survey_and_its_mail_due_after_the_delay(
    database: Database, clock: FakeClock
) -> None:
    people = await seed_people(database, clock)
    sessions = surveying_sessions(database, survey_settings())
    ticket_id = await open_ticket_for(sessions, clock, people)

    await solve(sessions, clock, ticket_id)

    [survey] = await _surveys(database)
    assert (survey.ticket_id, survey.customer_id, survey.agent_id, survey.team_id) == (
        ticket_id,
        people.customer,
        people.agent,
        people.team,
    )
    assert survey.recipient == "erika@example.org"
    assert survey.send_at == clock.now() + HALF_HOUR
    assert survey.expires_at == survey.send_at + timedelta(days=14)
    [mail] = await _mail(database)
    assert mail.dedupe_key == f"survey:{survey.id}"
    assert mail.to == ["erika@example.org"]
    assert mail.next_attempt_at == clock.now() + HALF_HOUR  # the not-before time
    assert f"#{ticket_id}" in mail.subject
    found = LINK.search(mail.body)
    assert found is not None and f"{BASE_URL}/s/{found.group(1)}?csat=5" in mail.body
    assert mail.html_body is not None and mail.html_body.count("?csat=") == 5


async def test_a_customer_surveyed_within_the_period_gets_no_second_survey(
    database: Database, clock: FakeClock
) -> None:
    people = await seed_people(database, clock)
    sessions = surveying_sessions(database, survey_settings(surveys_period_days=30))
    first = await open_ticket_for(sessions, clock, people)
    second = await open_ticket_for(sessions, clock, people)
    await solve(sessions, clock, first)
    clock.advance(timedelta(days=29))

    await solve(sessions, clock, second)

    assert [s.ticket_id for s in await _surveys(database)] == [first]
    assert len(await _mail(database)) == 1


async def test_after_the_period_the_customer_is_surveyed_again(
    database: Database, clock: FakeClock
) -> None:
    people = await seed_people(database, clock)
    sessions = surveying_sessions(database, survey_settings(surveys_period_days=30))
    first = await open_ticket_for(sessions, clock, people)
    second = await open_ticket_for(sessions, clock, people)
    await solve(sessions, clock, first)
    clock.advance(timedelta(days=30, seconds=1))

    await solve(sessions, clock, second)

    assert [s.ticket_id for s in await _surveys(database)] == [first, second]


async def test_a_customer_who_opted_out_gets_no_survey(
    database: Database, clock: FakeClock
) -> None:
    people = await seed_people(database, clock)
    sessions = surveying_sessions(database, survey_settings())
    async with database.sessions() as session:
        await opt_out(session, people.customer, source="phone", now=clock.now())
        await session.commit()
    ticket_id = await open_ticket_for(sessions, clock, people)

    await solve(sessions, clock, ticket_id)

    assert await _surveys(database) == [] and await _mail(database) == []


async def test_a_ticket_tagged_spam_or_duplicate_is_not_surveyed(
    database: Database, clock: FakeClock
) -> None:
    people = await seed_people(database, clock)
    sessions = surveying_sessions(database, survey_settings())
    ticket_id = await open_ticket_for(sessions, clock, people)

    await set_status(sessions, clock, ticket_id, TicketStatus.SOLVED, tags=["duplicate"])

    assert await _surveys(database) == []


async def test_a_customer_without_an_email_address_is_not_surveyed(
    database: Database, clock: FakeClock
) -> None:
    people = await seed_people(database, clock, email="")
    sessions = surveying_sessions(database, survey_settings())
    ticket_id = await open_ticket_for(sessions, clock, people)

    await solve(sessions, clock, ticket_id)

    assert await _surveys(database) == []


async def test_the_solved_trigger_switched_off_sends_nothing(
    database: Database, clock: FakeClock
) -> None:
    people = await seed_people(database, clock)
    settings = survey_settings(surveys_ticket_solved={"enabled": False})
    sessions = surveying_sessions(database, settings)
    ticket_id = await open_ticket_for(sessions, clock, people)

    await solve(sessions, clock, ticket_id)

    assert await _surveys(database) == []


async def test_sessions_without_the_survey_set_up_send_no_surveys(
    database: Database, clock: FakeClock
) -> None:
    people = await seed_people(database, clock)
    ticket_id = await open_ticket_for(database.sessions, clock, people)

    await solve(database.sessions, clock, ticket_id)

    assert await _surveys(database) == []


async def test_reopening_a_ticket_before_the_delay_withdraws_its_unsent_survey(
    database: Database, clock: FakeClock
) -> None:
    people = await seed_people(database, clock)
    sessions = surveying_sessions(database, survey_settings())
    ticket_id = await open_ticket_for(sessions, clock, people)
    await solve(sessions, clock, ticket_id)
    clock.advance(timedelta(minutes=10))

    await set_status(sessions, clock, ticket_id, TicketStatus.OPEN)

    [survey] = await _surveys(database)
    assert survey.withdrawn_at == clock.now() and survey.withdrawn_reason == "ticket reopened"
    [mail] = await _mail(database)
    assert mail.next_attempt_at is None and mail.failed_at is not None  # never due again


async def test_a_withdrawn_survey_does_not_count_against_the_period(
    database: Database, clock: FakeClock
) -> None:
    people = await seed_people(database, clock)
    sessions = surveying_sessions(database, survey_settings())
    ticket_id = await open_ticket_for(sessions, clock, people)
    await solve(sessions, clock, ticket_id)
    await set_status(sessions, clock, ticket_id, TicketStatus.OPEN)
    clock.advance(timedelta(hours=2))

    await solve(sessions, clock, ticket_id)

    surveys = await _surveys(database)
    assert [s.withdrawn_at is None for s in surveys] == [False, True]


async def _answered_call(
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    *,
    talk: timedelta,
    number: str = "+49301234567",
) -> int:
    async with sessions() as session:
        call = await log_call_started(
            session,
            CallStart(
                call_id="1700000000.1",
                direction=CallDirection.INBOUND,
                caller_raw=number,
                caller_name="",
                queue="support",
                started_at=clock.now(),
            ),
            region="DE",
        )
        await log_call_answered(session, call, agent_id=None, answered_at=clock.now())
        await log_call_ended(
            session, call, outcome=CallOutcome.ANSWERED, ended_at=clock.now() + talk
        )
        await session.commit()
        return call.id


async def test_an_answered_call_with_a_known_caller_is_surveyed_when_switched_on(
    database: Database, clock: FakeClock
) -> None:
    people = await seed_people(database, clock)
    settings = survey_settings(surveys_call_answered={"enabled": True, "delay_minutes": 5})
    sessions = surveying_sessions(database, settings)
    await _link_phone(database, people.customer)

    call_id = await _answered_call(sessions, clock, talk=timedelta(minutes=3))

    [survey] = await _surveys(database)
    assert (survey.call_id, survey.trigger, survey.queue, survey.source_channel) == (
        call_id,
        "call_answered",
        "support",
        "phone",
    )
    assert survey.send_at == clock.now() + timedelta(minutes=3 + 5)
    [mail] = await _mail(database)
    assert "call" in mail.subject


async def test_an_answered_call_whose_end_nobody_saw_is_not_surveyed(
    database: Database, clock: FakeClock
) -> None:
    people = await seed_people(database, clock)
    settings = survey_settings(surveys_call_answered={"enabled": True, "delay_minutes": 5})
    sessions = surveying_sessions(database, settings)
    await _link_phone(database, people.customer)
    async with sessions() as session:
        call = await log_call_started(
            session,
            CallStart(
                call_id="1700000000.1",
                direction=CallDirection.INBOUND,
                caller_raw="+49301234567",
                caller_name="",
                queue="support",
                started_at=clock.now(),
            ),
            region="DE",
        )
        await log_call_answered(session, call, agent_id=None, answered_at=clock.now())
        await session.commit()

    async with sessions() as session:
        [closed] = await close_calls_ended_unseen(
            session, live=(), listed_at=clock.now() + timedelta(minutes=3)
        )
        await session.commit()

    assert closed.outcome == CallOutcome.ANSWERED.value
    assert await _surveys(database) == []


async def test_a_call_shorter_than_the_minimum_talk_time_is_not_surveyed(
    database: Database, clock: FakeClock
) -> None:
    people = await seed_people(database, clock)
    settings = survey_settings(surveys_call_answered={"enabled": True, "min_talk_seconds": 30})
    sessions = surveying_sessions(database, settings)
    await _link_phone(database, people.customer)

    await _answered_call(sessions, clock, talk=timedelta(seconds=12))

    assert await _surveys(database) == []


async def _link_phone(database: Database, customer_id: int) -> None:
    async with database.sessions() as session:
        session.add(
            CustomerPhone(
                customer_id=customer_id,
                number_e164="+49301234567",
                number_raw="030 1234567",
                label="",
            )
        )
        await session.commit()


async def test_a_team_template_is_chosen_over_the_default(
    database: Database, clock: FakeClock
) -> None:
    people = await seed_people(database, clock)
    sessions = surveying_sessions(database, survey_settings())
    async with database.sessions() as session:
        template = await create_template(
            session,
            TemplateDraft(
                name="support effort",
                team_id=people.team,
                questions=[Question(key="ces", kind=QuestionKind.CES, label={"en": "How easy?"})],
            ),
            actor_id=None,
            now=clock.now(),
        )
        await session.commit()
    ticket_id = await open_ticket_for(sessions, clock, people)

    await solve(sessions, clock, ticket_id)

    [survey] = await _surveys(database)
    async with database.sessions() as session:
        version = await session.get(SurveyTemplateVersion, survey.template_version_id)
    assert version is not None and version.template_id == template.id
    [mail] = await _mail(database)
    assert "?csat=" not in mail.body  # no CSAT question: one link, no faces


async def test_new_questions_make_a_new_version_and_sent_surveys_keep_theirs(
    database: Database, clock: FakeClock
) -> None:
    people = await seed_people(database, clock)
    sessions = surveying_sessions(database, survey_settings(surveys_period_days=0))
    first = await open_ticket_for(sessions, clock, people)
    await solve(sessions, clock, first)
    async with database.sessions() as session:
        default_id = await session.scalar(select(func.min(SurveyTemplateVersion.template_id)))
        assert default_id is not None
        await change_template(
            session,
            default_id,
            TemplatePatch(
                version=1,
                questions=[
                    Question(
                        key="csat", kind=QuestionKind.CSAT, required=True, label={"en": "Happy?"}
                    )
                ],
            ),
            actor_id=None,
            now=clock.now(),
        )
        await session.commit()
    second = await open_ticket_for(sessions, clock, people)

    await solve(sessions, clock, second)

    old, new = await _surveys(database)
    assert old.template_version_id != new.template_version_id
    async with database.sessions() as session:
        kept = await session.get(SurveyTemplateVersion, old.template_version_id)
    assert kept is not None and len(kept.questions) == 4  # the default's questions, as sent


async def test_two_sessions_factories_do_not_share_the_survey_set_up(
    database: Database, clock: FakeClock
) -> None:
    surveying_sessions(database, survey_settings())
    plain = session_factory(database.engine)
    async with plain() as session:
        assert scheduler_of(session) is None
