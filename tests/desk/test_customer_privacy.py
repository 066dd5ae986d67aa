"""A customer's export and erasure: everything about them comes out; erasure takes
what says who they are or what they said, and keeps every figure statistics use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

import kb.records  # noqa: F401  (its tables are part of "everything else")
from desk.calls import CallStart, log_call_answered, log_call_ended, log_call_started
from desk.clock import FakeClock
from desk.customer_audit import Actor
from desk.customer_privacy import (
    ERASED,
    erase_customer,
    export_customer,
    scrubbed_answers,
    without_comment,
)
from desk.customers import (
    CustomerDraft,
    CustomerPatch,
    EmailIn,
    PhoneIn,
    create_customer,
    match_phone,
    update_customer,
)
from desk.events import EventBus, UnitOfWork
from desk.models import (
    Agent,
    Base,
    Call,
    CallDirection,
    CallOutcome,
    Customer,
    MessageKind,
    OutboxMessage,
    Survey,
    TicketStatus,
    TimelineEntry,
)
from desk.outbox import claim_due, record_sent
from desk.survey_answers import SurveyAnswers
from desk.survey_questions import Answer, LowScoreRule
from desk.survey_reports import SurveyDimension, answered_tally, read_report
from desk.ticket_changes import TicketPatch, add_message, change_ticket
from desk.tickets import get_ticket
from tests.conftest import Database
from tests.desk.survey_support import (
    open_ticket_for,
    seed_people,
    set_status,
    survey_settings,
    surveying_sessions,
)

ERIKA_PHONE = "+49301234567"
OTTO_PHONE = "+49307654321"
ADMIN = Actor(user_id=None, username="root", role="admin", request_id="r-1", address="10.0.0.9")


@dataclass
class World:
    erika: int
    otto: int
    agent: int  # an agent id (calls), not a user id
    erika_tickets: list[int]
    start: Any
    clock: FakeClock


async def _call(
    database: Database, clock: FakeClock, call_id: str, number: str, agent: int, answered: bool
) -> None:
    async with database.sessions() as session:
        call = await log_call_started(
            session,
            CallStart(
                call_id=call_id,
                direction=CallDirection.INBOUND,
                caller_raw=number,
                caller_name="ERIKA M" if number == ERIKA_PHONE else "OTTO",
                queue="support",
                started_at=clock.now(),
            ),
            region="DE",
        )
        clock.advance(timedelta(seconds=20))
        if answered:
            await log_call_answered(session, call, agent_id=agent, answered_at=clock.now())
            clock.advance(timedelta(seconds=90))
        outcome = CallOutcome.ANSWERED if answered else CallOutcome.ABANDONED
        await log_call_ended(session, call, outcome=outcome, ended_at=clock.now())
        await session.commit()


async def _message(database: Database, clock: FakeClock, ticket: int, kind: MessageKind) -> None:
    async with database.sessions() as session:
        await add_message(
            session, ticket, kind=kind, body=f"{kind.value}: Erika, IBAN DE89", author=None,
            now=clock.now(),
        )  # fmt: skip
        await session.commit()


@pytest.fixture
async def world(database: Database, clock: FakeClock) -> World:
    """Erika (to be erased) and Otto: their calls, tickets with messages, and surveys
    answered, sent but unanswered, and still waiting to be sent."""
    start = clock.now()
    people = await seed_people(database, clock)
    async with database.sessions() as session:
        agent = await session.scalar(select(Agent.id).where(Agent.user_id == people.agent))
    assert agent is not None
    # A call from Erika's number before the desk knew it was hers: nobody was matched.
    await _call(database, clock, "early", ERIKA_PHONE, agent, answered=True)
    async with UnitOfWork(sessions=database.sessions, bus=EventBus()) as uow:
        await update_customer(
            uow,
            people.customer,
            CustomerPatch(
                version=1,
                phones=[PhoneIn(number=ERIKA_PHONE, label="mobile")],
                notes="Prefers calls after 5pm; moving to Hamburg",
                tags=["vip"],
            ),
            region="DE",
            now=clock.now(),
        )
        otto = await create_customer(
            uow,
            CustomerDraft(
                name="Otto Normal",
                phones=[PhoneIn(number=OTTO_PHONE)],
                emails=[EmailIn(address="otto@example.org")],
                notes="Otto's note",
            ),
            region="DE",
            now=clock.now(),
        )
        await uow.commit()
    await _call(database, clock, "answered", ERIKA_PHONE, agent, answered=True)
    await _call(database, clock, "abandoned", ERIKA_PHONE, agent, answered=False)
    await _call(database, clock, "otto", OTTO_PHONE, agent, answered=True)

    sessions = surveying_sessions(database, survey_settings(surveys_period_days=0))
    answers = SurveyAnswers(
        sessions=database.sessions,
        reads=database.sessions,
        bus=EventBus(),
        rule=LowScoreRule(),
        edit_window=timedelta(minutes=30),
        reopen_ticket=False,
    )
    # Sent, never answered.
    sent = await open_ticket_for(sessions, clock, people, subject="Erika's parcel is lost")
    await set_status(sessions, clock, sent, TicketStatus.SOLVED)
    clock.advance(timedelta(hours=1))
    async with database.sessions() as session:
        for message in await claim_due(session, now=clock.now(), limit=10):
            await record_sent(session, message, now=clock.now())
        await session.commit()
    # Answered, with a comment.
    answered = await open_ticket_for(sessions, clock, people, subject="Invoice twice for Erika")
    await _message(database, clock, answered, MessageKind.CUSTOMER_MESSAGE)
    await _message(database, clock, answered, MessageKind.PUBLIC_REPLY)
    await _message(database, clock, answered, MessageKind.INTERNAL_NOTE)
    async with sessions() as session:
        ticket = await get_ticket(session, answered)
        await change_ticket(
            session,
            answered,
            TicketPatch(version=ticket.version, subject="Invoice twice, Erika Mustermann"),
            actor=None,
            now=clock.now(),
        )
        await session.commit()
    await set_status(sessions, clock, answered, TicketStatus.SOLVED)
    async with database.sessions() as session:
        survey_id = await session.scalar(select(Survey.id).where(Survey.ticket_id == answered))
    assert survey_id is not None
    await answers.record(
        survey_id, Answer(csat=2, nps=3, comment="Too slow, call me on 0301234567"), now=clock.now()
    )
    # Still waiting to be e-mailed.
    waiting = await open_ticket_for(sessions, clock, people, subject="Erika moved house")
    await set_status(sessions, clock, waiting, TicketStatus.SOLVED)
    # Otto's answered survey.
    ottos = await open_ticket_for(
        sessions, clock, people, subject="Otto's question", customer_id=otto.id
    )
    await set_status(sessions, clock, ottos, TicketStatus.SOLVED)
    async with database.sessions() as session:
        otto_survey = await session.scalar(select(Survey.id).where(Survey.ticket_id == ottos))
    assert otto_survey is not None
    await answers.record(otto_survey, Answer(csat=5, comment="Great help"), now=clock.now())
    clock.advance(timedelta(minutes=5))
    return World(
        erika=people.customer,
        otto=otto.id,
        agent=agent,
        erika_tickets=[sent, answered, waiting],
        start=start,
        clock=clock,
    )


async def _erase(database: Database, world: World) -> Any:
    async with UnitOfWork(sessions=database.sessions, bus=EventBus()) as uow:
        erasure = await erase_customer(uow, world.erika, actor=ADMIN, now=world.clock.now())
        await uow.commit()
    return erasure


async def _statistics(database: Database, world: World) -> dict[str, Any]:
    """What reports are made of: survey figures, and the call log's numbers."""
    end = world.clock.now() + timedelta(days=1)
    async with database.sessions() as session:
        reports = {
            by: await read_report(session, start=world.start, end=end, by=by)
            for by in SurveyDimension
        }
        tally = await answered_tally(session, start=world.start, end=end)
        calls = (
            await session.execute(
                select(
                    Call.customer_id,
                    Call.queue,
                    Call.agent_id,
                    Call.outcome,
                    Call.started_at,
                    Call.wait_seconds,
                    Call.talk_seconds,
                ).order_by(Call.id)
            )
        ).all()
    return {"reports": reports, "answered": tally, "calls": calls}


