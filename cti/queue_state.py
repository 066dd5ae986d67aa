"""Queue state for the wallboard: who waits where, and how the day went.

Positions follow app_queue: a caller joins at the position Asterisk reports
and everyone behind moves up when someone leaves, so a position is simply
the caller's place in the list.  Counters are idempotent per caller, so a
duplicated or replayed AgentConnect/QueueCallerAbandon counts once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cti.events import (
    QUEUES_COMPLETE,
    AgentConnected,
    CallEvent,
    ChannelHungUp,
    QueueCallerAbandoned,
    QueueCallerJoined,
    QueueCallerLeft,
    QueueEntrySnapshot,
    QueueParamsSnapshot,
    SnapshotComplete,
)
from cti.tracker import RecentKeys


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitingCaller:
    uniqueid: str
    call_id: str
    caller_number_raw: str
    caller_name: str
    joined_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueView:
    queue: str
    waiting: tuple[WaitingCaller, ...]  # in queue order: position is index + 1
    longest_wait_s: float
    answered: int
    answered_in_sl: int
    abandoned: int
    short_abandons: int
    service_level_s: float

    @property
    def service_level_pct(self) -> float | None:
        """Answered within SL over offered calls; short abandons are not offered calls."""
        offered = self.answered + self.abandoned - self.short_abandons
        return None if offered <= 0 else 100.0 * self.answered_in_sl / offered


class _Queue:
    __slots__ = ("abandoned", "answered", "answered_in_sl", "short_abandons", "waiting")

    def __init__(self) -> None:
        self.waiting: list[WaitingCaller] = []
        self.answered = 0
        self.answered_in_sl = 0
        self.abandoned = 0
        self.short_abandons = 0

    def remove(self, uniqueid: str) -> bool:
        for index, caller in enumerate(self.waiting):
            if caller.uniqueid == uniqueid:
                del self.waiting[index]
                return True
        return False


class QueueBoard:
    """Per-queue waiting list and counters; SL seconds come per queue from config."""

    def __init__(
        self,
        *,
        service_level_s: Mapping[str, float],
        short_abandon_s: float = 5.0,
        default_service_level_s: float = 20.0,
        memory: int = 50_000,
    ) -> None:
        self._service_level = dict(service_level_s)
        self._default_service_level = default_service_level_s
        self._short_abandon = short_abandon_s
        self._queues: dict[str, _Queue] = {}
        self._where: dict[str, str] = {}  # waiting uniqueid -> queue
        # Join times outlive the waiting entry: QueueCallerLeave comes before AgentConnect.
        self._joined: dict[str, datetime] = {}
        self._counted: RecentKeys[tuple[str, str]] = RecentKeys(memory)
        self._handlers: dict[type[Any], Callable[[Any], str | None]] = {
            QueueCallerJoined: self._on_joined,
            QueueCallerLeft: self._on_left,
            QueueCallerAbandoned: self._on_abandoned,
            AgentConnected: self._on_connected,
            ChannelHungUp: self._on_hung_up,
        }

    def apply(self, event: CallEvent) -> str | None:
        """Update from one event; the name of the queue that changed, if any."""
        handler = self._handlers.get(type(event))
        return None if handler is None else handler(event)

    def queues(self) -> tuple[str, ...]:
        return tuple(self._queues)

    def service_level_s(self, queue: str) -> float:
        return self._service_level.get(queue, self._default_service_level)

    def view(self, queue: str, now: datetime) -> QueueView:
        state = self._queues.get(queue) or _Queue()
        oldest = min((c.joined_at for c in state.waiting), default=None)
        return QueueView(
            queue=queue,
            waiting=tuple(state.waiting),
            longest_wait_s=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
            answered=state.answered,
            answered_in_sl=state.answered_in_sl,
            abandoned=state.abandoned,
            short_abandons=state.short_abandons,
            service_level_s=self.service_level_s(queue),
        )

    def _queue(self, name: str) -> _Queue:
        state = self._queues.get(name)
        if state is None:
            state = self._queues[name] = _Queue()
        return state

    def _on_joined(self, e: QueueCallerJoined) -> str | None:
        uniqueid = e.channel.uniqueid
        if uniqueid in self._where:
            return None
        state = self._queue(e.queue)
        place = (
            min(max(e.position - 1, 0), len(state.waiting)) if e.position else len(state.waiting)
        )
        state.waiting.insert(
            place,
            WaitingCaller(
                uniqueid=uniqueid,
                call_id=e.channel.linkedid,
                caller_number_raw=e.channel.caller_num,
                caller_name=e.channel.caller_name,
                joined_at=e.at,
            ),
        )
        self._where[uniqueid] = e.queue
        self._joined.setdefault(uniqueid, e.at)
        return e.queue

    def _leave(self, uniqueid: str) -> str | None:
        queue = self._where.pop(uniqueid, None)
        if queue is not None:
            self._queue(queue).remove(uniqueid)
        return queue

    def _on_left(self, e: QueueCallerLeft) -> str | None:
        return self._leave(e.channel.uniqueid)

    def _waited_s(self, uniqueid: str, at: datetime, reported_s: int) -> float:
        joined = self._joined.pop(uniqueid, None)
        return reported_s if joined is None else (at - joined).total_seconds()

    def _on_abandoned(self, e: QueueCallerAbandoned) -> str | None:
        self._leave(e.channel.uniqueid)
        if not self._counted.add(("abandoned", e.channel.uniqueid)):
            return None
        state = self._queue(e.queue)
        state.abandoned += 1
        if self._waited_s(e.channel.uniqueid, e.at, e.hold_s) < self._short_abandon:
            state.short_abandons += 1
        return e.queue

    def _on_connected(self, e: AgentConnected) -> str | None:
        uniqueid = e.caller.uniqueid
        self._leave(uniqueid)
        if not self._counted.add(("answered", uniqueid)):
            return None
        state = self._queue(e.queue)
        state.answered += 1
        if self._waited_s(uniqueid, e.at, e.hold_s) <= self.service_level_s(e.queue):
            state.answered_in_sl += 1
        return e.queue

    def _on_hung_up(self, e: ChannelHungUp) -> str | None:
        # A caller gone without a QueueCallerLeave (lost event) must not wait forever.
        self._joined.pop(e.channel.uniqueid, None)
        return self._leave(e.channel.uniqueid)

    def resync(self, snapshot: Iterable[CallEvent], *, at: datetime) -> list[str]:
        """Replace the waiting lists of the queues a complete QueueStatus covered.

        ``at`` is when the list was asked for: callers who joined after it are kept.
        """
        events = list(snapshot)
        if not any(
            isinstance(e, SnapshotComplete) and e.list_name in QUEUES_COMPLETE for e in events
        ):
            return []
        covered: list[str] = []
        for e in events:
            if isinstance(e, QueueParamsSnapshot):
                covered.append(e.queue)
                if e.queue not in self._service_level and e.service_level_s > 0:
                    self._service_level[e.queue] = float(e.service_level_s)
        entries = sorted(
            (e for e in events if isinstance(e, QueueEntrySnapshot)), key=lambda e: e.position
        )
        listed = {e.uniqueid for e in entries}
        for queue in covered:
            state = self._queue(queue)
            known = {caller.uniqueid: caller for caller in state.waiting}
            # Callers who joined while the list was on its way cannot be on it, yet wait.
            newer = [c for c in state.waiting if c.joined_at > at and c.uniqueid not in listed]
            for caller in state.waiting:
                self._where.pop(caller.uniqueid, None)
            state.waiting = []
            for entry in entries:
                if entry.queue != queue:
                    continue
                joined = self._joined.setdefault(
                    entry.uniqueid, at - timedelta(seconds=entry.wait_s)
                )
                caller = known.get(entry.uniqueid) or WaitingCaller(
                    uniqueid=entry.uniqueid,
                    call_id=entry.linkedid or entry.uniqueid,
                    caller_number_raw=entry.caller_num,
                    caller_name=entry.caller_name,
                    joined_at=joined,
                )
                state.waiting.append(caller)
                self._where[entry.uniqueid] = queue
            for caller in newer:
                state.waiting.append(caller)
                self._where[caller.uniqueid] = queue
        return covered
