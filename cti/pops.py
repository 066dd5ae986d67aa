"""Screen-pop decisions from call facts.

An agent's screen shows a call while their phone rings (``ringing``), keeps
it while they talk (``connected``), and clears it when the ring stops without
them (``withdrawn``) or the talk is over (``ended``).  Each (call, agent,
phase) pops exactly once: the issued keys are remembered, so duplicated
facts, replays and resyncs after an AMI reconnect never pop twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from cti.events import (
    CallAnswered,
    CallEnded,
    CallFact,
    CallRinging,
    CallRingStopped,
    CallStarted,
    CallTransferred,
    Direction,
)
from cti.tracker import RecentKeys


class PopPhase(StrEnum):
    RINGING = "ringing"
    CONNECTED = "connected"
    WITHDRAWN = "withdrawn"
    ENDED = "ended"


@dataclass(frozen=True, slots=True, kw_only=True)
class PopDecision:
    call_id: str
    agent_interface: str
    phase: PopPhase
    caller_number_raw: str  # the customer: caller inbound, callee outbound
    caller_name: str
    queue: str | None
    reason: str
    at: datetime
    direction: Direction
    # When the call began (its first channel), so whoever logs the call first,
    # the pop or the call log, stores the same start.
    call_started_at: datetime

    @property
    def key(self) -> tuple[str, str, PopPhase]:
        return (self.call_id, self.agent_interface, self.phase)


class _Screen:
    """What the desk has shown for one call."""

    __slots__ = (
        "caller_name",
        "caller_num",
        "connected",
        "direction",
        "queue",
        "ringing",
        "started_at",
    )

    def __init__(
        self,
        caller_num: str,
        caller_name: str,
        queue: str | None,
        direction: Direction,
        started_at: datetime,
    ) -> None:
        self.caller_num = caller_num
        self.caller_name = caller_name
        self.queue = queue
        self.direction = direction
        self.started_at = started_at
        self.ringing: set[str] = set()
        self.connected: set[str] = set()


class PopDesk:
    def __init__(self, *, memory: int = 200_000) -> None:
        self._issued: RecentKeys[tuple[str, str, PopPhase]] = RecentKeys(memory)
        self._screens: dict[str, _Screen] = {}
        self._handlers: dict[type[Any], Callable[[Any, list[PopDecision]], None]] = {
            CallStarted: self._on_started,
            CallRinging: self._on_ringing,
            CallRingStopped: self._on_ring_stopped,
            CallAnswered: self._on_answered,
            CallTransferred: self._on_transferred,
            CallEnded: self._on_ended,
        }

    def apply(self, fact: CallFact) -> list[PopDecision]:
        handler = self._handlers.get(type(fact))
        if handler is None:
            return []
        out: list[PopDecision] = []
        handler(fact, out)
        return out

    def _issue(
        self,
        out: list[PopDecision],
        *,
        call_id: str,
        screen: _Screen,
        agent: str,
        phase: PopPhase,
        reason: str,
        at: datetime,
    ) -> bool:
        if not agent or not self._issued.add((call_id, agent, phase)):
            return False
        out.append(
            PopDecision(
                call_id=call_id,
                agent_interface=agent,
                phase=phase,
                caller_number_raw=screen.caller_num,
                caller_name=screen.caller_name,
                queue=screen.queue,
                reason=reason,
                at=at,
                direction=screen.direction,
                call_started_at=screen.started_at,
            )
        )
        return True

    def _screen(
        self,
        call_id: str,
        caller_num: str,
        caller_name: str,
        queue: str | None,
        direction: Direction,
        at: datetime,
    ) -> _Screen:
        screen = self._screens.get(call_id)
        if screen is None:
            screen = self._screens[call_id] = _Screen(caller_num, caller_name, queue, direction, at)
        elif queue is not None:
            screen.queue = queue
        return screen

    def _on_started(self, f: CallStarted, out: list[PopDecision]) -> None:
        screen = self._screen(
            f.call_id, f.caller_number_raw, f.caller_name, None, f.direction, f.at
        )
        # Click-to-call and handset dial-outs: show the agent who they are calling.
        if f.direction is not Direction.OUTBOUND:
            return
        if self._issue(
            out,
            call_id=f.call_id,
            screen=screen,
            agent=f.agent_interface,
            phase=PopPhase.RINGING,
            reason="outbound",
            at=f.at,
        ):
            screen.ringing.add(f.agent_interface)

    def _on_ringing(self, f: CallRinging, out: list[PopDecision]) -> None:
        screen = self._screen(
            f.call_id, f.caller_number_raw, f.caller_name, f.queue, f.direction, f.at
        )
        if f.agent_interface in screen.connected:
            return
        if self._issue(
            out,
            call_id=f.call_id,
            screen=screen,
            agent=f.agent_interface,
            phase=PopPhase.RINGING,
            reason="queue" if f.queue else f.direction.value,
            at=f.at,
        ):
            screen.ringing.add(f.agent_interface)

    def _withdraw(
        self,
        out: list[PopDecision],
        call_id: str,
        screen: _Screen,
        agent: str,
        reason: str,
        at: datetime,
    ) -> None:
        if agent in screen.ringing:
            screen.ringing.discard(agent)
            self._issue(
                out,
                call_id=call_id,
                screen=screen,
                agent=agent,
                phase=PopPhase.WITHDRAWN,
                reason=reason,
                at=at,
            )

    def _on_ring_stopped(self, f: CallRingStopped, out: list[PopDecision]) -> None:
        screen = self._screens.get(f.call_id)
        if screen is not None:
            self._withdraw(out, f.call_id, screen, f.agent_interface, f.reason.value, f.at)

    def _on_answered(self, f: CallAnswered, out: list[PopDecision]) -> None:
        screen = self._screen(
            f.call_id, f.caller_number_raw, f.caller_name, f.queue, f.direction, f.at
        )
        agent = f.agent_interface
        screen.ringing.discard(agent)
        if self._issue(
            out,
            call_id=f.call_id,
            screen=screen,
            agent=agent,
            phase=PopPhase.CONNECTED,
            reason="answered" if f.first else "transferred",
            at=f.at,
        ):
            screen.connected.add(agent)
        for other in sorted(screen.ringing):
            self._withdraw(out, f.call_id, screen, other, "answered_elsewhere", f.at)

    def _on_transferred(self, f: CallTransferred, out: list[PopDecision]) -> None:
        screen = self._screens.get(f.call_id)
        if screen is not None and f.from_agent in screen.connected and f.from_agent != f.to_agent:
            screen.connected.discard(f.from_agent)
            self._issue(
                out,
                call_id=f.call_id,
                screen=screen,
                agent=f.from_agent,
                phase=PopPhase.ENDED,
                reason="transferred",
                at=f.at,
            )

    def _on_ended(self, f: CallEnded, out: list[PopDecision]) -> None:
        screen = self._screens.pop(f.call_id, None)
        if screen is None:
            return
        reason = f.outcome.value
        for agent in sorted(screen.ringing):
            self._withdraw(out, f.call_id, screen, agent, reason, f.at)
        for agent in sorted(screen.connected):
            self._issue(
                out,
                call_id=f.call_id,
                screen=screen,
                agent=agent,
                phase=PopPhase.ENDED,
                reason=reason,
                at=f.at,
            )
