"""Users (agents, supervisors, admins), their PBX identity, teams and skills."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from desk.auth import hash_password
from desk.errors import Conflict, InvalidInput, NotFound
from desk.lockout import forget_failures
from desk.models import Agent, AgentSkill, Role, Skill, Team, User

Username = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{1,63}$")]
Password = Annotated[str, StringConstraints(min_length=8, max_length=200)]
Extension = Annotated[str, StringConstraints(pattern=r"^[0-9]{2,10}$")]
Interface = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]+/[A-Za-z0-9_.@-]+$")]
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[A-Za-z]{2,4})?$")]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class SkillIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: Annotated[
        str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=100)
    ]
    level: Annotated[int, Field(ge=1, le=10)] = 1


class AgentIn(BaseModel):
    """The phone an agent answers: extension 1001 and interface PJSIP/1001."""

    model_config = ConfigDict(extra="forbid", strict=True)
    extension: Extension
    interface: Interface | None = None
    team_id: int | None = None
    skills: Annotated[list[SkillIn], Field(max_length=50)] = []


class UserDraft(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    username: Username
    display_name: DisplayName
    password: Password
    role: Role = Role.AGENT
    email: Annotated[str, StringConstraints(max_length=320)] | None = None
    language: Language = "en"
    agent: AgentIn | None = None


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    display_name: DisplayName | None = None
    password: Password | None = None
    role: Role | None = None
    email: Annotated[str, StringConstraints(max_length=320)] | None = None
    language: Language | None = None
    active: bool | None = None
    agent: AgentIn | None = None


class TeamDraft(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: DisplayName
    lead_user_id: int | None = None


async def _skill(session: AsyncSession, name: str) -> Skill:
    skill = await session.scalar(select(Skill).where(Skill.name == name))
    if skill is None:
        skill = Skill(name=name)
        session.add(skill)
        await session.flush()
    return skill


async def _apply_agent(session: AsyncSession, user: User, agent_in: AgentIn) -> None:
    interface = agent_in.interface or f"PJSIP/{agent_in.extension}"
    if agent_in.team_id is not None and await session.get(Team, agent_in.team_id) is None:
        raise InvalidInput("team not found", fields={"agent.team_id": "no such team"})
    for column, value in ((Agent.extension, agent_in.extension), (Agent.interface, interface)):
        taken = await session.scalar(select(Agent).where(column == value, Agent.user_id != user.id))
        if taken is not None:
            raise Conflict(
                f"{column.key} {value} already belongs to another agent",
                fields={f"agent.{column.key}": "already in use"},
            )
    agent = user.agent or Agent(user_id=user.id)
    agent.extension = agent_in.extension
    agent.interface = interface
    agent.team_id = agent_in.team_id
    skills = [
        AgentSkill(skill_id=(await _skill(session, s.name)).id, level=s.level)
        for s in {s.name: s for s in agent_in.skills}.values()
    ]
    agent.skills = skills
    if user.agent is None:
        user.agent = agent


async def create_user(session: AsyncSession, draft: UserDraft, *, now: datetime) -> User:
    if await session.scalar(select(User).where(User.username == draft.username)) is not None:
        raise Conflict(f"username {draft.username} is taken", fields={"username": "already in use"})
    user = User(
        username=draft.username,
        display_name=draft.display_name,
        email=draft.email,
        role=draft.role.value,
        password_hash=hash_password(draft.password),
        language=draft.language,
        active=True,
        created_at=now,
        updated_at=now,
        # Marks the relationship as loaded, so setting it later needs no lazy load.
        agent=None,
    )
    session.add(user)
    await session.flush()
    if draft.agent is not None:
        await _apply_agent(session, user, draft.agent)
        await session.flush()
    return user


async def get_user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


async def list_users(
    session: AsyncSession, *, limit: int = 100, offset: int = 0
) -> tuple[list[User], int]:
    total = await session.scalar(select(func.count()).select_from(User)) or 0
    rows = await session.scalars(select(User).order_by(User.id).limit(limit).offset(offset))
    return list(rows.all()), total


async def update_user(
    session: AsyncSession, user_id: int, patch: UserPatch, *, now: datetime
) -> User:
    user = await get_user(session, user_id)
    if patch.display_name is not None:
        user.display_name = patch.display_name
    if patch.password is not None:
        user.password_hash = hash_password(patch.password)
    if patch.role is not None:
        user.role = patch.role.value
    if "email" in patch.model_fields_set:
        user.email = patch.email
    if patch.language is not None:
        user.language = patch.language
    if patch.active is not None:
        user.active = patch.active
    if patch.agent is not None:
        await _apply_agent(session, user, patch.agent)
    user.updated_at = now
    await session.flush()
    return user


async def unlock_user(session: AsyncSession, user_id: int) -> User:
    """Lift a lock failed sign-ins put on the user's name, and forget the failures."""
    user = await get_user(session, user_id)
    await forget_failures(session, user.username)
    return user


