"""Writing answers: one survey, one answer — and many answers per transaction.

The first submit fills the survey row (``UPDATE … WHERE answered_at IS NULL``,
so rapid or concurrent submits cannot make two answers); later submits within
the edit window change it; after that it is final.  A face link sends only the
CSAT score and keeps the other answers.

Group commit: SQLite has one writer, and a transaction per answer spends most
of its time beginning and committing.  While one batch is being written, the
answers that arrive wait and go into the next transaction together (at most
``batch``); each caller hears its own outcome only after that commit.  A batch
that fails is written again one answer per transaction, so one bad answer
cannot take others down with it.  Per answer the batch runs one UPDATE …
RETURNING; timeline entries and ticket history rows are inserted with one
statement per batch; low scores take the follow-up path (``LowScoreLoop``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from desk.events import EventBus, UnitOfWork
from desk.models import Survey, TicketChange, TimelineEntry
from desk.survey_events import AnswerNote, SurveysAnswered
from desk.survey_follow_ups import AnsweredSurvey, LowScoreLoop
from desk.survey_questions import Answer, summary_of

log = logging.getLogger(__name__)
# Core, not ORM: the answer path runs thousands of times a second.
_SURVEYS: Table = Survey.__table__  # type: ignore[assignment]
_RETURNED = (
    _SURVEYS.c.id,
    _SURVEYS.c.customer_id,
    _SURVEYS.c.ticket_id,
    _SURVEYS.c.call_id,
    _SURVEYS.c.agent_id,
    _SURVEYS.c.team_id,
    _SURVEYS.c.csat,
    _SURVEYS.c.nps,
    _SURVEYS.c.ces,
    _SURVEYS.c.comment,
    _SURVEYS.c.may_contact,
    _SURVEYS.c.answers,
)


def _b(name: str) -> Any:
    """A parameter typed like the column it fills (aware datetimes, JSON)."""
    return bindparam(f"b_{name}", type_=_SURVEYS.c[name].type)


_ANSWER_COLUMNS = ("csat", "nps", "ces", "comment", "may_contact", "answers")
_NOW = bindparam("b_now", type_=_SURVEYS.c.answered_at.type)
_EARLIEST = bindparam("b_earliest", type_=_SURVEYS.c.answered_at.type)


def _statements(columns: Sequence[str]) -> tuple[Any, Any]:
    """The first-answer and the change UPDATEs, built once: building a statement
    per answer costs more than running it."""
    values = {name: _b(name) for name in columns}
    first = (
        update(_SURVEYS)
        .where(
            _SURVEYS.c.id == bindparam("b_id"),
            _SURVEYS.c.answered_at.is_(None),
            _SURVEYS.c.withdrawn_at.is_(None),
            _SURVEYS.c.expires_at > _NOW,
        )
        .values(**values, answered_at=_NOW, changed_at=_NOW)
        .returning(*_RETURNED)
    )
    change = (
        update(_SURVEYS)
        .where(
            _SURVEYS.c.id == bindparam("b_id"),
            _SURVEYS.c.answered_at > _EARLIEST,
            _SURVEYS.c.withdrawn_at.is_(None),
        )
        .values(**values, changed_at=_NOW)
        .returning(*_RETURNED)
    )
    return first, change


_FULL = _statements(_ANSWER_COLUMNS)
_CSAT_ONLY = _statements(("csat",))


class Outcome(StrEnum):
    RECORDED = "recorded"  # the first answer
    CHANGED = "changed"  # an edit within the window
    FINAL = "final"  # refused: the window is over (the recorded answer stands)
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    MISSING = "missing"  # no such survey


@dataclass(frozen=True, kw_only=True)
class Recorded:
    outcome: Outcome
    low_score: bool = False


@dataclass(frozen=True, kw_only=True)
class Submission:
    survey_id: int
    answer: Answer
    now: datetime
    only_csat: bool = False  # a face link: keep the other answers


class AnswerWriter:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        loop: LowScoreLoop,
        edit_window: timedelta,
        batch: int = 256,
    ) -> None:
        if batch < 1:
            raise ValueError("a batch holds at least one answer")
        self._sessions, self._bus, self._loop = sessions, bus, loop
        self._edit_window = edit_window
        self._batch = batch
        self._waiting: list[tuple[Submission, asyncio.Future[Recorded]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.transactions = 0

    # --- lifecycle: without a running task every answer is its own transaction ----------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="survey-answers")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        # Answers that were waiting are written now, not dropped.
        while self._waiting:
            await self._flush(self._take())

    async def record(self, submission: Submission) -> Recorded:
        if self._task is None or self._task.done():
            [recorded] = await self._write([submission])
            return recorded
        future: asyncio.Future[Recorded] = asyncio.get_running_loop().create_future()
        self._waiting.append((submission, future))
        self._wake.set()
        return await future

    def _take(self) -> list[tuple[Submission, asyncio.Future[Recorded]]]:
        taken, self._waiting = self._waiting[: self._batch], self._waiting[self._batch :]
        return taken

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                batch = self._take()
                # Once taken, a batch is finished even if we are being stopped.
                finish = asyncio.ensure_future(self._flush(batch))
                try:
                    await asyncio.shield(finish)
                except asyncio.CancelledError:
                    await finish
                    raise

    async def _flush(self, batch: list[tuple[Submission, asyncio.Future[Recorded]]]) -> None:
        try:
            results = await self._write([submission for submission, _ in batch])
        except Exception as error:
            if len(batch) == 1:
                _settle(batch[0][1], error=error)
                return
            log.warning("a batch of %d answers failed (%s); writing one by one", len(batch), error)
            for submission, future in batch:
                try:
                    [result] = await self._write([submission])
                except Exception as single:
                    _settle(future, error=single)
                else:
                    _settle(future, result=result)
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)

    # --- one transaction --------------------------------------------------------------------

    async def _write(self, submissions: Sequence[Submission]) -> list[Recorded]:
        async with UnitOfWork(sessions=self._sessions, bus=self._bus) as uow:
            timeline: list[dict[str, Any]] = []
            history: list[dict[str, Any]] = []
            notes: dict[int | None, list[AnswerNote]] = {}
            results = [
                await self._one(uow, submission, timeline=timeline, history=history, notes=notes)
                for submission in submissions
            ]
            if timeline:
                await uow.session.execute(insert(TimelineEntry), timeline)
            if history:
                await uow.session.execute(insert(TicketChange), history)
            for agent_user_id, answered in notes.items():
                uow.record(
                    SurveysAnswered(
                        occurred_at=submissions[-1].now,
                        agent_user_id=agent_user_id,
                        answers=tuple(answered),
                    )
                )
            await uow.commit()
        self.transactions += 1
        return results

    async def _one(
        self,
        uow: UnitOfWork,
        submission: Submission,
        *,
        timeline: list[dict[str, Any]],
        history: list[dict[str, Any]],
        notes: dict[int | None, list[AnswerNote]],
    ) -> Recorded:
        session, now = uow.session, submission.now
        columns = submission.answer.columns()
        first_update, change_update = _CSAT_ONLY if submission.only_csat else _FULL
        params = {
            "b_id": submission.survey_id,
            "b_now": now,
            "b_earliest": now - self._edit_window,
            **{f"b_{name}": columns[name] for name in _ANSWER_COLUMNS},
        }
        row = (await session.execute(first_update, params)).first()
        first = row is not None
        if row is None:
            row = (await session.execute(change_update, params)).first()
            if row is None:
                return Recorded(outcome=await self._why_not(session, submission))
        answer = Answer(
            csat=row.csat,
            nps=row.nps,
            ces=row.ces,
            comment=row.comment,
            may_contact=row.may_contact,
            others=dict(row.answers or {}),
        )
        survey = AnsweredSurvey(
            id=row.id,
            customer_id=row.customer_id,
            ticket_id=row.ticket_id,
            call_id=row.call_id,
            agent_id=row.agent_id,
            team_id=row.team_id,
        )
        summary = summary_of(answer)
        data: dict[str, Any] = {
            "survey_id": survey.id,
            "ticket_id": survey.ticket_id,
            "call_id": survey.call_id,
            **{k: v for k, v in answer.columns().items() if k != "answers"},
        }
        if first:
            timeline.append(
                {
                    "customer_id": survey.customer_id,
                    "kind": "survey",
                    "ref_id": survey.id,
                    "occurred_at": now,
                    "summary": summary[:500],
                    "data": data,
                }
            )
        else:  # the customer's one timeline entry shows the answer as it is now
            await session.execute(
                update(TimelineEntry)
                .where(TimelineEntry.kind == "survey", TimelineEntry.ref_id == survey.id)
                .values(summary=summary[:500], data=data)
                .execution_options(synchronize_session=False)
            )
        if survey.ticket_id is not None:
            history.append(
                {
                    "ticket_id": survey.ticket_id,
                    "at": now,
                    "actor_id": None,
                    "field": "satisfaction",
                    "old": None,
                    "new": summary.removeprefix("Survey answered: "),
                }
            )
        low = await self._loop.follow(uow, survey, answer, first=first, now=now)
        notes.setdefault(survey.agent_id, []).append(
            AnswerNote(
                survey_id=survey.id,
                customer_id=survey.customer_id,
                ticket_id=survey.ticket_id,
                csat=answer.csat,
                nps=answer.nps,
                changed=not first,
            )
        )
        return Recorded(outcome=Outcome.RECORDED if first else Outcome.CHANGED, low_score=low)

    async def _why_not(self, session: AsyncSession, submission: Submission) -> Outcome:
        row = (
            await session.execute(
                select(
                    _SURVEYS.c.withdrawn_at, _SURVEYS.c.answered_at, _SURVEYS.c.expires_at
                ).where(_SURVEYS.c.id == submission.survey_id)
            )
        ).first()
        if row is None:
            return Outcome.MISSING
        if row.withdrawn_at is not None:
            return Outcome.WITHDRAWN
        if row.answered_at is None:  # not answered, yet the first UPDATE missed: expired
            return Outcome.EXPIRED
        return Outcome.FINAL


def _settle(
    future: asyncio.Future[Recorded],
    *,
    result: Recorded | None = None,
    error: BaseException | None = None,
) -> None:
    if future.done():  # the caller went away (client disconnected); the answer stands
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert result is not None
        future.set_result(result)
