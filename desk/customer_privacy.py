"""A customer's rights over their data: everything about them (export), and
erasure that keeps the statistics.

Erasing anonymises instead of deleting: the customer's row stays (renamed,
without phones, e-mail addresses, tags or notes) and so do their calls,
tickets and surveys, with every count, duration, score, timestamp, queue,
agent and team — reports read the same afterwards.  What goes is what says who
they are or what they said: caller numbers and names in the call log, ticket
subjects, descriptions and message bodies, survey comments and free-text
answers, the survey e-mails' addresses and text.  Deleting the customer
instead would cascade to their surveys and change the survey reports.

Erasing twice changes nothing the second time; each request is audited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from desk.customer_audit import Actor, AuditAction, record_change
from desk.customers import get_customer
from desk.events import CustomerUpdated, UnitOfWork
from desk.models import (
    Call,
    Customer,
    CustomerAuditEntry,
    CustomerErasure,
    CustomerPhone,
    OutboxMessage,
    Survey,
    SurveyFollowUp,
    SurveyOptOut,
    Ticket,
    TicketCall,
    TicketChange,
    TicketMessage,
    TimelineEntry,
)
from desk.outbox import withdraw
from desk.surveys import outbox_key

ERASED = "[erased]"
# Ticket history fields whose values are the customer's words.
_TEXT_FIELDS = ("subject", "description")
# A survey summary's quoted comment: 'CSAT 2/5, “too slow”'.
_QUOTED = re.compile(r"(?:, )?“.*”", re.DOTALL)


# --- pure decisions ----------------------------------------------------------------------


def erased_name(customer_id: int) -> str:
    return f"Erased customer {customer_id}"


def without_comment(summary: str) -> str:
    """A survey summary or history value with the customer's quoted words taken out."""
    kept = _QUOTED.sub("", summary).rstrip()
    if kept.endswith(":"):  # "Survey answered: “…”" had nothing but the comment
        return f"{kept} no scores"
    return kept or "no scores"


def scrubbed_answers(answers: dict[str, Any]) -> dict[str, Any]:
    """The answers that are choices (yes/no, numbers), without free text."""
    return {key: value for key, value in answers.items() if not isinstance(value, str)}


def scrubbed_timeline(kind: str, ref_id: int | None, summary: str) -> str:
    """A timeline entry's summary without personal words (calls never had any)."""
    if kind == "call":
        return summary
    if kind == "ticket":
        return f"ticket #{ref_id} opened: {ERASED}"
    if kind == "survey":
        return without_comment(summary)
    return ERASED  # a kind this module does not know yet: assume it quotes the customer


# --- export ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TicketRecord:
    ticket: Ticket
    messages: list[TicketMessage]
    changes: list[TicketChange]
    call_ids: list[int]


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    """Everything stored about one customer."""

    customer: Customer
    erasure: CustomerErasure | None
    survey_opt_out: SurveyOptOut | None
    calls: list[Call]
    tickets: list[TicketRecord]
    surveys: list[Survey]
    timeline: list[TimelineEntry]
    audit: list[CustomerAuditEntry]


async def export_customer(
    session: AsyncSession, customer_id: int, *, actor: Actor, now: datetime
) -> CustomerRecord:
    """Everything about the customer; the export itself is audited (the caller commits)."""
    customer = await get_customer(session, customer_id)
    record_change(session, customer_id, AuditAction.EXPORT, actor=actor, now=now)
    await session.flush()
    tickets = list(
        await session.scalars(
            select(Ticket).where(Ticket.customer_id == customer_id).order_by(Ticket.id)
        )
    )
    ticket_ids = select(Ticket.id).where(Ticket.customer_id == customer_id)
    messages = await session.scalars(
        select(TicketMessage)
        .where(TicketMessage.ticket_id.in_(ticket_ids))
        .order_by(TicketMessage.created_at, TicketMessage.id)
    )
    changes = await session.scalars(
        select(TicketChange)
        .where(TicketChange.ticket_id.in_(ticket_ids))
        .order_by(TicketChange.at, TicketChange.id)
    )
    links = await session.execute(
        select(TicketCall.ticket_id, TicketCall.call_id)
        .where(TicketCall.ticket_id.in_(ticket_ids))
        .order_by(TicketCall.call_id)
    )
    by_ticket: dict[int, TicketRecord] = {t.id: TicketRecord(t, [], [], []) for t in tickets}
    for message in messages:
        by_ticket[message.ticket_id].messages.append(message)
    for change in changes:
        by_ticket[change.ticket_id].changes.append(change)
    for ticket_id, call_id in links:
        by_ticket[ticket_id].call_ids.append(call_id)
    return CustomerRecord(
        customer=customer,
        erasure=await session.get(CustomerErasure, customer_id),
        survey_opt_out=await session.get(SurveyOptOut, customer_id),
        calls=list(
            await session.scalars(
                select(Call)
                .where(Call.customer_id == customer_id)
                .order_by(Call.started_at, Call.id)
            )
        ),
        tickets=list(by_ticket.values()),
        surveys=list(
            await session.scalars(
                select(Survey).where(Survey.customer_id == customer_id).order_by(Survey.id)
            )
        ),
        timeline=list(
            await session.scalars(
                select(TimelineEntry)
                .where(TimelineEntry.customer_id == customer_id)
                .order_by(TimelineEntry.occurred_at, TimelineEntry.id)
            )
        ),
        audit=list(
            await session.scalars(
                select(CustomerAuditEntry)
                .where(CustomerAuditEntry.customer_id == customer_id)
                .order_by(CustomerAuditEntry.at, CustomerAuditEntry.id)
            )
        ),
    )


