"""Writes what the tracker concluded and sends the pops it decided.

Frames are turned into facts and pop decisions in memory, on the AMI reader,
without waiting for anything; this recorder takes them from a queue, keeps the
call log, claims each pop once in the database and records the domain events,
which are published only after the transaction commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cti.directory import AgentDirectory
from cti.events import (
    CallAnswered,
    CallEnded,
    CallFact,
    CallRinging,
    CallStarted,
    Direction,
    OriginateCompleted,
    Outcome,
)
from cti.notices import OriginateReported, ScreenPopped
from cti.pops import PopDecision, PopPhase
from desk.caller_card import caller_card
from desk.calls import (
    CallStart,
    call_by_pbx_id,
    claim_pop,
    log_call_answered,
    log_call_ended,
    log_call_started,
    note_agent,
)
from desk.clock import Clock
from desk.events import DomainEvent, EventBus, UnitOfWork
from desk.models import Call, CallDirection, Team
from desk.ticket_changes import SlaKeeper
from desk.tickets import open_callback_ticket

log = logging.getLogger(__name__)
BATCH_LIMIT = 256
RETRIES = 3


@dataclass(frozen=True)
class CallbackPolicy:
    """Which ended calls are owed a call back, and whose tickets those become."""

    short_abandon_seconds: float
    teams: dict[str, str] = field(default_factory=dict)  # queue -> team name

    def owed(self, fact: CallEnded) -> bool:
        return (
            fact.outcome is Outcome.ABANDONED
            and fact.direction is Direction.INBOUND
            and fact.wait_s >= self.short_abandon_seconds
        )

    async def team_id(self, session: AsyncSession, queue: str | None) -> int | None:
        name = self.teams.get(queue or "")
        if name is None:
            return None
        return await session.scalar(select(Team.id).where(Team.name == name))


@dataclass(frozen=True, slots=True)
class Work:
    facts: tuple[CallFact, ...] = ()
    decisions: tuple[PopDecision, ...] = ()


@dataclass
class _Pending:
    """Changes to in-memory views that hold only once the transaction commits, and the
    call rows the transaction has loaded: a call's facts and pops in one batch read its
    row once, not once each."""

    shown: list[tuple[int, str, dict[str, Any] | None]] = field(default_factory=list)
    calls: dict[str, Call] = field(default_factory=dict)


class CallRecorder:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        clock: Clock,
        directory: AgentDirectory,
        region: str,
        callbacks: CallbackPolicy | None = None,
        sla: SlaKeeper | None = None,
    ) -> None:
        self._sessions, self._bus, self._clock = sessions, bus, clock
        self._directory, self._region = directory, region
        self._callbacks = callbacks
        self._sla = sla
        self._queue: asyncio.Queue[Work] = asyncio.Queue()
        self._cards: dict[str, dict[str, Any]] = {}
        # What each agent's screen shows now, for browsers that (re)connect.
        self._showing: dict[int, dict[str, dict[str, Any]]] = {}
        self._last_seq = 0
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.recorded_pops = 0
        self.dropped = 0

    def submit(self, work: Work) -> None:
        self._idle.clear()
        self._queue.put_nowait(work)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="call-recorder")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def drained(self) -> None:
        """Wait until everything submitted so far is recorded (tests, shutdown)."""
        await self._idle.wait()

    def showing(self, agent_id: int) -> dict[str, Any]:
        return {"seq": self._last_seq, "pops": list(self._showing.get(agent_id, {}).values())}

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH_LIMIT and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._record_with_retries(batch)
            if self._queue.empty():
                self._idle.set()

    async def _record_with_retries(self, batch: list[Work]) -> None:
        for attempt in range(RETRIES):
            try:
                await self._record(batch)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "recording %d call updates failed (attempt %d)", len(batch), attempt + 1
                )
                await asyncio.sleep(0.2 * (attempt + 1))
        # One bad update must not sink the others: record them one by one.
        for work in batch:
            try:
                await self._record([work])
            except Exception:
                self.dropped += 1
                log.exception("dropped a call update that cannot be recorded: %r", work)

    async def _record(self, batch: list[Work]) -> None:
        # Look agents up before the transaction: a directory reload opens its own
        # session, and on SQLite that would wait for the write lock this very
        # transaction holds.
        now = self._clock.now()
        for interface in _interfaces(batch):
            await self._directory.lookup(interface, now=now)
        pending = _Pending()
        events: list[DomainEvent] = []
        async with UnitOfWork(sessions=self._sessions, bus=self._bus) as uow:
            for work in batch:
                for fact in work.facts:
                    await self._on_fact(uow.session, fact, events, pending)
                for decision in work.decisions:
                    await self._on_decision(uow.session, decision, events, pending)
            for event in events:
                uow.record(event)
            # A browser connecting while the pops go out must find them in its snapshot.
            uow.when_committed(lambda: self._show(pending))
            await uow.commit()
        self.recorded_pops += sum(isinstance(e, ScreenPopped) for e in events)

    def _show(self, pending: _Pending) -> None:
        for agent_id, call_id, body in pending.shown:
            screens = self._showing.setdefault(agent_id, {})
            if body is None:
                screens.pop(call_id, None)
            else:
                screens[call_id] = body
                self._last_seq = max(self._last_seq, int(body["seq"]))

    async def _call(
        self, session: AsyncSession, fact: CallFact, queue: str | None, pending: _Pending
    ) -> Call:
        assert not isinstance(fact, OriginateCompleted)
        known = pending.calls.get(fact.call_id)
        if known is not None:
            if known.queue is None and queue is not None:
                known.queue = queue  # as log_call_started does for a call it has seen
            return known
        direction = getattr(fact, "direction", None) or CallDirection.INBOUND
        start = CallStart(
            call_id=fact.call_id,
            direction=direction,
            caller_raw=getattr(fact, "caller_number_raw", ""),
            caller_name=getattr(fact, "caller_name", ""),
            queue=queue,
            started_at=getattr(fact, "started_at", None) or fact.at,
        )
        call = pending.calls[fact.call_id] = await log_call_started(
            session, start, region=self._region
        )
        return call

    async def _on_fact(
        self,
        session: AsyncSession,
        fact: CallFact,
        events: list[DomainEvent],
        pending: _Pending,
    ) -> None:
        now = self._clock.now()
        if isinstance(fact, CallStarted):
            call = await self._call(session, fact, None, pending)
            if fact.agent_interface:
                agent = self._directory.known(fact.agent_interface)
                if agent is not None:
                    note_agent(call, agent.id)
        elif isinstance(fact, CallRinging):
            call = await self._call(session, fact, fact.queue, pending)
            agent = self._directory.known(fact.agent_interface)
            if agent is not None:
                note_agent(call, agent.id)
        elif isinstance(fact, CallAnswered):
            call = await self._call(session, fact, fact.queue, pending)
            agent = self._directory.known(fact.agent_interface)
            if fact.first or call.agent_id is None:
                await log_call_answered(
                    session, call, agent_id=agent.id if agent else None, answered_at=fact.at
                )
            elif agent is not None:
                note_agent(call, agent.id)
        elif isinstance(fact, CallEnded):
            call = await self._call(session, fact, fact.queue, pending)
            if fact.answered_at is not None and call.answered_at is None:
                agent = self._directory.known(fact.answered_by) if fact.answered_by else None
                await log_call_answered(
                    session,
                    call,
                    agent_id=agent.id if agent else None,
                    answered_at=fact.answered_at,
                )
            closed = await log_call_ended(
                session,
                call,
                outcome=fact.outcome,
                ended_at=fact.at,
                wait_seconds=fact.wait_s,
                talk_seconds=fact.talk_s,
            )
            self._cards.pop(fact.call_id, None)
            if closed and self._callbacks is not None and self._callbacks.owed(fact):
                team_id = await self._callbacks.team_id(session, fact.queue)
                opened = await open_callback_ticket(
                    session, call, team_id=team_id, now=now, sla=self._sla
                )
                if opened is not None:
                    events.append(opened[1])
        elif isinstance(fact, OriginateCompleted):
            agent = self._directory.known(fact.agent_interface)
            if agent is not None:
                body = {
                    "action_id": fact.action_id,
                    "success": fact.success,
                    "reason": fact.reason,
                    "call_id": fact.call_id,
                    "at": fact.at.isoformat(),
                }
                events.append(OriginateReported(occurred_at=now, agent_id=agent.id, body=body))

    async def _card(self, session: AsyncSession, decision: PopDecision) -> dict[str, Any]:
        card = self._cards.get(decision.call_id)
        if card is None:
            card = await caller_card(
                session,
                decision.caller_number_raw,
                region=self._region,
                exclude_call=decision.call_id,
            )
            self._cards[decision.call_id] = card
        return card

    async def _on_decision(
        self,
        session: AsyncSession,
        decision: PopDecision,
        events: list[DomainEvent],
        pending: _Pending,
    ) -> None:
        now = self._clock.now()
        agent = self._directory.known(decision.agent_interface)
        if agent is None:
            log.debug("no desk agent for %s; pop skipped", decision.agent_interface)
            return
        seq = await claim_pop(
            session,
            call_id=decision.call_id,
            agent_id=agent.id,
            phase=decision.phase.value,
            now=now,
        )
        if seq is None:
            return  # this agent already saw this phase of this call
        card = await self._card(session, decision)
        call = pending.calls.get(decision.call_id) or await call_by_pbx_id(
            session, decision.call_id
        )
        body: dict[str, Any] = {
            "call_id": decision.call_id,
            "call_log_id": call.id if call is not None else None,
            "phase": decision.phase.value,
            "seq": seq,
            "reason": decision.reason,
            "caller": {**card["caller"], "name": decision.caller_name},
            "customer": card["customer"],
            "candidates": card["candidates"],
            "queue": decision.queue,
            "direction": call.direction if call is not None else None,
            "agent": {"id": agent.id, "extension": agent.extension},
            "event_at": decision.at.isoformat(),
            "sent_at": now.isoformat(),
        }
        events.append(ScreenPopped(occurred_at=now, agent_id=agent.id, body=body))
        live = decision.phase in (PopPhase.RINGING, PopPhase.CONNECTED)
        pending.shown.append((agent.id, decision.call_id, body if live else None))


def _interfaces(batch: list[Work]) -> set[str]:
    found: set[str] = set()
    for work in batch:
        for fact in work.facts:
            found.update(
                i
                for i in (
                    getattr(fact, "agent_interface", None),
                    getattr(fact, "answered_by", None),
                )
                if i
            )
        found.update(d.agent_interface for d in work.decisions if d.agent_interface)
    return found


async def stop_quietly(recorder: CallRecorder, *, grace: float = 5.0) -> None:
    """Finish what was submitted (for at most ``grace`` seconds), then stop."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(grace):
            await recorder.drained()
    await recorder.stop()
