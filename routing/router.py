"""Ticket routing: which agent gets a new or returned ticket — pure, over values.

``route`` makes one pass over the agents (O(agents), nothing sorted):

1. Filters, in this order; an agent is counted under the first that drops it:
   *returned* (the ticket's current assignee: a returned ticket goes to someone
   else), *team* (only with ``team_only``), *skills* (every skill the category
   requires, at or above its level), *availability* (below), *capacity* (weighted
   load plus this ticket's weight must stay within the agent's capacity).
2. Among the rest: the lowest load ratio *after* taking the ticket,
   ``(load + weight) / capacity`` (so between unequal capacities more room wins);
   ties go to the least recently assigned (never assigned first) — round-robin
   among equals as long as ``Assignment.at`` is fed back as ``last_assigned_at``
   (``route_backlog`` does so between its decisions); then the lowest agent id.
3. Nobody left → ``QueuedForTeam``: the ticket's own team, else its category's,
   else ``default_team``.  Route the queue again with ``route_backlog`` when an
   agent becomes available (``why_unavailable`` turns None) or frees capacity.
   Both outcomes carry a ``RoutingReason`` (who was dropped by which filter) for
   the audit trail.

Availability comes from the CTI when the PBX knows the agent, web presence
otherwise:

* ``ready`` → available; ``paused`` → never (a deliberate break).
* ``ringing``, ``on_call`` → only with ``allow_on_call``.
* ``wrap_up`` → only with ``allow_on_call``: wrap-up is the call's after-work
  (notes, disposition), so it counts as part of the call.
* ``logged_out``, ``unknown`` → the PBX has no say (tickets are not calls, so an
  agent out of the phone queues still works tickets): web presence decides,
  ``online`` → available, ``offline`` → not.  A known phone state wins over web
  presence, so a ``ready`` agent whose browser is closed still counts.

Loads are weighted by priority (``RoutingRules.load_of`` turns counts by
priority into a load); capacities are in the same weighted units.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from desk.errors import InvalidInput
from desk.models import TicketPriority
from routing.sla import SlaError, parse_duration

DEFAULT_WEIGHTS: Mapping[str, float] = {"low": 0.5, "normal": 1.0, "high": 2.0, "urgent": 4.0}
SKILL_LEVELS = range(1, 11)
_RULE_KEYS = (
    "allow_on_call",
    "reassign_when_offline",
    "offline_grace",
    "team_only",
    "default_team",
    "weights",
    "capacity",
    "categories",
)
# Loads are sums of float weights; forgive the rounding of e.g. 0.1 + 0.2.
_SLACK = 1e-9


class RoutingError(InvalidInput):
    code = "invalid_routing"


def _fail(field_name: str, problem: str) -> RoutingError:
    return RoutingError(f"{field_name}: {problem}", fields={field_name: problem})


class Presence(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class PhoneState(StrEnum):
    READY = "ready"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"
    LOGGED_OUT = "logged_out"
    UNKNOWN = "unknown"


class Exclusion(StrEnum):
    """Why an agent did not get the ticket (the filter that dropped them)."""

    RETURNED = "returned"
    TEAM = "team"
    SKILLS = "skills"
    OFFLINE = "offline"
    PAUSED = "paused"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    CAPACITY = "capacity"


# By phone state, with and without allow_on_call.  OFFLINE here means "the PBX has
# no say": web presence decides (online → available).
_BY_PHONE: dict[bool, dict[PhoneState, Exclusion | None]] = {
    allow: {
        PhoneState.READY: None,
        PhoneState.RINGING: None if allow else Exclusion.ON_CALL,
        PhoneState.ON_CALL: None if allow else Exclusion.ON_CALL,
        PhoneState.WRAP_UP: None if allow else Exclusion.WRAP_UP,
        PhoneState.PAUSED: Exclusion.PAUSED,
        PhoneState.LOGGED_OUT: Exclusion.OFFLINE,
        PhoneState.UNKNOWN: Exclusion.OFFLINE,
    }
    for allow in (False, True)
}


@dataclass(frozen=True, slots=True, kw_only=True)
class CategoryRule:
    skills: Mapping[str, int] = field(default_factory=dict)
    team_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingRules:
    """Validated routing configuration; build it with ``from_config`` at start-up.

    A category without a rule (or a ticket without a category) needs no skills.
    """

    categories: Mapping[str, CategoryRule] = field(default_factory=dict)
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    default_capacity: float = 10.0
    capacities: Mapping[int, float] = field(default_factory=dict)  # per agent id
    allow_on_call: bool = False
    reassign_when_offline: bool = False
    offline_grace: timedelta = timedelta(minutes=15)
    team_only: bool = False
    default_team: int | None = None

    def __post_init__(self) -> None:
        for name, rule in self.categories.items():
            for skill, level in rule.skills.items():
                _level(level, f"categories.{name}.skills.{skill}")
        missing = [p.value for p in TicketPriority if p.value not in self.weights]
        if missing:
            raise _fail(f"weights.{missing[0]}", "required (one weight per priority)")
        for priority, weight in self.weights.items():
            if priority not in DEFAULT_WEIGHTS:
                raise _fail(f"weights.{priority}", "unknown priority")
            _number(weight, f"weights.{priority}", least=0)
        _number(self.default_capacity, "capacity.default", above=0)
        for agent_id, capacity in self.capacities.items():
            _number(capacity, f"capacity.agents.{agent_id}", above=0)
        if self.offline_grace < timedelta(0):
            raise _fail("offline_grace", "must not be negative")

    def weight_of(self, priority: str) -> float:
        try:
            return self.weights[priority]
        except KeyError:
            raise _fail("priority", f"unknown priority {priority!r}") from None

    def load_of(self, open_by_priority: Mapping[str, int]) -> float:
        """Weighted load of an agent's open tickets, counted by priority."""
        return sum((self.weight_of(p) * n for p, n in open_by_priority.items()), 0.0)

    def capacity_of(self, agent_id: int) -> float:
        return self.capacities.get(agent_id, self.default_capacity)

    def team_for(self, ticket: TicketToRoute) -> int | None:
        """The fallback queue: the ticket's team, its category's, or the default."""
        if ticket.team_id is not None:
            return ticket.team_id
        rule = self.categories.get(ticket.category) if ticket.category is not None else None
        if rule is not None and rule.team_id is not None:
            return rule.team_id
        return self.default_team

    @classmethod
    def from_config(
        cls, config: Mapping[str, object], *, teams: Mapping[str, int] | None = None
    ) -> RoutingRules:
        """Build from the TOML ``[routing]`` table; every error names its field::

        allow_on_call = false            reassign_when_offline = true
        offline_grace = "15m"            team_only = false
        default_team = "Support"         # a team name (looked up in ``teams``) or id
        weights = {low = 0.5, normal = 1, high = 2, urgent = 4}   # partial is fine
        capacity = {default = 10, agents = {"17" = 6}}            # by agent id
        [categories.billing]
        skills = {billing = 3, german = 1}                        # levels 1..10
        team = "Billing"
        """
        for key in config:
            if key not in _RULE_KEYS:
                raise _fail(key, f"unknown key (expected one of {', '.join(_RULE_KEYS)})")
        teams = teams or {}
        capacity = _table(config.get("capacity", {}), "capacity", keys=("default", "agents"))
        default_team = config.get("default_team")
        grace = config.get("offline_grace", "15m")
        try:
            offline_grace = parse_duration(grace, field_name="offline_grace")
        except SlaError as error:
            raise RoutingError(error.message, fields=error.fields) from None
        return cls(
            categories=_categories(config.get("categories", {}), teams),
            weights=_weights(config.get("weights", {})),
            default_capacity=_number(capacity.get("default", 10.0), "capacity.default", above=0),
            capacities=_capacities(capacity.get("agents", {})),
            allow_on_call=_flag(config, "allow_on_call"),
            reassign_when_offline=_flag(config, "reassign_when_offline"),
            offline_grace=offline_grace,
            team_only=_flag(config, "team_only"),
            default_team=None
            if default_team is None
            else _team(default_team, teams, "default_team"),
        )


