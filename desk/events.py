"""Domain events and the unit of work that publishes them only after commit.

Services record what happened on a ``UnitOfWork``; subscribers (the socket.io
notifier, SLA, surveys) hear of it only once the transaction has committed, so
a rolled-back change never reaches a screen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, ClassVar, Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Recipients:
    """Who must hear of an event: agents (by agent id), teams, the supervisors' room,
    and users by user id (people who need not be agents, e.g. a team lead)."""

    agents: tuple[int, ...] = ()
    teams: tuple[int, ...] = ()
    supervisors: bool = False
    users: tuple[int, ...] = ()

    NOBODY: ClassVar[Recipients]


Recipients.NOBODY = Recipients()


@dataclass(frozen=True, kw_only=True)
class DomainEvent:
    """Base of every domain event: frozen, named in the past tense."""

    occurred_at: datetime
    name: ClassVar[str] = "event"

    @property
    def recipients(self) -> Recipients:
        return Recipients.NOBODY

    def payload(self) -> dict[str, Any]:
        """JSON-ready body for those who receive it."""
        return {"occurred_at": self.occurred_at.isoformat()}


@dataclass(frozen=True, kw_only=True)
class CustomerCreated(DomainEvent):
    name: ClassVar[str] = "customer_created"
    customer_id: int
    display_name: str

    @property
    def recipients(self) -> Recipients:
        return Recipients(supervisors=True)

    def payload(self) -> dict[str, Any]:
        return {
            "occurred_at": self.occurred_at.isoformat(),
            "customer_id": self.customer_id,
            "name": self.display_name,
        }


@dataclass(frozen=True, kw_only=True)
class CustomerUpdated(CustomerCreated):
    name: ClassVar[str] = "customer_updated"


@dataclass(frozen=True, kw_only=True)
class CustomerDeleted(CustomerCreated):
    name: ClassVar[str] = "customer_deleted"


Handler = Callable[[DomainEvent], Awaitable[None]]


@dataclass
class EventBus:
    """In-process publish/subscribe; a failing subscriber never hurts the others.

    One commit's events go out in waves: events whose recipients have nobody in
    common are handed over together, so a commit that pops five agents' screens
    does not make the fifth agent wait for four socket.io round trips; events for
    a shared recipient (and events for nobody) keep their commit order.
    """

    _handlers: list[tuple[type[DomainEvent], Handler]] = field(default_factory=list)
    published: int = 0

    def subscribe(self, event_type: type[DomainEvent], handler: Handler) -> None:
        self._handlers.append((event_type, handler))

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        for wave in waves(events):
            if len(wave) == 1:
                await self._deliver(wave[0])
            else:
                await asyncio.gather(*map(self._deliver, wave))

    async def _deliver(self, event: DomainEvent) -> None:
        self.published += 1
        for event_type, handler in self._handlers:
            if isinstance(event, event_type):
                try:
                    await handler(event)
                except Exception:
                    log.exception("subscriber %r failed on %s", handler, event.name)


_Audience = frozenset[tuple[str, int]]
_NOBODY: _Audience = frozenset({("nobody", 0)})


def _audience(recipients: Recipients) -> _Audience:
    audience = {("agent", agent_id) for agent_id in recipients.agents}
    audience.update(("team", team_id) for team_id in recipients.teams)
    audience.update(("user", user_id) for user_id in recipients.users)
    if recipients.supervisors:
        audience.add(("supervisors", 0))
    return frozenset(audience) if audience else _NOBODY


def waves(events: Sequence[DomainEvent]) -> list[list[DomainEvent]]:
    """``events`` in order, cut wherever an event shares a recipient with one already
    in the current wave; within a wave, no two events have a recipient in common."""
    result: list[list[DomainEvent]] = []
    wave: list[DomainEvent] = []
    taken: set[tuple[str, int]] = set()
    for event in events:
        audience = _audience(event.recipients)
        if not taken.isdisjoint(audience):
            result.append(wave)
            wave, taken = [], set()
        wave.append(event)
        taken |= audience
    if wave:
        result.append(wave)
    return result


class UnitOfWork:
    """One transaction plus the events it produced.

    ``async with UnitOfWork(sessions=..., bus=...) as uow:`` then ``await uow.commit()``.
    Leaving the block without committing, or with an exception, rolls back and
    drops the recorded events.
    """

    def __init__(self, *, sessions: async_sessionmaker[AsyncSession], bus: EventBus) -> None:
        self._sessions = sessions
        self._bus = bus
        self._events: list[DomainEvent] = []
        self._committed: list[Callable[[], None]] = []
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside its 'async with' block")
        return self._session

    async def __aenter__(self) -> Self:
        self._session = self._sessions()
        self._events = []
        self._committed = []
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        self._events = []
        self._committed = []
        if session is not None:
            await session.rollback()
            await session.close()

    def record(self, event: DomainEvent) -> None:
        self._events.append(event)

    def when_committed(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after the commit and before the events go out, so
        in-memory views are up to date by the time anyone hears of the change."""
        self._committed.append(callback)

    async def commit(self) -> None:
        await self.session.commit()
        events, self._events = self._events, []
        callbacks, self._committed = self._committed, []
        for callback in callbacks:
            callback()
        await self._bus.publish(events)
