"""Satisfaction surveys: when one is sent, to whom, and taken back when moot.

A ticket solved or an answered call ends (``survey_follows_ticket``,
``survey_after_call``) writes the survey row and its e-mail into the outbox in
the same transaction as that change, due after the trigger's delay: the outbox
sender delivers it then (``desk.outbox``: retried, never lost, never twice).

Whether to send is decided in one pure function (``decide``): the trigger is
on, the customer has not opted out, has had no survey within the period, can
be reached on an allowed channel, and the ticket is not spam or a duplicate.

The write paths reach the survey set-up through the session: ``cti`` writes the
call log through ``desk.calls`` and cannot be handed a collaborator, so the
composition root puts the ``SurveyScheduler`` into its session factory's
``info`` (``attach``).  A session without one (the CLI, most tests) sends no
surveys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.event import listen
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from desk.models import (
    Agent,
    Call,
    CallOutcome,
    Customer,
    Survey,
    SurveyOptOut,
    Ticket,
    TicketStatus,
)
from desk.outbox import Delivery, enqueue_mail, withdraw
from desk.survey_mail import MailFacts, survey_mail
from desk.survey_policy import Skip, SurveyPolicy, Trigger, TriggerPolicy, decide
from desk.survey_questions import QuestionKind, question_of, questions_from_json
from desk.survey_templates import template_for
from desk.survey_tokens import TokenKey, make_token
from desk.survey_wording import survey_language

SESSION_KEY = "calldesk.surveys"


class SurveyScheduler:
    """The survey set-up the write paths use: policy, the token key, and whoever
    delivers the outbox (told after the commit that a survey e-mail waits)."""

    def __init__(
        self, *, policy: SurveyPolicy, key: TokenKey, delivery: Delivery | None = None
    ) -> None:
        self.policy = policy
        self.key = key
        self.delivery = delivery

    def tell_delivery_after_commit(self, session: AsyncSession) -> None:
        """The sender sleeps until its earliest message is due: a new survey may be
        due sooner.  Only after the commit: a rolled-back survey must not wake it."""
        delivery = self.delivery
        if delivery is None:
            return
        listen(session.sync_session, "after_commit", lambda _session: delivery.poke(), once=True)

    def link(self, survey: Survey) -> str:
        token = make_token(
            self.key,
            survey_id=survey.id,
            expires_at=survey.expires_at,
            questions_id=survey.template_version_id,
        )
        return f"{self.policy.link_base}/s/{token}"


def attach(sessions: async_sessionmaker[AsyncSession], scheduler: SurveyScheduler) -> None:
    """Sessions made by ``sessions`` from now on trigger surveys."""
    info = dict(sessions.kw.get("info") or {})
    info[SESSION_KEY] = scheduler
    sessions.configure(info=info)


def scheduler_of(session: AsyncSession) -> SurveyScheduler | None:
    found = session.info.get(SESSION_KEY)
    return found if isinstance(found, SurveyScheduler) else None


# --- the triggers (called inside the change's own transaction) ---------------------------


async def survey_follows_ticket(
    session: AsyncSession,
    ticket: Ticket,
    *,
    old: TicketStatus,
    new: TicketStatus,
    close_reason: str | None,
    now: datetime,
) -> Survey | Skip | None:
    """A ticket's status changed: survey it when solved; take back a survey not yet
    sent when it is reopened or closed as spam or duplicate."""
    scheduler = scheduler_of(session)
    if scheduler is None or new == old:
        return None
    if new is TicketStatus.SOLVED:
        return await _survey_ticket(session, scheduler, ticket, now=now)
    reopened = old is TicketStatus.SOLVED and new is TicketStatus.OPEN
    if reopened or close_reason in ("spam", "duplicate"):
        reason = "ticket reopened" if reopened else f"closed as {close_reason}"
        await withdraw_pending(session, ticket_id=ticket.id, reason=reason, now=now)
    return None


async def survey_after_call(
    session: AsyncSession, call: Call, *, now: datetime
) -> Survey | Skip | None:
    """An answered call ended: survey the caller (if the trigger is on)."""
    scheduler = scheduler_of(session)
    if scheduler is None or call.outcome != CallOutcome.ANSWERED.value:
        return None
    policy = scheduler.policy.call_answered
    if not policy.enabled:
        return Skip.TRIGGER_OFF
    if call.customer_id is None:
        return Skip.NO_CUSTOMER
    if (call.talk_seconds or 0) < policy.min_talk_seconds:
        return Skip.SHORT_CALL
    return await schedule(
        session,
        scheduler,
        trigger=Trigger.CALL_ANSWERED,
        policy=policy,
        customer_id=call.customer_id,
        about=await call_topic(session, call),
        now=now,
    )


async def _survey_ticket(
    session: AsyncSession, scheduler: SurveyScheduler, ticket: Ticket, *, now: datetime
) -> Survey | Skip:
    if ticket.customer_id is None:
        return Skip.NO_CUSTOMER
    return await schedule(
        session,
        scheduler,
        trigger=Trigger.TICKET_SOLVED,
        policy=scheduler.policy.ticket_solved,
        customer_id=ticket.customer_id,
        about=await ticket_topic(session, ticket),
        excluded=scheduler.policy.excludes(ticket),
        now=now,
    )


async def ticket_topic(session: AsyncSession, ticket: Ticket) -> Topic:
    agent = None
    if ticket.assignee_id is not None:
        agent = await session.scalar(select(Agent).where(Agent.user_id == ticket.assignee_id))
    return Topic(
        ticket_id=ticket.id,
        ticket_subject=ticket.subject,
        agent_user_id=ticket.assignee_id,
        # The team that handled it: the assignee's, else the ticket's.
        team_id=(agent.team_id if agent and agent.team_id else None) or ticket.team_id,
        source_channel=ticket.channel,
    )


async def call_topic(session: AsyncSession, call: Call) -> Topic:
    agent = await session.get(Agent, call.agent_id) if call.agent_id is not None else None
    return Topic(
        call_id=call.id,
        agent_user_id=agent.user_id if agent else None,
        team_id=agent.team_id if agent else None,
        queue=call.queue,
        source_channel="phone",
    )


@dataclass(frozen=True, kw_only=True)
class Topic:
    ticket_id: int | None = None
    ticket_subject: str = ""
    call_id: int | None = None
    agent_user_id: int | None = None
    team_id: int | None = None
    queue: str | None = None
    source_channel: str


async def schedule(
    session: AsyncSession,
    scheduler: SurveyScheduler,
    *,
    trigger: Trigger,
    policy: TriggerPolicy,
    customer_id: int,
    about: Topic,
    now: datetime,
    excluded: bool = False,
    ignore_period: bool = False,
) -> Survey | Skip:
    """Write the survey and its e-mail (due after the delay), or say why not."""
    customer = await _locked_customer(session, customer_id)
    if customer is None:
        return Skip.NO_CUSTOMER
    opted_out = await session.get(SurveyOptOut, customer_id) is not None
    last = await session.scalar(
        select(func.max(Survey.created_at)).where(
            Survey.customer_id == customer_id, Survey.withdrawn_at.is_(None)
        )
    )
    decision = decide(
        trigger=policy,
        available=scheduler.policy.channels_available,
        opted_out=opted_out,
        last_survey_at=last,
        period=scheduler.policy.period,
        excluded=excluded,
        emails=tuple(email.address for email in customer.emails),
        now=now,
        ignore_period=ignore_period,
    )
    if isinstance(decision, Skip):
        return decision
    version = await template_for(
        session, team_id=about.team_id, channel=about.source_channel, now=now
    )
    send_at = now + policy.delay
    survey = Survey(
        template_version_id=version.id,
        trigger=trigger.value,
        channel=decision.channel,
        customer_id=customer.id,
        recipient=decision.address,
        language=survey_language(customer.language),
        ticket_id=about.ticket_id,
        call_id=about.call_id,
        agent_id=about.agent_user_id,
        team_id=about.team_id,
        queue=about.queue,
        source_channel=about.source_channel,
        tier=customer.tier,
        created_at=now,
        send_at=send_at,
        expires_at=send_at + scheduler.policy.lifetime,
        answers={},
    )
    session.add(survey)
    await session.flush()
    questions = questions_from_json(version.questions)
    mail = survey_mail(
        MailFacts(
            language=survey.language,
            customer_name=customer.name,
            link=scheduler.link(survey),
            expires_at=survey.expires_at,
            ticket_id=about.ticket_id,
            ticket_subject=about.ticket_subject,
            one_click=question_of(questions, QuestionKind.CSAT) is not None,
        )
    )
    await enqueue_mail(
        session,
        dedupe_key=outbox_key(survey.id),
        to=[decision.address],
        subject=mail.subject,
        body=mail.text,
        html=mail.html,
        now=now,
        not_before=send_at,
    )
    scheduler.tell_delivery_after_commit(session)
    return survey


def outbox_key(survey_id: int) -> str:
    return f"survey:{survey_id}"


async def _locked_customer(session: AsyncSession, customer_id: int) -> Customer | None:
    # PostgreSQL: two triggers for one customer at once queue here, so the second
    # sees the first's survey ("one per period").  SQLite has one writer anyway.
    # FOR NO KEY UPDATE, not FOR UPDATE: rows that merely reference the customer (a
    # call row the screen-pop lane is inserting) take FOR KEY SHARE, which FOR UPDATE
    # would wait for; the call log and the pops then deadlocked under load.
    query = select(Customer).where(Customer.id == customer_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Customer, key_share=True)
    return await session.scalar(query)


async def withdraw_pending(
    session: AsyncSession, *, ticket_id: int, reason: str, now: datetime
) -> list[int]:
    """Take back the ticket's surveys whose e-mail has not gone out; their links
    then say so.  Surveys already sent stay answerable."""
    pending = await session.scalars(
        select(Survey.id).where(
            Survey.ticket_id == ticket_id,
            Survey.withdrawn_at.is_(None),
            Survey.answered_at.is_(None),
        )
    )
    withdrawn = []
    for survey_id in pending:
        if await withdraw(session, outbox_key(survey_id), now=now, reason=reason):
            withdrawn.append(survey_id)
    if withdrawn:
        await session.execute(
            update(Survey)
            .where(Survey.id.in_(withdrawn))
            .values(withdrawn_at=now, withdrawn_reason=reason[:64])
            .execution_options(synchronize_session=False)
        )
    return withdrawn


# --- the caller card ---------------------------------------------------------------------


async def last_satisfaction(session: AsyncSession, customer_id: int) -> dict[str, Any] | None:
    """The customer's newest answer, for the caller card (one query on
    ``ix_surveys_customer_answered``): CSAT score (None if they skipped it), NPS,
    when, and which ticket or call it was about."""
    row = (
        await session.execute(
            select(
                Survey.id,
                Survey.csat,
                Survey.nps,
                Survey.answered_at,
                Survey.ticket_id,
                Survey.call_id,
            )
            .where(Survey.customer_id == customer_id, Survey.answered_at.is_not(None))
            .order_by(Survey.answered_at.desc(), Survey.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    return {
        "survey_id": row.id,
        "score": row.csat,
        "nps": row.nps,
        "answered_at": row.answered_at,
        "ticket_id": row.ticket_id,
        "call_id": row.call_id,
    }
