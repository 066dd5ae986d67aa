"""Writes what the tracker concluded and sends the pops it decided.

Frames are turned into facts and pop decisions in memory, on the AMI reader,
without waiting for anything; this recorder takes them from two queues (pops,
and the call log), claims each pop once in the database, keeps the call log and
records the domain events, which are published only after their transaction
commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cti.directory import AgentDirectory, AgentRef
from cti.events import (
    CallAnswered,
    CallEnded,
    CallFact,
    CallRinging,
    CallsListedLive,
    CallStarted,
    Direction,
    OriginateCompleted,
    Outcome,
)
from cti.notices import OriginateReported, ScreenPopped
from cti.pops import PopDecision, PopPhase
from desk.background import OwnedTask
from desk.caller_card import caller_card
from desk.calls import (
    CallStart,
    PopClaim,
    call_row_id,
    claim_pops,
    claimed_pops,
    close_calls_ended_unseen,
    log_call_answered,
    log_call_ended,
    log_call_started,
    note_agent,
)
from desk.clock import Clock
from desk.events import DomainEvent, EventBus, UnitOfWork
from desk.inline_sqlite import urgent_writes
from desk.log_context import about_call
from desk.models import Call, CallDirection, Team
from desk.ticket_changes import SlaKeeper
from desk.tickets import open_callback_ticket

log = logging.getLogger(__name__)
POP_BATCH = 256
LOG_BATCH = 256
# Caller cards and call row ids of this many recent calls are kept.
CACHE_LIMIT = 10_000
RETRIES = 3
# Phases that stay on the agent's screen (and in a reconnecting browser's snapshot).
_LIVE = (PopPhase.RINGING, PopPhase.CONNECTED)
# Screen-pop latency buckets (seconds): a pop takes milliseconds when all is well.
POP_LATENCY_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ArticleSuggester(Protocol):
    """Knowledge-base answers for a known caller's open problems, read in the card's
    own read session (the composition root plugs the knowledge base in)."""

    async def __call__(
        self, session: AsyncSession, *, customer_id: int, language: str | None
    ) -> list[dict[str, Any]]: ...


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
    """The call rows a log transaction has loaded: a call's facts in one batch read
    its row once, not once each."""

    calls: dict[str, Call] = field(default_factory=dict)


class _Lane:
    """One queue of work, recorded in batches by one task, one transaction a batch."""

    def __init__(
        self, name: str, record: Callable[[list[Any]], Awaitable[None]], *, batch: int
    ) -> None:
        self._name, self._record, self._batch = name, record, batch
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task = OwnedTask(name, self._run)
        self.dropped = 0

    def put(self, items: Iterable[Any]) -> None:
        for item in items:
            self._idle.clear()
            self._queue.put_nowait(item)

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def drained(self) -> None:
        while not self._idle.is_set():
            await self._idle.wait()

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._record_with_retries(batch)
            if self._queue.empty():
                self._idle.set()

    async def _record_with_retries(self, batch: list[Any]) -> None:
        for attempt in range(RETRIES):
            try:
                await self._record(batch)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "%s: recording %d items failed (attempt %d)",
                    self._name,
                    len(batch),
                    attempt + 1,
                )
                await asyncio.sleep(0.2 * (attempt + 1))
        # One bad item must not sink the others: record them one by one.
        for item in batch:
            try:
                await self._record([item])
            except Exception:
                self.dropped += 1
                log.exception("%s: dropped an item that cannot be recorded: %r", self._name, item)


class LatencyTally:
    """Latencies counted into fixed buckets since start, as plain numbers: whoever
    exports them (Prometheus, a benchmark) reads them without cti knowing how."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = POP_LATENCY_BOUNDS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: over the highest bound
        self.count = 0
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.count += 1
        self.sum += seconds

    def cumulative(self) -> list[tuple[float, int]]:
        """``(bound, how many took at most bound)`` for each bound, lowest first."""
        running, out = 0, []
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            out.append((bound, running))
        return out


