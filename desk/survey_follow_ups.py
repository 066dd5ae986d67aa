"""The low-score loop: a bad answer reaches a person and stays until someone looks.

A low answer (``desk.survey_questions.low_score_reasons``) raises one follow-up,
reopens its solved ticket (if configured) and records ``LowScoreReceived`` for
the supervisors' room and the team lead, published after the commit.  The
follow-up is on the board until acknowledged with a note.  A customer who
changes a low answer to a good one within the edit window closes the open
follow-up, with a note saying so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from desk.errors import Conflict, DeskError, NotFound
from desk.events import UnitOfWork
from desk.models import Agent, SurveyFollowUp, Team, Ticket, TicketStatus, User
from desk.survey_events import LowScoreAcknowledged, LowScoreReceived
from desk.survey_questions import Answer, LowScoreRule, low_score_reasons, summary_of
from desk.ticket_changes import SlaKeeper, TicketPatch, change_ticket

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class AnsweredSurvey:
    """The survey an answer was recorded on, as the loop needs it."""

    id: int
    customer_id: int
    ticket_id: int | None
    call_id: int | None
    agent_id: int | None  # the user who handled it
    team_id: int | None


class LowScoreLoop:
    def __init__(self, *, rule: LowScoreRule, reopen_ticket: bool, sla: SlaKeeper | None) -> None:
        self.rule = rule
        self._reopen = reopen_ticket
        self._sla = sla

    async def follow(
        self, uow: UnitOfWork, survey: AnsweredSurvey, answer: Answer, *, first: bool, now: datetime
    ) -> bool:
        """Raise (or, for a changed answer, close) the follow-up; True: the answer is low."""
        reasons = low_score_reasons(answer, self.rule)
        if first and not reasons:
            return False  # nothing was raised before the first answer: nothing to read
        session = uow.session
        existing = await session.scalar(
            select(SurveyFollowUp).where(SurveyFollowUp.survey_id == survey.id)
        )
        if not reasons:
            if existing is not None and existing.acknowledged_at is None:
                note = f"The customer changed the answer: {summary_of(answer)}"
                existing.acknowledged_at, existing.note = now, note
                uow.record(
                    LowScoreAcknowledged(
                        occurred_at=now,
                        follow_up_id=existing.id,
                        survey_id=survey.id,
                        by_user_id=None,
                        note=note,
                        lead_user_id=existing.lead_user_id,
                    )
                )
            return False
        if existing is not None:
            if existing.acknowledged_at is None:
                existing.reason = "; ".join(reasons)[:200]
            return True
        lead = await self._lead_of(session, survey)
        follow_up = SurveyFollowUp(
            survey_id=survey.id,
            raised_at=now,
            reason="; ".join(reasons)[:200],
            reopened_ticket=False,
            lead_user_id=lead,
        )
        session.add(follow_up)
        await session.flush()
        if self._reopen and survey.ticket_id is not None:
            follow_up.reopened_ticket = await self._reopen_ticket(uow, survey.ticket_id, now=now)
        uow.record(
            LowScoreReceived(
                occurred_at=now,
                follow_up_id=follow_up.id,
                survey_id=survey.id,
                customer_id=survey.customer_id,
                ticket_id=survey.ticket_id,
                call_id=survey.call_id,
                agent_user_id=survey.agent_id,
                team_id=survey.team_id,
                lead_user_id=lead,
                csat=answer.csat,
                nps=answer.nps,
                reason=follow_up.reason,
                comment=(answer.comment or "")[:500] or None,
                reopened_ticket=follow_up.reopened_ticket,
            )
        )
        return True

    async def _lead_of(self, session: AsyncSession, survey: AnsweredSurvey) -> int | None:
        """The lead of the assignee's team, else of the survey's team."""
        team_id = None
        if survey.agent_id is not None:
            team_id = await session.scalar(
                select(Agent.team_id).where(Agent.user_id == survey.agent_id)
            )
        team_id = team_id or survey.team_id
        if team_id is None:
            return None
        return await session.scalar(select(Team.lead_user_id).where(Team.id == team_id))

    async def _reopen_ticket(self, uow: UnitOfWork, ticket_id: int, *, now: datetime) -> bool:
        ticket = await uow.session.get(Ticket, ticket_id)
        if ticket is None or TicketStatus(ticket.status) is not TicketStatus.SOLVED:
            return False  # open already, or closed for good
        try:
            # A savepoint: if someone changed the ticket at this very moment, the
            # answer and its alert still stand; the follow-up says it did not reopen.
            async with uow.session.begin_nested():
                _, events = await change_ticket(
                    uow.session,
                    ticket_id,
                    TicketPatch(version=ticket.version, status=TicketStatus.OPEN),
                    actor=None,
                    now=now,
                    sla=self._sla,
                )
        except (DeskError, StaleDataError) as error:
            log.warning("low score on ticket %s: not reopened (%s)", ticket_id, error)
            return False
        for event in events:
            uow.record(event)
        return True


async def acknowledge(
    uow: UnitOfWork, follow_up_id: int, *, actor: User, note: str, now: datetime
) -> SurveyFollowUp:
    """Someone looked at a low score: it leaves the board, with their note."""
    session = uow.session
    follow_up = await session.get(SurveyFollowUp, follow_up_id)
    if follow_up is None:
        raise NotFound(f"follow-up {follow_up_id} not found")
    done = await session.execute(
        update(SurveyFollowUp)
        .where(SurveyFollowUp.id == follow_up_id, SurveyFollowUp.acknowledged_at.is_(None))
        .values(acknowledged_at=now, acknowledged_by=actor.id, note=note)
        .execution_options(synchronize_session=False)
    )
    if not getattr(done, "rowcount", 0):
        raise Conflict(
            f"follow-up {follow_up_id} was acknowledged already",
            fields={"follow_up": "acknowledged"},
        )
    await session.refresh(follow_up)
    uow.record(
        LowScoreAcknowledged(
            occurred_at=now,
            follow_up_id=follow_up.id,
            survey_id=follow_up.survey_id,
            by_user_id=actor.id,
            note=note,
            lead_user_id=follow_up.lead_user_id,
        )
    )
    return follow_up
