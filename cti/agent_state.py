"""Agent state for the board, per device interface (``PJSIP/1001``).

The PBX tells us device state (QueueMemberStatus), pauses and memberships,
and when a queue call completes.  It never says when wrap-up is over, so an
agent carries ``wrap_up_until`` and :func:`agent_status` works out the state
at any ``now``.  Agents are frozen records replaced on change; the board only
holds the current record per interface.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cti.events import (
    QUEUES_COMPLETE,
    AgentCompleted,
    AgentConnected,
    AgentRang,
    AgentRingNoAnswer,
    CallEvent,
    QueueMember,
    QueueMemberAdded,
    QueueMemberPaused,
    QueueMemberRemoved,
    QueueMemberSnapshot,
    QueueMemberStatusChanged,
    QueueParamsSnapshot,
    SnapshotComplete,
)


class AgentStatus(StrEnum):
    READY = "ready"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"
    LOGGED_OUT = "logged_out"


class Device(StrEnum):
    IDLE = "idle"
    RINGING = "ringing"
    BUSY = "busy"
    UNAVAILABLE = "unavailable"


# AST_DEVICE_* codes: UNKNOWN counts as idle because app_queue itself rings such members.
_DEVICE_BY_STATUS = {
    0: Device.IDLE,
    1: Device.IDLE,
    2: Device.BUSY,
    3: Device.BUSY,
    4: Device.UNAVAILABLE,
    5: Device.UNAVAILABLE,
    6: Device.RINGING,
    7: Device.BUSY,  # ringing while already in use: still talking
    8: Device.BUSY,  # on hold
}
_MISSED_MEMORY = 32


@dataclass(frozen=True, slots=True, kw_only=True)
class Agent:
    interface: str
    since: datetime  # when the board first heard of the agent
    name: str = ""
    queues: frozenset[str] = frozenset()
    paused_queues: frozenset[str] = frozenset()
    pause_reason: str = ""
    device: Device = Device.IDLE
    device_since: datetime | None = None
    paused_since: datetime | None = None
    resumed_at: datetime | None = None
    membership_changed_at: datetime | None = None
    wrap_up_from: datetime | None = None
    wrap_up_until: datetime | None = None
    missed_rings: int = 0
    # Ring attempts already counted, so a duplicated AgentRingNoAnswer counts once.
    missed_legs: tuple[str, ...] = ()

    @property
    def paused(self) -> bool:
        """Paused in every queue: no queue call will ring this agent."""
        return bool(self.queues) and self.queues <= self.paused_queues


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentView:
    interface: str
    name: str
    status: AgentStatus
    since: datetime
    pause_reason: str
    missed_rings: int
    queues: frozenset[str]
    paused_queues: frozenset[str]


def agent_status(agent: Agent, now: datetime) -> AgentView:
    """The agent's state at ``now`` and since when they have been in it."""
    device_since = agent.device_since or agent.since
    if not agent.queues or agent.device is Device.UNAVAILABLE:
        status, since = AgentStatus.LOGGED_OUT, _latest(device_since, agent.membership_changed_at)
    elif agent.device is Device.BUSY:
        status, since = AgentStatus.ON_CALL, device_since
    elif agent.device is Device.RINGING:
        status, since = AgentStatus.RINGING, device_since
    elif agent.paused:
        status, since = AgentStatus.PAUSED, _latest(device_since, agent.paused_since)
    elif agent.wrap_up_until is not None and now < agent.wrap_up_until:
        status, since = AgentStatus.WRAP_UP, _latest(device_since, agent.wrap_up_from)
    else:
        ended_wrap_up = (
            agent.wrap_up_until if agent.wrap_up_until and agent.wrap_up_until <= now else None
        )
        status = AgentStatus.READY
        since = _latest(device_since, agent.resumed_at, ended_wrap_up, agent.membership_changed_at)
    return AgentView(
        interface=agent.interface,
        name=agent.name,
        status=status,
        since=since,
        pause_reason=agent.pause_reason if agent.paused else "",
        missed_rings=agent.missed_rings,
        queues=agent.queues,
        paused_queues=agent.paused_queues,
    )


def _latest(first: datetime, *others: datetime | None) -> datetime:
    return max([first, *(moment for moment in others if moment is not None)])


