"""Domain events the CTI publishes: what agents' screens and the board must hear.

Like every domain event they are frozen, past tense and name their recipients;
the web layer's notifier turns them into socket.io messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from desk.events import DomainEvent, Recipients


@dataclass(frozen=True, kw_only=True)
class AgentNotice(DomainEvent):
    """Something one agent's screen must show; ``body`` is what it receives."""

    agent_id: int
    body: dict[str, Any]

    @property
    def recipients(self) -> Recipients:
        return Recipients(agents=(self.agent_id,))

    def payload(self) -> dict[str, Any]:
        return self.body


@dataclass(frozen=True, kw_only=True)
class ScreenPopped(AgentNotice):
    """A pop reached one agent's screen (phase ringing / connected / withdrawn / ended)."""

    name: ClassVar[str] = "screen_pop"


@dataclass(frozen=True, kw_only=True)
class AgentStateChanged(AgentNotice):
    """An agent's own state (ready, ringing, on call, wrap-up, paused) changed."""

    name: ClassVar[str] = "agent_state"


@dataclass(frozen=True, kw_only=True)
class OriginateReported(AgentNotice):
    """The PBX's answer to a click-to-call: the call went out, or why not."""

    name: ClassVar[str] = "originate_result"


@dataclass(frozen=True, kw_only=True)
class BoardChanged(DomainEvent):
    """The queues and agents on the supervisors' wallboard moved."""

    name: ClassVar[str] = "board"
    body: dict[str, Any]

    @property
    def recipients(self) -> Recipients:
        return Recipients(supervisors=True)

    def payload(self) -> dict[str, Any]:
        return self.body