# --- erasure -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Erasure:
    customer_id: int
    erased_at: datetime  # the first time; later requests change nothing
    already_erased: bool


async def erase_customer(
    uow: UnitOfWork, customer_id: int, *, actor: Actor, now: datetime
) -> Erasure:
    """Anonymise the customer and what they said (see the module's doc); the caller commits."""
    session = uow.session
    customer = await get_customer(session, customer_id)
    numbers = [phone.number_e164 for phone in customer.phones]
    earlier = await session.get(CustomerErasure, customer_id)
    _anonymise(customer, now=now)
    await _erase_calls(session, customer_id, numbers)
    await _erase_tickets(session, customer_id)
    await _erase_surveys(session, customer_id, now=now)
    await _erase_timeline(session, customer_id)
    if earlier is None:
        session.add(
            CustomerErasure(customer_id=customer_id, erased_at=now, erased_by=actor.user_id)
        )
    record_change(session, customer_id, AuditAction.ERASE, actor=actor, now=now)
    await session.flush()
    uow.record(
        CustomerUpdated(occurred_at=now, customer_id=customer_id, display_name=customer.name)
    )
    return Erasure(
        customer_id=customer_id,
        erased_at=earlier.erased_at if earlier is not None else now,
        already_erased=earlier is not None,
    )


def _anonymise(customer: Customer, *, now: datetime) -> None:
    name = erased_name(customer.id)
    unchanged = (
        customer.name == name
        and not customer.notes
        and not customer.phones
        and not customer.emails
        and not customer.tags
    )
    if unchanged:
        return  # keep version and updated_at: nothing happened
    customer.name = name
    customer.search_name = name.casefold()
    customer.notes = ""
    # Without phone numbers the customer no longer matches a caller.
    customer.phones = []
    customer.emails = []
    customer.tags = []
    customer.updated_at = now


async def _erase_calls(session: AsyncSession, customer_id: int, numbers: list[str]) -> None:
    # Their calls, and calls nobody was matched to from numbers only they have (a
    # number is personal data even when the call was not linked; a number shared
    # with another customer may have been that one calling).
    shared = set(
        await session.scalars(
            select(CustomerPhone.number_e164).where(
                CustomerPhone.number_e164.in_(numbers), CustomerPhone.customer_id != customer_id
            )
        )
    )
    own = [number for number in numbers if number not in shared]
    theirs = Call.customer_id == customer_id
    unlinked = and_(Call.customer_id.is_(None), Call.caller_e164.in_(own))
    await session.execute(
        update(Call)
        .where(or_(theirs, unlinked) if own else theirs)
        .values(caller_raw="", caller_e164=None, caller_name="")
        .execution_options(synchronize_session=False)
    )


async def _erase_tickets(session: AsyncSession, customer_id: int) -> None:
    ticket_ids = select(Ticket.id).where(Ticket.customer_id == customer_id).scalar_subquery()
    await session.execute(
        update(Ticket)
        .where(Ticket.customer_id == customer_id, Ticket.subject != ERASED)
        .values(
            subject=ERASED,
            description=case((Ticket.description == "", ""), else_=ERASED),
            # Anyone editing the ticket now gets a 409 instead of writing old text back.
            version=Ticket.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(TicketMessage)
        .where(TicketMessage.ticket_id.in_(ticket_ids))
        .values(body=ERASED)
        .execution_options(synchronize_session=False)
    )
    for column in (TicketChange.old, TicketChange.new):
        await session.execute(
            update(TicketChange)
            .where(
                TicketChange.ticket_id.in_(ticket_ids),
                TicketChange.field.in_(_TEXT_FIELDS),
                column.is_not(None),
            )
            .values({column.key: ERASED})
            .execution_options(synchronize_session=False)
        )
    satisfaction = await session.scalars(
        select(TicketChange).where(
            TicketChange.ticket_id.in_(ticket_ids),
            TicketChange.field == "satisfaction",
            TicketChange.new.is_not(None),
        )
    )
    for change in satisfaction:
        change.new = without_comment(change.new or "")


async def _erase_surveys(session: AsyncSession, customer_id: int, *, now: datetime) -> None:
    surveys = list(await session.scalars(select(Survey).where(Survey.customer_id == customer_id)))
    for survey in surveys:
        key = outbox_key(survey.id)
        unsent = survey.answered_at is None and survey.withdrawn_at is None
        # An e-mail still waiting is taken back: the customer gets nothing more from us.
        if unsent and await withdraw(session, key, now=now, reason="customer erased"):
            survey.withdrawn_at = now
            survey.withdrawn_reason = "customer erased"
        survey.comment = None
        survey.answers = scrubbed_answers(dict(survey.answers or {}))
        survey.recipient = ""
    if not surveys:
        return
    keys = [outbox_key(survey.id) for survey in surveys]
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.dedupe_key.in_(keys))
        .values(to=[], subject=ERASED, body=ERASED, html_body=None)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(SurveyFollowUp)
        .where(
            SurveyFollowUp.survey_id.in_([survey.id for survey in surveys]),
            SurveyFollowUp.note.is_not(None),
        )
        .values(note=ERASED)
        .execution_options(synchronize_session=False)
    )


async def _erase_timeline(session: AsyncSession, customer_id: int) -> None:
    entries = await session.scalars(
        select(TimelineEntry).where(
            TimelineEntry.customer_id == customer_id, TimelineEntry.kind != "call"
        )
    )
    for entry in entries:
        entry.summary = scrubbed_timeline(entry.kind, entry.ref_id, entry.summary)
        if "comment" in entry.data:
            entry.data = {key: value for key, value in entry.data.items() if key != "comment"}