async def _everything(database: Database) -> dict[str, dict[tuple[Any, ...], dict[str, Any]]]:
    """Every row of every table, by primary key."""
    tables: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
    async with database.sessions() as session:
        for table in Base.metadata.sorted_tables:
            rows = (await session.execute(select(table))).mappings().all()
            key = [column.name for column in table.primary_key.columns]
            tables[table.name] = {tuple(row[k] for k in key): dict(row) for row in rows}
    return tables


def test_a_survey_summary_loses_the_customers_words_and_keeps_the_scores() -> None:
    assert without_comment("Survey answered: CSAT 2/5, NPS 3/10, “Too slow”") == (
        "Survey answered: CSAT 2/5, NPS 3/10"
    )
    assert without_comment("Survey answered: “only words, “quoted” too”") == (
        "Survey answered: no scores"
    )
    assert without_comment("CSAT 4/5, “fine”") == "CSAT 4/5"
    assert without_comment("“fine”") == "no scores"
    assert without_comment("CSAT 5/5") == "CSAT 5/5"


def test_free_text_answers_go_and_choices_stay() -> None:
    answers = {"resolved": True, "reason": "my neighbour Hans", "effort": 3}
    assert scrubbed_answers(answers) == {"resolved": True, "effort": 3}


async def test_erasing_keeps_every_survey_report_figure_and_the_call_logs_numbers(
    database: Database, world: World
) -> None:
    before = await _statistics(database, world)
    await _erase(database, world)
    assert await _statistics(database, world) == before