class _Recent(OrderedDict[str, Any]):
    """A dict that forgets its oldest entries beyond ``limit`` (cards, call row ids)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._limit = limit

    def remember(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self._limit:
            self.popitem(last=False)


class CallRecorder:
    """Two lanes, so a pop never waits behind the call log: the pop lane reads the
    caller card outside any transaction and commits only the call's row (when new)
    and the pop claims before the pops go out; the log lane records everything
    else about calls in its own batches."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        reads: async_sessionmaker[AsyncSession] | None = None,
        bus: EventBus,
        clock: Clock,
        directory: AgentDirectory,
        region: str,
        callbacks: CallbackPolicy | None = None,
        sla: SlaKeeper | None = None,
        articles: ArticleSuggester | None = None,
        stopwatch: Callable[[], float] = time.perf_counter,
        pop_latency: LatencyTally | None = None,
    ) -> None:
        self._sessions, self._reads = sessions, reads or sessions
        self._articles = articles
        self._bus, self._clock = bus, clock
        self._directory, self._region = directory, region
        self._callbacks = callbacks
        self._sla = sla
        self._log = _Lane("call-log", self._record_facts, batch=LOG_BATCH)
        self._pops = _Lane("screen-pops", self._record_pops, batch=POP_BATCH)
        # Caller cards are read as soon as a call appears, so the ringing pop, which
        # for a queue call comes seconds later, finds its card ready.
        self._ahead = _Lane("caller-cards", self._read_cards_ahead, batch=POP_BATCH)
        self._card_reads: dict[str, asyncio.Future[None]] = {}
        self._cards = _Recent(CACHE_LIMIT)
        self._call_rows = _Recent(CACHE_LIMIT)  # PBX call id -> call log row id
        # What each agent's screen shows now, for browsers that (re)connect.
        self._showing: dict[int, dict[str, dict[str, Any]]] = {}
        self._last_seq = 0
        # Set while the pop lane wants the write connection: the log lane then
        # commits what it has and lets the pops go first.
        self._pops_waiting = False
        self.recorded_pops = 0
        # From the submit (on the AMI reader, as the frame arrives) to the pop's emit.
        self._stopwatch = stopwatch
        self.pop_latency = pop_latency or LatencyTally()

    @property
    def dropped(self) -> int:
        return self._log.dropped + self._pops.dropped

    def submit(self, work: Work) -> None:
        ahead: dict[str, str] = {}
        for fact in work.facts:
            if isinstance(fact, CallStarted | CallRinging) and not (
                fact.call_id in self._cards or fact.call_id in self._card_reads
            ):
                ahead[fact.call_id] = fact.caller_number_raw
        if ahead:
            loop = asyncio.get_running_loop()
            for call_id in ahead:
                self._card_reads[call_id] = loop.create_future()
            self._ahead.put(ahead.items())
        if work.decisions:
            submitted = self._stopwatch()
            self._pops.put((decision, submitted) for decision in work.decisions)
        self._log.put(work.facts)

    def start(self) -> None:
        self._ahead.start()
        self._pops.start()
        self._log.start()

    async def stop(self) -> None:
        await self._pops.stop()
        await self._log.stop()
        await self._ahead.stop()
        for waiting in self._card_reads.values():
            waiting.cancel()
        self._card_reads.clear()

    async def drained(self) -> None:
        """Wait until everything submitted so far is recorded (tests, shutdown)."""
        await self._ahead.drained()
        await self._pops.drained()
        await self._log.drained()

    def showing(self, agent_id: int) -> dict[str, Any]:
        return {"seq": self._last_seq, "pops": list(self._showing.get(agent_id, {}).values())}

    async def _resolve_agents(self, interfaces: Iterable[str]) -> None:
        # Before any transaction: a directory reload opens its own session, and on
        # SQLite that would wait for the write lock the recording transaction holds.
        now = self._clock.now()
        for interface in set(interfaces):
            if interface:
                await self._directory.lookup(interface, now=now)

    async def _record_facts(self, facts: list[CallFact]) -> None:
        await self._resolve_agents(
            i
            for fact in facts
            for i in (getattr(fact, "agent_interface", ""), getattr(fact, "answered_by", ""))
            if i
        )
        rest = facts
        while rest:
            rest = await self._record_some_facts(rest)

    async def _record_some_facts(self, facts: list[CallFact]) -> list[CallFact]:
        """Record facts until a pop waits for the write connection; the rest are returned.

        Recording a fact again is harmless (every call-log step is idempotent), so a
        retry of the whole batch after a failure does not double anything.
        """
        pending = _Pending()
        events: list[DomainEvent] = []
        done = 0
        async with UnitOfWork(sessions=self._sessions, bus=self._bus) as uow:
            for fact in facts:
                if done:
                    # A pop that became due during the last fact gets to say so first.
                    await asyncio.sleep(0)
                    if self._pops_waiting:
                        break
                with about_call(_call_of(fact)):
                    await self._on_fact(uow.session, fact, events, pending)
                    log.debug("call log: writing %s", type(fact).__name__)
                done += 1
            for event in events:
                uow.record(event)
            rows = {call_id: call.id for call_id, call in pending.calls.items()}
            uow.when_committed(lambda: self._remember_rows(rows))
            await uow.commit()
        return facts[done:]

    def _remember_rows(self, rows: dict[str, int]) -> None:
        for call_id, row_id in rows.items():
            self._call_rows.remember(call_id, row_id)

    async def _call(
        self, session: AsyncSession, fact: CallFact, queue: str | None, pending: _Pending
    ) -> Call:
        assert not isinstance(fact, OriginateCompleted | CallsListedLive)
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
        if isinstance(fact, CallsListedLive):
            unseen = await close_calls_ended_unseen(session, live=fact.call_ids, listed_at=fact.at)
            if unseen:
                log.warning(
                    "call log: %d calls ended while no one watched the PBX; closed as of the "
                    "resync at %s: %s",
                    len(unseen),
                    fact.at.isoformat(),
                    ", ".join(call.call_id for call in unseen[:20]),
                )
        elif isinstance(fact, CallStarted):
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

    async def _record_pops(self, submitted: list[tuple[PopDecision, float]]) -> None:
        await self._resolve_agents(d.agent_interface for d, _ in submitted)
        wanted: list[tuple[PopDecision, AgentRef, float]] = []
        for decision, stamp in submitted:
            agent = self._directory.known(decision.agent_interface)
            if agent is None:
                log.debug("no desk agent for %s; pop skipped", decision.agent_interface)
            else:
                wanted.append((decision, agent, stamp))
        if not wanted:
            return
        await self._read_cards([d for d, _, _ in wanted])
        now = self._clock.now()
        rows: dict[str, int] = {}
        shown: list[tuple[int, str, dict[str, Any] | None]] = []
        self._pops_waiting = True
        try:
            with urgent_writes():
                await self._claim(wanted, rows, shown, now=now)
        finally:
            self._pops_waiting = False

    async def _claim(
        self,
        wanted: list[tuple[PopDecision, AgentRef, float]],
        rows: dict[str, int],
        shown: list[tuple[int, str, dict[str, Any] | None]],
        *,
        now: datetime,
    ) -> None:
        emitted: list[float] = []
        async with UnitOfWork(sessions=self._sessions, bus=self._bus) as uow:
            for decision, _, _ in wanted:
                if decision.call_id not in rows and decision.call_id not in self._call_rows:
                    card = self._cards[decision.call_id]
                    customer = card["customer"]
                    rows[decision.call_id] = await call_row_id(
                        uow.session,
                        _start_of(decision),
                        caller_e164=card["caller"]["number_e164"],
                        customer_id=customer["id"] if customer is not None else None,
                    )
            claims = [PopClaim(d.call_id, agent.id, d.phase.value) for d, agent, _ in wanted]
            seqs = await claim_pops(uow.session, claims, now=now)
            adopted: list[tuple[PopDecision, AgentRef, PopClaim]] = []
            for (decision, agent, submitted), claim in zip(wanted, claims, strict=True):
                seq = seqs.pop(claim, None)  # popped: a key twice in one batch pops once
                if seq is None:
                    # This agent already saw this phase of this call.  After a take-over
                    # (another process sent it) the pop is still on their screen: keep
                    # it for their next snapshot, without sending it again.
                    if decision.phase in _LIVE and decision.call_id not in self._showing.get(
                        agent.id, {}
                    ):
                        adopted.append((decision, agent, claim))
                    continue
                row_id = rows.get(decision.call_id) or self._call_rows.get(decision.call_id)
                body = self._pop_body(decision, agent, seq=seq, row_id=row_id, now=now)
                uow.record(ScreenPopped(occurred_at=now, agent_id=agent.id, body=body))
                self.recorded_pops += 1
                emitted.append(submitted)
                shown.append(
                    (agent.id, decision.call_id, body if decision.phase in _LIVE else None)
                )

            if adopted:
                earlier = await claimed_pops(uow.session, [claim for _, _, claim in adopted])
                for decision, agent, claim in adopted:
                    if claim in earlier:
                        row_id = rows.get(decision.call_id) or self._call_rows.get(decision.call_id)
                        body = self._pop_body(
                            decision, agent, seq=earlier[claim], row_id=row_id, now=now
                        )
                        shown.append((agent.id, decision.call_id, body))

            def committed() -> None:
                self._remember_rows(rows)
                self._show(shown)

            # A browser connecting while the pops go out must find them in its snapshot.
            uow.when_committed(committed)
            await uow.commit()  # publishes: the pops are on their way to the browsers
        done = self._stopwatch()
        for submitted in emitted:
            self.pop_latency.observe(done - submitted)

    async def _read_cards_ahead(self, calls: list[tuple[str, str]]) -> None:
        try:
            async with self._reads() as session:
                for call_id, number in calls:
                    if call_id not in self._cards:
                        await self._read_card(session, call_id, number)
                    # A pop waits for its own card only, not for the rest of a burst;
                    # and the loop gets a turn between cards read on its thread.
                    self._card_ready(call_id)
                    await asyncio.sleep(0)
        finally:
            # Whatever happened, nobody waits any longer: a pop whose card is still
            # missing reads it itself.
            for call_id, _ in calls:
                self._card_ready(call_id)

    def _card_ready(self, call_id: str) -> None:
        waiting = self._card_reads.pop(call_id, None)
        if waiting is not None and not waiting.done():
            waiting.set_result(None)

    async def _read_cards(self, decisions: list[PopDecision]) -> None:
        for decision in decisions:
            waiting = self._card_reads.get(decision.call_id)
            if waiting is not None and decision.call_id not in self._cards:
                await asyncio.shield(waiting)
        missing = {d.call_id: d for d in decisions if d.call_id not in self._cards}
        if not missing:
            return
        async with self._reads() as session:
            for call_id, decision in missing.items():
                await self._read_card(session, call_id, decision.caller_number_raw)

    async def _read_card(self, session: AsyncSession, call_id: str, number: str) -> None:
        card = await caller_card(
            session, number, region=self._region, now=self._clock.now(), exclude_call=call_id
        )
        customer = card["customer"]
        if customer is not None and self._articles is not None:
            try:
                customer["suggested_articles"] = await self._articles(
                    session, customer_id=customer["id"], language=customer["language"]
                )
            except Exception:
                # Suggestions help; a pop without them still tells who is calling.
                log.exception("no article suggestions for customer %s", customer["id"])
                customer["suggested_articles"] = []
        self._cards.remember(call_id, card)

    def _pop_body(
        self,
        decision: PopDecision,
        agent: AgentRef,
        *,
        seq: int,
        row_id: int | None,
        now: datetime,
    ) -> dict[str, Any]:
        card = self._cards[decision.call_id]
        return {
            "call_id": decision.call_id,
            "call_log_id": row_id,
            "phase": decision.phase.value,
            "seq": seq,
            "reason": decision.reason,
            "caller": {**card["caller"], "name": decision.caller_name},
            "customer": card["customer"],
            "candidates": card["candidates"],
            "queue": decision.queue,
            "direction": decision.direction.value,
            "agent": {"id": agent.id, "extension": agent.extension},
            "event_at": decision.at.isoformat(),
            "sent_at": now.isoformat(),
        }

    def _show(self, shown: list[tuple[int, str, dict[str, Any] | None]]) -> None:
        for agent_id, call_id, body in shown:
            screens = self._showing.setdefault(agent_id, {})
            if body is None:
                screens.pop(call_id, None)
            else:
                screens[call_id] = body
                self._last_seq = max(self._last_seq, int(body["seq"]))


def _call_of(fact: CallFact) -> str:
    """The call a fact is about, for the log's context; a channel list is about none."""
    return "" if isinstance(fact, CallsListedLive) else fact.call_id or ""


def _start_of(decision: PopDecision) -> CallStart:
    return CallStart(
        call_id=decision.call_id,
        direction=decision.direction,
        caller_raw=decision.caller_number_raw,
        caller_name=decision.caller_name,
        queue=decision.queue,
        started_at=decision.call_started_at,
    )


async def stop_quietly(recorder: CallRecorder, *, grace: float = 5.0) -> None:
    """Finish what was submitted (for at most ``grace`` seconds), then stop."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(grace):
            await recorder.drained()
    await recorder.stop()
