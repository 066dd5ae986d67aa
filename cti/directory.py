"""Which desk agent a PBX interface belongs to, cached: the hot path must not
query the database for every frame."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from desk.calls import agents_by_interface

# An interface nobody owns is looked up again at most this often, so frames for
# phones that are not agents (or agents added later) cost nothing in between.
MISS_RETRY = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class AgentRef:
    id: int
    extension: str
    interface: str
    name: str
    team_id: int | None


class AgentDirectory:
    def __init__(self, *, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._by_interface: dict[str, AgentRef] = {}
        self._loaded_at: datetime | None = None

    def known(self, interface: str) -> AgentRef | None:
        return self._by_interface.get(interface)

    def all(self) -> list[AgentRef]:
        return list(self._by_interface.values())

    async def lookup(self, interface: str, *, now: datetime) -> AgentRef | None:
        ref = self._by_interface.get(interface)
        if ref is None and (self._loaded_at is None or now - self._loaded_at >= MISS_RETRY):
            await self.reload(now=now)
            ref = self._by_interface.get(interface)
        return ref

    async def reload(self, *, now: datetime) -> None:
        async with self._sessions() as session:
            agents = await agents_by_interface(session)
            self._by_interface = {
                interface: AgentRef(
                    id=agent.id,
                    extension=agent.extension,
                    interface=agent.interface,
                    name=agent.user.display_name,
                    team_id=agent.team_id,
                )
                for interface, agent in agents.items()
            }
        self._loaded_at = now