async def test_erasing_takes_names_numbers_and_what_the_customer_said(
    database: Database, world: World
) -> None:
    await _erase(database, world)
    async with database.sessions() as session:
        erika = await session.get(Customer, world.erika)
        assert erika is not None
        assert (erika.name, erika.notes) == (f"Erased customer {world.erika}", "")
        assert (erika.phones, erika.emails, erika.tags) == ([], [], [])
        calls = (await session.scalars(select(Call).where(Call.call_id != "otto"))).all()
        assert {(c.caller_raw, c.caller_e164, c.caller_name) for c in calls} == {("", None, "")}
        export = await export_customer(session, world.erika, actor=ADMIN, now=world.clock.now())
        surveys = (
            await session.scalars(select(Survey).where(Survey.customer_id == world.erika))
        ).all()
        mails = (await session.scalars(select(OutboxMessage))).all()
    for record in export.tickets:
        assert (record.ticket.subject, record.ticket.description) == (ERASED, "")
        assert {m.body for m in record.messages} <= {ERASED}
        for change in record.changes:
            if change.field in ("subject", "description"):
                assert {change.old, change.new} <= {ERASED, None}
            assert "Erika" not in f"{change.old} {change.new}"
            assert "Too slow" not in f"{change.old} {change.new}"
    assert sum(len(record.messages) for record in export.tickets) == 3
    assert {(s.comment, s.recipient) for s in surveys} == {(None, "")}
    for entry in export.timeline:
        assert "Erika" not in entry.summary and "Too slow" not in entry.summary
        assert "comment" not in entry.data
    assert "CSAT 2/5, NPS 3/10" in {
        e.summary.removeprefix("Survey answered: ") for e in export.timeline
    }
    erikas = [m for m in mails if "otto" not in "".join(m.to)]
    assert erikas and all(
        (m.to, m.subject, m.body, m.html_body) == ([], ERASED, ERASED, None) for m in erikas
    )


async def test_an_erased_customer_no_longer_matches_their_phone_number(
    database: Database, world: World
) -> None:
    async with database.sessions() as session:
        before = await match_phone(session, ERIKA_PHONE, region="DE")
    await _erase(database, world)
    async with database.sessions() as session:
        after = await match_phone(session, ERIKA_PHONE, region="DE")
    assert [c.id for c in before.candidates] == [world.erika]
    assert after.candidates == ()


