"""Surveys as their page sees them, and the way answers come in.

``SurveyAnswers`` reads a survey for its page (``facts``) and a template
version's questions (cached, to check a submitted form without reading the
survey) and hands answers to the ``AnswerWriter`` (``desk.survey_writer``: one answer per survey,
group commit) whose low scores go round the ``LowScoreLoop``
(``desk.survey_follow_ups``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from desk.errors import NotFound
from desk.events import EventBus
from desk.models import Call, Survey, Ticket
from desk.survey_follow_ups import LowScoreLoop
from desk.survey_questions import Answer, LowScoreRule, Question
from desk.survey_templates import questions_of
from desk.survey_writer import AnswerWriter, Outcome, Recorded, Submission
from desk.ticket_changes import SlaKeeper

__all__ = ["Outcome", "Recorded", "SurveyAnswers", "SurveyFacts", "SurveyState"]


class SurveyState(StrEnum):
    OPEN = "open"  # waiting for an answer
    ANSWERED = "answered"  # answered, still editable
    FINAL = "final"  # answered, edit window over
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


def state_of(
    *,
    withdrawn_at: datetime | None,
    answered_at: datetime | None,
    expires_at: datetime,
    now: datetime,
    edit_window: timedelta,
) -> SurveyState:
    if withdrawn_at is not None:
        return SurveyState.WITHDRAWN
    if answered_at is not None:
        return SurveyState.ANSWERED if now < answered_at + edit_window else SurveyState.FINAL
    if now >= expires_at:
        return SurveyState.EXPIRED
    return SurveyState.OPEN


@dataclass(frozen=True, kw_only=True)
class SurveyGlance:
    """What every survey page needs: its state, questions and language."""

    id: int
    state: SurveyState
    questions: tuple[Question, ...]
    language: str


@dataclass(frozen=True, kw_only=True)
class SurveyFacts(SurveyGlance):
    """Everything the survey page shows."""

    customer_id: int
    ticket_id: int | None
    ticket_subject: str
    call_at: datetime | None
    answered_at: datetime | None
    editable_until: datetime | None
    answer: Answer


def answer_of(survey: Survey) -> Answer:
    return Answer(
        csat=survey.csat,
        nps=survey.nps,
        ces=survey.ces,
        comment=survey.comment,
        may_contact=survey.may_contact,
        others=dict(survey.answers or {}),
    )


class SurveyAnswers:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        reads: async_sessionmaker[AsyncSession],
        bus: EventBus,
        rule: LowScoreRule,
        edit_window: timedelta,
        reopen_ticket: bool,
        sla: SlaKeeper | None = None,
        batch: int = 256,
    ) -> None:
        self._reads = reads
        self.rule = rule
        self.edit_window = edit_window
        self.writer = AnswerWriter(
            sessions=sessions,
            bus=bus,
            loop=LowScoreLoop(rule=rule, reopen_ticket=reopen_ticket, sla=sla),
            edit_window=edit_window,
            batch=batch,
        )
        # Template versions never change, so their questions are read once.
        self._questions: dict[int, tuple[Question, ...]] = {}

    def start(self) -> None:
        """From now on, answers that arrive together are written together."""
        self.writer.start()

    async def stop(self) -> None:
        await self.writer.stop()

    async def record(
        self, survey_id: int, answer: Answer, *, now: datetime, only_csat: bool = False
    ) -> Recorded:
        """Record ``answer`` (``only_csat``: a face link — keep the other answers)."""
        return await self.writer.record(
            Submission(survey_id=survey_id, answer=answer, now=now, only_csat=only_csat)
        )

    async def questions(self, version_id: int) -> tuple[Question, ...]:
        """A template version's questions (cached: versions never change)."""
        known = self._questions.get(version_id)
        if known is not None:
            return known
        async with self._reads() as session:
            return await self._questions_of(session, version_id)

    async def facts(self, survey_id: int, *, now: datetime) -> SurveyFacts:
        async with self._reads() as session:
            survey = await session.get(Survey, survey_id)
            if survey is None:
                raise NotFound(f"survey {survey_id} not found")
            questions = await self._questions_of(session, survey.template_version_id)
            subject, call_at = "", None
            if survey.ticket_id is not None:
                found = await session.scalar(
                    select(Ticket.subject).where(Ticket.id == survey.ticket_id)
                )
                subject = found or ""
            if survey.call_id is not None:
                call_at = await session.scalar(
                    select(Call.started_at).where(Call.id == survey.call_id)
                )
        answered = survey.answered_at
        return SurveyFacts(
            id=survey.id,
            state=state_of(
                withdrawn_at=survey.withdrawn_at,
                answered_at=answered,
                expires_at=survey.expires_at,
                now=now,
                edit_window=self.edit_window,
            ),
            questions=questions,
            language=survey.language,
            customer_id=survey.customer_id,
            ticket_id=survey.ticket_id,
            ticket_subject=subject,
            call_at=call_at,
            answered_at=answered,
            editable_until=answered + self.edit_window if answered is not None else None,
            answer=answer_of(survey),
        )

    async def _questions_of(self, session: AsyncSession, version_id: int) -> tuple[Question, ...]:
        known = self._questions.get(version_id)
        if known is None:
            known = self._questions[version_id] = await questions_of(session, version_id)
        return known
