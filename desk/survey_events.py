"""What surveys tell people, after the commit: an answer came in, a low score
needs someone, someone looked at it.  ``web.notifier`` emits them to their rooms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from desk.events import DomainEvent, Recipients


@dataclass(frozen=True, kw_only=True)
class AnswerNote:
    survey_id: int
    customer_id: int
    ticket_id: int | None
    csat: int | None
    nps: int | None
    changed: bool  # a change of an earlier answer (within the edit window)

    def payload(self) -> dict[str, Any]:
        return {
            "survey_id": self.survey_id,
            "customer_id": self.customer_id,
            "ticket_id": self.ticket_id,
            "csat": self.csat,
            "nps": self.nps,
            "changed": self.changed,
        }


@dataclass(frozen=True, kw_only=True)
class SurveysAnswered(DomainEvent):
    """Answers about one agent's work, recorded in one transaction.  One event per
    agent and transaction, not per answer: at thousands of answers a second, an
    emit per answer would cost more than writing them."""

    name: ClassVar[str] = "survey_answered"
    agent_user_id: int | None
    answers: tuple[AnswerNote, ...]

    @property
    def recipients(self) -> Recipients:
        users = (self.agent_user_id,) if self.agent_user_id else ()
        return Recipients(supervisors=True, users=users)

    def payload(self) -> dict[str, Any]:
        return {
            "occurred_at": self.occurred_at.isoformat(),
            "agent_user_id": self.agent_user_id,
            "answers": [note.payload() for note in self.answers],
        }


@dataclass(frozen=True, kw_only=True)
class LowScoreReceived(DomainEvent):
    """A customer gave a low score: the supervisors and the team lead must look."""

    name: ClassVar[str] = "survey_low_score"
    follow_up_id: int
    survey_id: int
    customer_id: int
    ticket_id: int | None
    call_id: int | None
    agent_user_id: int | None
    team_id: int | None
    lead_user_id: int | None
    csat: int | None
    nps: int | None
    reason: str
    comment: str | None
    reopened_ticket: bool

    @property
    def recipients(self) -> Recipients:
        return Recipients(supervisors=True, users=(self.lead_user_id,) if self.lead_user_id else ())

    def payload(self) -> dict[str, Any]:
        return {
            "occurred_at": self.occurred_at.isoformat(),
            "follow_up_id": self.follow_up_id,
            "survey_id": self.survey_id,
            "customer_id": self.customer_id,
            "ticket_id": self.ticket_id,
            "call_id": self.call_id,
            "agent_user_id": self.agent_user_id,
            "team_id": self.team_id,
            "csat": self.csat,
            "nps": self.nps,
            "reason": self.reason,
            "comment": self.comment,
            "reopened_ticket": self.reopened_ticket,
        }


@dataclass(frozen=True, kw_only=True)
class LowScoreAcknowledged(DomainEvent):
    name: ClassVar[str] = "survey_low_score_acknowledged"
    follow_up_id: int
    survey_id: int
    by_user_id: int | None
    note: str
    lead_user_id: int | None

    @property
    def recipients(self) -> Recipients:
        return Recipients(supervisors=True, users=(self.lead_user_id,) if self.lead_user_id else ())

    def payload(self) -> dict[str, Any]:
        return {
            "occurred_at": self.occurred_at.isoformat(),
            "follow_up_id": self.follow_up_id,
            "survey_id": self.survey_id,
            "by_user_id": self.by_user_id,
            "note": self.note,
        }