async def test_a_survey_email_still_waiting_is_withdrawn_and_sent_ones_stay_answerable(
    database: Database, world: World
) -> None:
    await _erase(database, world)
    async with database.sessions() as session:
        surveys = {
            s.ticket_id: s
            for s in await session.scalars(select(Survey).where(Survey.customer_id == world.erika))
        }
    sent, answered, waiting = world.erika_tickets
    assert surveys[waiting].withdrawn_reason == "customer erased"
    assert surveys[sent].withdrawn_at is None and surveys[answered].withdrawn_at is None
    assert (surveys[answered].csat, surveys[answered].nps) == (2, 3)


async def test_erasing_loses_nothing_else(database: Database, world: World) -> None:
    before = await _everything(database)
    await _erase(database, world)
    after = await _everything(database)
    # What erasure may change, table by table; every other column and table stays.
    may_change = {
        "customers": {"name", "search_name", "notes", "updated_at", "version"},
        "calls": {"caller_raw", "caller_e164", "caller_name"},
        "tickets": {"subject", "description", "version"},
        "ticket_messages": {"body"},
        "ticket_changes": {"old", "new"},
        "surveys": {"comment", "answers", "recipient", "withdrawn_at", "withdrawn_reason"},
        "outbox_messages": {
            "to", "subject", "body", "html_body", "next_attempt_at", "failed_at", "last_error"
        },
        "survey_follow_ups": {"note"},
        "timeline_entries": {"summary", "data"},
    }  # fmt: skip
    removed_rows_of_erika = {"customer_phones", "customer_emails", "customer_tags"}
    added = {"customer_audit", "customer_erasures"}
    for table, rows in before.items():
        if table in added:
            continue
        if table in removed_rows_of_erika:
            assert {k: r for k, r in rows.items() if r["customer_id"] != world.erika} == after[
                table
            ]
            continue
        assert rows.keys() == after[table].keys(), table
        for key, row in rows.items():
            changed = {
                column for column, value in row.items() if after[table][key][column] != value
            }
            assert changed <= may_change.get(table, set()), (table, key, changed)
            if row.get("customer_id") == world.otto or (
                table == "customers" and key == (world.otto,)
            ):
                assert not changed, (table, key)
    assert len(after["customer_erasures"]) == 1
    assert [a["action"] for a in after["customer_audit"].values()] == ["erase"]


async def test_erasing_twice_changes_nothing_the_second_time(
    database: Database, world: World
) -> None:
    first = await _erase(database, world)
    once = await _everything(database)
    world.clock.advance(timedelta(hours=1))
    second = await _erase(database, world)
    twice = await _everything(database)
    assert (first.already_erased, second.already_erased) == (False, True)
    assert second.erased_at == first.erased_at
    audit = twice.pop("customer_audit")
    once.pop("customer_audit")
    assert twice == once
    assert [a["action"] for a in audit.values()] == ["erase", "erase"]


async def test_the_export_holds_everything_about_the_customer_and_is_audited(
    database: Database, world: World
) -> None:
    async with database.sessions() as session:
        record = await export_customer(session, world.erika, actor=ADMIN, now=world.clock.now())
        await session.commit()
        timeline = (
            await session.scalars(
                select(TimelineEntry).where(TimelineEntry.customer_id == world.erika)
            )
        ).all()
    assert record.customer.name == "Erika Mustermann"
    assert [p.number_e164 for p in record.customer.phones] == [ERIKA_PHONE]
    assert [c.call_id for c in record.calls] == ["answered", "abandoned"]
    assert [r.ticket.id for r in record.tickets] == sorted(world.erika_tickets)
    answered = next(r for r in record.tickets if r.ticket.id == world.erika_tickets[1])
    assert [m.kind for m in answered.messages] == [
        "customer_message",
        "public_reply",
        "internal_note",
    ]
    assert "subject" in {c.field for c in answered.changes}
    assert len(record.surveys) == 3
    assert "Too slow, call me on 0301234567" in {s.comment for s in record.surveys}
    assert {e.id for e in record.timeline} == {e.id for e in timeline}
    assert [(a.action, a.username, a.address) for a in record.audit] == [
        ("export", "root", "10.0.0.9")
    ]
    assert record.erasure is None