def _level(raw: object, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw not in SKILL_LEVELS:
        raise _fail(where, f"a skill level from 1 to 10, got {raw!r}")
    return raw


def _number(
    raw: object, where: str, *, above: float | None = None, least: float | None = None
) -> float:
    """A finite number, greater than ``above`` / at least ``least`` when given."""
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise _fail(where, f"a number, got {raw!r}")
    if above is not None and raw <= above:
        raise _fail(where, f"must be above {above:g}, got {raw!r}")
    if least is not None and raw < least:
        raise _fail(where, f"must be at least {least:g}, got {raw!r}")
    return float(raw)


def _flag(config: Mapping[str, object], key: str) -> bool:
    value = config.get(key, False)
    if not isinstance(value, bool):
        raise _fail(key, f"true or false, got {value!r}")
    return value


def _table(raw: object, where: str, *, keys: Sequence[str] | None = None) -> Mapping[str, object]:
    if not isinstance(raw, Mapping):
        raise _fail(where, "a table")
    for key in raw:
        if not isinstance(key, str):
            raise _fail(f"{where}.{key}", "keys are names")
        if keys is not None and key not in keys:
            raise _fail(f"{where}.{key}", f"unknown key (expected {', '.join(keys)})")
    return raw


def _team(raw: object, teams: Mapping[str, int], where: str) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        if raw not in teams:
            raise _fail(where, f"no team named {raw!r}")
        return teams[raw]
    raise _fail(where, f"a team name or id, got {raw!r}")


def _weights(raw: object) -> dict[str, float]:
    weights = dict(DEFAULT_WEIGHTS)
    for priority, weight in _table(raw, "weights").items():
        where = f"weights.{priority}"
        if priority not in weights:
            raise _fail(where, f"unknown priority (expected {', '.join(DEFAULT_WEIGHTS)})")
        weights[priority] = _number(weight, where, least=0)
    return weights


def _capacities(raw: object) -> dict[int, float]:
    capacities = {}
    for key, capacity in _table(raw, "capacity.agents").items():
        where = f"capacity.agents.{key}"
        if not key.isdigit():
            raise _fail(where, "agent ids are whole numbers")
        capacities[int(key)] = _number(capacity, where, above=0)
    return capacities


def _categories(raw: object, teams: Mapping[str, int]) -> dict[str, CategoryRule]:
    categories = {}
    for name, spec in _table(raw, "categories").items():
        where = f"categories.{name}"
        spec = _table(spec, where, keys=("skills", "team"))
        if not spec:
            raise _fail(where, "give skills, a team or both (or leave the category out)")
        skills = {}
        table = _table(spec.get("skills", {}), f"{where}.skills")
        if "skills" in spec and not table:
            raise _fail(f"{where}.skills", "empty: list at least one skill, or leave skills out")
        for skill, level in table.items():
            if skill != skill.strip().lower() or not skill:
                problem = "skill names are lower case, as agents' skills are stored"
                raise _fail(f"{where}.skills.{skill}", f"{problem}, got {skill!r}")
            skills[skill] = _level(level, f"{where}.skills.{skill}")
        team = spec.get("team")
        team_id = None if team is None else _team(team, teams, f"{where}.team")
        categories[name] = CategoryRule(skills=skills, team_id=team_id)
    return categories


# --- the decision -----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSnapshot:
    """An agent as routing sees them at one moment.  ``agent_id`` is the id tickets
    are assigned to; ``open_load`` is already weighted (see ``RoutingRules.load_of``);
    ``offline_since`` is when web presence went offline (for reassignment)."""

    agent_id: int
    team_id: int | None
    skills: Mapping[str, int]
    presence: Presence
    phone: PhoneState = PhoneState.UNKNOWN
    open_load: float = 0.0
    last_assigned_at: datetime | None = None
    offline_since: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketToRoute:
    ticket_id: int
    category: str | None
    priority: TicketPriority
    team_id: int | None = None
    current_assignee: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingReason:
    """The audit trail of one decision: how many agents were looked at, how many
    fitted, and which filter dropped whom (agent ids in input order)."""

    considered: int
    eligible: int
    excluded: Mapping[Exclusion, tuple[int, ...]]

    @property
    def counts(self) -> dict[Exclusion, int]:
        return {why: len(ids) for why, ids in self.excluded.items()}

    @property
    def text(self) -> str:
        dropped = ", ".join(f"{why.value} {len(ids)}" for why, ids in self.excluded.items())
        return f"{self.eligible} of {self.considered} agents fit" + (
            f"; excluded: {dropped}" if dropped else ""
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Assignment:
    ticket_id: int
    agent_id: int
    at: datetime
    load_ratio: float  # the agent's (load + weight) / capacity after this ticket
    reason: RoutingReason


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedForTeam:
    """Nobody fits: the ticket waits in the team's queue (None: the general queue)."""

    ticket_id: int
    team_id: int | None
    reason: RoutingReason


def why_unavailable(agent: AgentSnapshot, rules: RoutingRules) -> Exclusion | None:
    """None when the agent may take tickets now (rules in the module notes)."""
    why = _BY_PHONE[rules.allow_on_call][agent.phone]
    if why is Exclusion.OFFLINE and agent.presence is Presence.ONLINE:
        return None
    return why


def route(
    ticket: TicketToRoute,
    agents: Iterable[AgentSnapshot],
    rules: RoutingRules,
    *,
    now: datetime,
) -> Assignment | QueuedForTeam:
    """The best agent for ``ticket`` or the team queue (see the module notes)."""
    _check_aware(now)
    weight = rules.weight_of(ticket.priority)
    team = rules.team_for(ticket)
    rule = rules.categories.get(ticket.category) if ticket.category is not None else None
    required = tuple(rule.skills.items()) if rule is not None else ()
    by_phone = _BY_PHONE[rules.allow_on_call]
    capacities, default_capacity = rules.capacities, rules.default_capacity
    team_only = rules.team_only and team is not None
    returned = ticket.current_assignee
    online, offline = Presence.ONLINE, Exclusion.OFFLINE
    returned_, team_, skills_, capacity_ = (
        Exclusion.RETURNED,
        Exclusion.TEAM,
        Exclusion.SKILLS,
        Exclusion.CAPACITY,
    )

    excluded: defaultdict[Exclusion, list[int]] = defaultdict(list)
    considered = eligible = 0
    best: AgentSnapshot | None = None
    best_ratio = math.inf
    for agent in agents:
        considered += 1
        agent_id = agent.agent_id
        why: Exclusion | None = None
        if agent_id == returned:
            why = returned_
        elif team_only and agent.team_id != team:
            why = team_
        else:
            skills = agent.skills
            for skill, level in required:
                if skills.get(skill, 0) < level:
                    why = skills_
                    break
            else:
                why = by_phone[agent.phone]
                if why is offline and agent.presence is online:
                    why = None
        if why is None:
            capacity = capacities.get(agent_id, default_capacity)
            load = agent.open_load + weight
            if load > capacity + _SLACK:
                why = capacity_
            else:
                eligible += 1
                ratio = load / capacity
                if (
                    best is None
                    or ratio < best_ratio
                    or (ratio == best_ratio and _fairer(agent, best))
                ):
                    best, best_ratio = agent, ratio
                continue
        excluded[why].append(agent_id)

    reason = RoutingReason(
        considered=considered,
        eligible=eligible,
        excluded={why: tuple(excluded[why]) for why in Exclusion if why in excluded},
    )
    if best is None:
        return QueuedForTeam(ticket_id=ticket.ticket_id, team_id=team, reason=reason)
    return Assignment(
        ticket_id=ticket.ticket_id,
        agent_id=best.agent_id,
        at=now,
        load_ratio=best_ratio,
        reason=reason,
    )


def _fairer(agent: AgentSnapshot, best: AgentSnapshot) -> bool:
    """Between equal loads: never assigned, then least recently, then lowest id."""
    mine, theirs = agent.last_assigned_at, best.last_assigned_at
    if mine != theirs:
        return mine is None or (theirs is not None and mine < theirs)
    return agent.agent_id < best.agent_id


def route_backlog(
    tickets: Iterable[TicketToRoute],
    agents: Sequence[AgentSnapshot],
    rules: RoutingRules,
    *,
    now: datetime,
) -> tuple[list[Assignment | QueuedForTeam], list[AgentSnapshot]]:
    """Route tickets one after another in the given order (pass the queue in the
    order it should be served), each decision seeing the load and
    ``last_assigned_at`` the earlier ones gave.  Use it for the team queues when
    an agent becomes available.  Returns the decisions and the updated agents."""
    current = list(agents)
    index = {agent.agent_id: i for i, agent in enumerate(current)}
    decisions: list[Assignment | QueuedForTeam] = []
    for ticket in tickets:
        decision = route(ticket, current, rules, now=now)
        decisions.append(decision)
        if isinstance(decision, Assignment):
            i = index[decision.agent_id]
            current[i] = replace(
                current[i],
                open_load=current[i].open_load + rules.weight_of(ticket.priority),
                last_assigned_at=now,
            )
    return decisions, current


def reassignments(
    open_tickets_by_agent: Mapping[int, Sequence[int]],
    agents: Iterable[AgentSnapshot],
    rules: RoutingRules,
    *,
    now: datetime,
) -> list[int]:
    """Ticket ids to route again (sorted): those of agents who have been offline
    (``why_unavailable`` is OFFLINE) for at least ``offline_grace``, when
    ``reassign_when_offline`` is on.  An agent without ``offline_since`` keeps
    their tickets (how long they have been away is unknown), as do ids with no
    snapshot."""
    moved: list[int] = []
    for agent_id in absent_agents(agents, rules, now=now):
        moved.extend(open_tickets_by_agent.get(agent_id, ()))
    return sorted(moved)


def absent_agents(
    agents: Iterable[AgentSnapshot], rules: RoutingRules, *, now: datetime
) -> list[int]:
    """Ids of the agents whose tickets ``reassignments`` moves (in input order), so
    a caller need only load those agents' open tickets."""
    _check_aware(now)
    if not rules.reassign_when_offline:
        return []
    return [
        agent.agent_id
        for agent in agents
        if agent.offline_since is not None
        and why_unavailable(agent, rules) is Exclusion.OFFLINE
        and now - agent.offline_since >= rules.offline_grace
    ]


def _check_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be time-zone aware, got {now!r}")
