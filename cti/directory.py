"""Which desk agent a PBX interface belongs to, cached: the hot path must not
query the database for every frame."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from desk.users import agent_roster

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
        # Rows, not entities: this runs on the pop lane whenever a frame names a phone
        # nobody owns (at most every MISS_RETRY), and with thousands of agents loading
        # them as entities held the pops up for 100-200 ms.
        async with self._sessions() as session:
            roster = await agent_roster(session)
        self._by_interface = {
            agent.interface: AgentRef(
                id=agent.agent_id,
                extension=agent.extension,
                interface=agent.interface,
                name=agent.name,
                team_id=agent.team_id,
            )
            for agent in roster
        }
        self._loaded_at = now
