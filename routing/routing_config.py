"""Routing set-up from the settings (``config/routing.toml``), built once at start-up.

The ``[routing]`` table becomes ``RoutingRules`` (see ``RoutingRules.from_config``
for its keys), ``[[automation.rules]]`` the automation rules, and
``routing.sweep_interval`` how often the assigner looks at the backlog unasked.
Team names are looked up in the database, so the set-up is built once the
database is up.  Anything wrong is a ``RoutingConfigError`` whose message is one
line naming the file and key, e.g. ``routing.toml: routing.capacity.default:
must be above 0, got -1``; a key the settings do not know (``[routing] bogus``)
is already refused by ``load_settings``.

What is not wrong but probably a mistake — a skill no agent has, a capacity for
an agent id that does not exist — comes back as ``warnings`` (agents and skills
may be added after the first start).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from desk.errors import InvalidInput
from desk.models import Agent, AgentSkill, Skill, Team
from desk.settings import Settings
from routing.automation import AutomationRule, rules_from_config
from routing.router import RoutingRules

log = logging.getLogger(__name__)
ROUTING_FILE = "routing.toml"


class RoutingConfigError(Exception):
    """The routing settings are unusable; ``str()`` is the one line to show the operator."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingSetup:
    rules: RoutingRules
    automation: tuple[AutomationRule, ...] = ()
    sweep_interval: float = 60.0
    warnings: tuple[str, ...] = ()


def routing_table(settings: Settings) -> dict[str, object]:
    """The ``[routing]`` table as ``RoutingRules.from_config`` reads it."""
    table: dict[str, object] = {
        "allow_on_call": settings.routing_allow_on_call,
        "reassign_when_offline": settings.routing_reassign_when_offline,
        "offline_grace": settings.routing_offline_grace,
        "team_only": settings.routing_team_only,
        "weights": settings.routing_weights,
        "capacity": settings.routing_capacity,
        "categories": settings.routing_categories,
    }
    if settings.routing_default_team is not None:
        table["default_team"] = settings.routing_default_team
    return table


def routing_setup_from_config(
    routing: Mapping[str, object],
    *,
    automation: Sequence[object] = (),
    sweep_interval: float = 60.0,
    teams: Mapping[str, int],
    skills: Collection[str] | None = None,
    agent_ids: Collection[int] | None = None,
) -> RoutingSetup:
    """Validate and build; ``skills`` (held by some agent) and ``agent_ids``, when
    given, only produce warnings."""
    try:
        rules = RoutingRules.from_config(routing, teams=teams)
    except InvalidInput as error:
        raise RoutingConfigError(f"{ROUTING_FILE}: routing.{error.message}") from None
    try:
        automation_rules = rules_from_config(list(automation), teams=teams)
    except InvalidInput as error:
        raise RoutingConfigError(f"{ROUTING_FILE}: automation.{error.message}") from None
    if sweep_interval <= 0:
        raise RoutingConfigError(f"{ROUTING_FILE}: routing.sweep_interval: must be above 0")
    warnings: list[str] = []
    if skills is not None:
        for name, rule in rules.categories.items():
            warnings += [
                f"{ROUTING_FILE}: routing.categories.{name}.skills.{skill}: no agent has "
                f"this skill, so {name!r} tickets wait in their team's queue"
                for skill in rule.skills
                if skill not in skills
            ]
    if agent_ids is not None:
        warnings += [
            f"{ROUTING_FILE}: routing.capacity.agents.{agent_id}: there is no such agent"
            for agent_id in rules.capacities
            if agent_id not in agent_ids
        ]
    return RoutingSetup(
        rules=rules,
        automation=automation_rules,
        sweep_interval=sweep_interval,
        warnings=tuple(warnings),
    )


async def load_routing_setup(
    settings: Settings, *, sessions: async_sessionmaker[AsyncSession]
) -> RoutingSetup:
    """The routing set-up the settings describe, checked against the database's
    teams, skills and agents; raises ``RoutingConfigError``, logs the warnings."""
    async with sessions() as session:
        teams = {name: id_ for id_, name in await session.execute(select(Team.id, Team.name))}
        held = await session.scalars(
            select(Skill.name).join(AgentSkill, AgentSkill.skill_id == Skill.id).distinct()
        )
        skills = set(held.all())
        agent_ids = set((await session.scalars(select(Agent.id))).all())
    setup = routing_setup_from_config(
        routing_table(settings),
        automation=settings.automation_rules,
        sweep_interval=settings.routing_sweep_interval,
        teams=teams,
        skills=skills,
        agent_ids=agent_ids,
    )
    for warning in setup.warnings:
        log.warning("%s", warning)
    return setup