async def delete_user(session: AsyncSession, user_id: int) -> None:
    user = await get_user(session, user_id)
    await session.delete(user)
    await session.flush()


async def agent_by_interface(session: AsyncSession, interface: str) -> Agent | None:
    return await session.scalar(select(Agent).where(Agent.interface == interface))


@dataclass(frozen=True, slots=True)
class RosterAgent:
    """One agent as the services that look at every agent need them: plain values."""

    agent_id: int
    user_id: int
    name: str
    active: bool
    extension: str
    interface: str
    team_id: int | None
    skills: Mapping[str, int]  # skill name -> level; read-only


_NO_SKILLS: Mapping[str, int] = MappingProxyType({})


async def agent_roster(session: AsyncSession, *, active_only: bool = False) -> list[RosterAgent]:
    """Every agent (or every active one), by agent id, in two statements.

    Read as rows, not ORM entities: the PBX directory and the ticket router read
    the whole roster while a call center is busy, and with 2,000 agents the entities
    (each with its skill collection) cost ~60 ms of event-loop time and ~30,000
    objects a read, against ~7 ms for the rows (docs/benchmarks.md, cluster).
    """
    agents = select(
        Agent.id,
        Agent.user_id,
        User.display_name,
        User.active,
        Agent.extension,
        Agent.interface,
        Agent.team_id,
    ).join(User, User.id == Agent.user_id)
    if active_only:
        agents = agents.where(User.active.is_(True))
    rows = (await session.execute(agents.order_by(Agent.id))).all()
    skills: defaultdict[int, dict[str, int]] = defaultdict(dict)
    held = select(AgentSkill.agent_id, Skill.name, AgentSkill.level).join(
        Skill, Skill.id == AgentSkill.skill_id
    )
    for agent_id, name, level in await session.execute(held):
        skills[agent_id][name] = level
    return [
        RosterAgent(
            agent_id=agent_id,
            user_id=user_id,
            name=name,
            active=active,
            extension=extension,
            interface=interface,
            team_id=team_id,
            skills=MappingProxyType(skills[agent_id]) if agent_id in skills else _NO_SKILLS,
        )
        for agent_id, user_id, name, active, extension, interface, team_id in rows
    ]


async def create_team(session: AsyncSession, draft: TeamDraft, *, now: datetime) -> Team:
    if await session.scalar(select(Team).where(Team.name == draft.name)) is not None:
        raise Conflict(f"team {draft.name} exists", fields={"name": "already in use"})
    if draft.lead_user_id is not None:
        await get_user(session, draft.lead_user_id)
    team = Team(name=draft.name, lead_user_id=draft.lead_user_id, created_at=now)
    session.add(team)
    await session.flush()
    return team


async def list_teams(session: AsyncSession) -> list[Team]:
    return list((await session.scalars(select(Team).order_by(Team.name))).all())