class AgentBoard:
    """Current :class:`Agent` per interface; ``wrap_up_s`` is the wrap-up time per queue."""

    def __init__(self, *, wrap_up_s: Mapping[str, float]) -> None:
        self._wrap_up = {queue: timedelta(seconds=s) for queue, s in wrap_up_s.items()}
        self._agents: dict[str, Agent] = {}
        self._handlers: dict[type[Any], Callable[[Any], Agent | None]] = {
            QueueMemberStatusChanged: lambda e: self._member(e.member, e.at),
            QueueMemberPaused: lambda e: self._member(e.member, e.at),
            QueueMemberAdded: lambda e: self._member(e.member, e.at),
            QueueMemberRemoved: lambda e: self._removed(e.member.interface, {e.member.queue}, e.at),
            AgentRang: self._on_rang,
            AgentConnected: self._on_connected,
            AgentCompleted: self._on_completed,
            AgentRingNoAnswer: self._on_ring_no_answer,
        }

    def apply(self, event: CallEvent) -> Agent | None:
        """Update from one event; the changed agent, or None if nothing changed."""
        handler = self._handlers.get(type(event))
        return None if handler is None else handler(event)

    def get(self, interface: str) -> Agent | None:
        return self._agents.get(interface)

    def agents(self) -> tuple[Agent, ...]:
        return tuple(self._agents.values())

    def view(self, interface: str, now: datetime) -> AgentView | None:
        agent = self._agents.get(interface)
        return None if agent is None else agent_status(agent, now)

    def _store(self, old: Agent | None, new: Agent) -> Agent | None:
        if new == old:
            return None
        self._agents[new.interface] = new
        return new

    def _known(self, interface: str, at: datetime, queue: str = "") -> Agent:
        agent = self._agents.get(interface) or Agent(interface=interface, since=at, device_since=at)
        if queue and queue not in agent.queues:
            # app_queue only rings members, so a queue event proves the membership.
            agent = replace(agent, queues=agent.queues | {queue}, membership_changed_at=at)
        return agent

    def _member(self, member: QueueMember, at: datetime) -> Agent | None:
        old = self._agents.get(member.interface)
        agent = self._known(member.interface, at)
        was_paused = agent.paused
        queues = agent.queues | {member.queue}
        paused_queues = (
            agent.paused_queues | {member.queue}
            if member.paused
            else agent.paused_queues - {member.queue}
        )
        new = replace(
            agent,
            name=member.name or agent.name,
            queues=queues,
            paused_queues=paused_queues,
            membership_changed_at=at if queues != agent.queues else agent.membership_changed_at,
            pause_reason=member.paused_reason if member.paused else agent.pause_reason,
        )
        new = _with_device(new, _DEVICE_BY_STATUS.get(member.status, Device.IDLE), at)
        return self._store(old, _with_pause_change(new, was_paused, at))

    def _removed(self, interface: str, queues: Iterable[str], at: datetime) -> Agent | None:
        old = self._agents.get(interface)
        if old is None:
            return None
        gone = frozenset(queues)
        new = replace(
            old,
            queues=old.queues - gone,
            paused_queues=old.paused_queues - gone,
            membership_changed_at=at if old.queues & gone else old.membership_changed_at,
        )
        return self._store(old, _with_pause_change(new, old.paused, at))

    def _on_rang(self, e: AgentRang) -> Agent | None:
        old = self._agents.get(e.interface)
        if old is not None and old.device is not Device.IDLE:
            return None  # busy agents (ring-in-use) stay on their call
        return self._store(
            old, _with_device(self._known(e.interface, e.at, e.queue), Device.RINGING, e.at)
        )

    def _on_connected(self, e: AgentConnected) -> Agent | None:
        old = self._agents.get(e.interface)
        return self._store(
            old, _with_device(self._known(e.interface, e.at, e.queue), Device.BUSY, e.at)
        )

    def _on_completed(self, e: AgentCompleted) -> Agent | None:
        wrap_up = self._wrap_up.get(e.queue)
        if not wrap_up:
            return None
        old = self._agents.get(e.interface)
        agent = self._known(e.interface, e.at, e.queue)
        return self._store(old, replace(agent, wrap_up_from=e.at, wrap_up_until=e.at + wrap_up))

    def _on_ring_no_answer(self, e: AgentRingNoAnswer) -> Agent | None:
        old = self._agents.get(e.interface)
        agent = self._known(e.interface, e.at, e.queue)
        if e.dest.uniqueid in agent.missed_legs:
            return None
        return self._store(
            old,
            replace(
                agent,
                missed_rings=agent.missed_rings + 1,
                missed_legs=(*agent.missed_legs, e.dest.uniqueid)[-_MISSED_MEMORY:],
            ),
        )

    def resync(self, snapshot: Iterable[CallEvent], *, at: datetime) -> list[Agent]:
        """Adopt a complete QueueStatus list: memberships, pauses, device states.

        Memberships of listed queues that the list no longer shows are gone
        (the agent logged out while we were disconnected).
        """
        events = list(snapshot)
        if not any(
            isinstance(e, SnapshotComplete) and e.list_name in QUEUES_COMPLETE for e in events
        ):
            return []
        covered = {e.queue for e in events if isinstance(e, QueueParamsSnapshot)}
        members = [e.member for e in events if isinstance(e, QueueMemberSnapshot)]
        listed = {(m.queue, m.interface) for m in members}
        # Agents whose live events are newer than the list's request keep their live state.
        fresh = {a.interface for a in self._agents.values() if _latest_change(a) > at}
        changed = [
            agent
            for m in members
            if m.interface not in fresh and (agent := self._member(m, at)) is not None
        ]
        for agent in list(self._agents.values()):
            if agent.interface in fresh:
                continue
            stale = {q for q in agent.queues if q in covered and (q, agent.interface) not in listed}
            if stale and (removed := self._removed(agent.interface, stale, at)) is not None:
                changed.append(removed)
        return changed


def _latest_change(agent: Agent) -> datetime:
    return _latest(
        agent.since,
        agent.device_since,
        agent.paused_since,
        agent.resumed_at,
        agent.membership_changed_at,
        agent.wrap_up_from,
    )


def _with_device(agent: Agent, device: Device, at: datetime) -> Agent:
    if device is agent.device:
        return agent
    return replace(agent, device=device, device_since=at)


def _with_pause_change(agent: Agent, was_paused: bool, at: datetime) -> Agent:
    if agent.paused and not was_paused:
        return replace(agent, paused_since=at)
    if was_paused and not agent.paused:
        return replace(agent, resumed_at=at, paused_since=None, pause_reason="")
    return agent
