"""Ticket routing: skills, load, capacity, pause, offline, on-call, wrap-up,
fairness, the team-queue fallback, reassignment after going offline, and config."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from desk.errors import InvalidInput
from desk.models import TicketPriority
from routing.router import (
    AgentSnapshot,
    Assignment,
    CategoryRule,
    Exclusion,
    PhoneState,
    Presence,
    QueuedForTeam,
    RoutingError,
    RoutingRules,
    TicketToRoute,
    reassignments,
    route,
    route_backlog,
    why_unavailable,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SUPPORT, BILLING, ESCALATIONS = 1, 2, 3
TEAMS = {"Support": SUPPORT, "Billing": BILLING, "Escalations": ESCALATIONS}

CONFIG_TOML = """
allow_on_call = false
reassign_when_offline = true
offline_grace = "15m"
default_team = "Support"
weights = {low = 0.5, normal = 1, high = 2, urgent = 4}
capacity = {default = 6, agents = {"7" = 3}}

[categories.billing]
skills = {billing = 3}
team = "Billing"

[categories.sepa]
skills = {billing = 5, german = 2}
team = "Billing"
"""
RULES = RoutingRules.from_config(tomllib.loads(CONFIG_TOML), teams=TEAMS)


def agent(agent_id: int, **overrides: Any) -> AgentSnapshot:
    values: dict[str, Any] = {
        "agent_id": agent_id,
        "team_id": BILLING,
        "skills": {"billing": 5, "german": 3},
        "presence": Presence.ONLINE,
        "phone": PhoneState.READY,
        "open_load": 0.0,
    }
    return AgentSnapshot(**(values | overrides))


def ticket(ticket_id: int = 100, **overrides: Any) -> TicketToRoute:
    values: dict[str, Any] = {
        "ticket_id": ticket_id,
        "category": "billing",
        "priority": TicketPriority.NORMAL,
    }
    return TicketToRoute(**(values | overrides))


def chosen(decision: Assignment | QueuedForTeam) -> int | None:
    return decision.agent_id if isinstance(decision, Assignment) else None


def minutes_ago(n: float) -> datetime:
    return NOW - timedelta(minutes=n)


# --- who gets the ticket ------------------------------------------------------

CASES: list[tuple[str, dict[str, Any], list[AgentSnapshot], int | None]] = [
    (
        "an agent without a required skill is excluded",
        {},
        [agent(1, skills={"german": 9}, open_load=0), agent(2, open_load=3)],
        2,
    ),
    (
        "an agent whose skill level is too low is excluded",
        {},
        [agent(1, skills={"billing": 2}), agent(2, open_load=3)],
        2,
    ),
    (
        "a skill exactly at the required level is enough",
        {},
        [agent(1, skills={"billing": 3})],
        1,
    ),
    (
        "every required skill must be at its level",
        {"category": "sepa"},
        [agent(1, skills={"billing": 9, "german": 1}), agent(2, open_load=5)],
        2,
    ),
    (
        "a category without rules needs no skills",
        {"category": "general"},
        [agent(1, skills={}, open_load=2), agent(2, skills={}, open_load=1)],
        2,
    ),
    (
        "the least loaded agent wins",
        {},
        [agent(1, open_load=3), agent(2, open_load=1), agent(3, open_load=2)],
        2,
    ),
    (
        "loads are compared after weighting by priority",
        {},
        # 1 urgent (4.0) is more than 3 normal (3.0)
        [
            agent(1, open_load=RULES.load_of({"urgent": 1})),
            agent(2, open_load=RULES.load_of({"normal": 3})),
        ],
        2,
    ),
    (
        "the load ratio counts each agent's own capacity",
        {},
        # agent 7 has capacity 3: (1 + 1) / 3 > (2 + 1) / 6
        [agent(7, open_load=1), agent(8, open_load=2)],
        8,
    ),
    (
        "a full agent is skipped",
        {},
        [agent(1, open_load=6), agent(2, open_load=5)],
        2,
    ),
    (
        "a ticket heavier than the remaining capacity is skipped",
        {"priority": TicketPriority.URGENT},
        # 3 + 4 > 6 for agent 1; 2 + 4 = 6 fits agent 2 exactly
        [
            agent(1, open_load=3),
            agent(2, open_load=2, skills={"billing": 3}),
            agent(3, open_load=5),
        ],
        2,
    ),
    (
        "a paused agent is skipped",
        {},
        [agent(1, phone=PhoneState.PAUSED), agent(2, open_load=5)],
        2,
    ),
    (
        "an offline agent is skipped when the PBX has no state for them",
        {},
        [agent(1, presence=Presence.OFFLINE, phone=PhoneState.UNKNOWN), agent(2, open_load=5)],
        2,
    ),
    (
        "an agent logged out of the phone queues but online on the web takes tickets",
        {},
        [agent(1, phone=PhoneState.LOGGED_OUT), agent(2, open_load=5)],
        1,
    ),
    (
        "a known phone state wins over web presence",
        {},
        [agent(1, presence=Presence.OFFLINE, phone=PhoneState.READY), agent(2, open_load=5)],
        1,
    ),
    (
        "an agent on a call is skipped by default",
        {},
        [
            agent(1, phone=PhoneState.ON_CALL),
            agent(2, phone=PhoneState.RINGING),
            agent(3, open_load=5),
        ],
        3,
    ),
    (
        "an agent in wrap-up is skipped by default",
        {},
        [agent(1, phone=PhoneState.WRAP_UP), agent(2, open_load=5)],
        2,
    ),
    (
        "the current assignee of a returned ticket is skipped",
        {"current_assignee": 1},
        [agent(1), agent(2, open_load=5)],
        2,
    ),
    (
        "equal agents: the one never assigned goes first",
        {},
        [
            agent(1, last_assigned_at=minutes_ago(30)),
            agent(2),
            agent(3, last_assigned_at=minutes_ago(60)),
        ],
        2,
    ),
    (
        "equal agents: the least recently assigned goes next",
        {},
        [agent(1, last_assigned_at=minutes_ago(30)), agent(3, last_assigned_at=minutes_ago(60))],
        3,
    ),
    (
        "equal agents assigned at the same moment: the lowest id",
        {},
        [agent(4, last_assigned_at=minutes_ago(5)), agent(2, last_assigned_at=minutes_ago(5))],
        2,
    ),
    (
        "fairness never beats a lower load",
        {},
        [agent(1, open_load=1), agent(2, open_load=2, last_assigned_at=None)],
        1,
    ),
]


@pytest.mark.parametrize(
    ("case", "changes", "agents", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_routing_picks(
    case: str, changes: dict[str, Any], agents: list[AgentSnapshot], expected: int | None
) -> None:
    assert chosen(route(ticket(**changes), agents, RULES, now=NOW)) == expected


ON_CALL_CASES = [
    ("ringing is available when calls are allowed", PhoneState.RINGING, True, True),
    ("on a call is available when calls are allowed", PhoneState.ON_CALL, True, True),
    ("wrap-up is available when calls are allowed", PhoneState.WRAP_UP, True, True),
    ("ringing is unavailable otherwise", PhoneState.RINGING, False, False),
    ("on a call is unavailable otherwise", PhoneState.ON_CALL, False, False),
    ("wrap-up is unavailable otherwise", PhoneState.WRAP_UP, False, False),
    ("paused is unavailable even when calls are allowed", PhoneState.PAUSED, True, False),
]


@pytest.mark.parametrize(
    ("case", "phone", "allow", "available"), ON_CALL_CASES, ids=[c[0] for c in ON_CALL_CASES]
)
def test_allow_on_call_decides_for_agents_on_the_phone(
    case: str, phone: PhoneState, allow: bool, available: bool
) -> None:
    rules = replace(RULES, allow_on_call=allow)
    busy = agent(1, phone=phone)
    assert (why_unavailable(busy, rules) is None) is available
    assert (chosen(route(ticket(), [busy], rules, now=NOW)) == 1) is available


def test_the_route_decision_agrees_with_why_unavailable_for_every_state() -> None:
    for allow in (False, True):
        rules = replace(RULES, allow_on_call=allow)
        for presence in Presence:
            for phone in PhoneState:
                one = agent(1, presence=presence, phone=phone)
                decision = route(ticket(), [one], rules, now=NOW)
                expected = why_unavailable(one, rules)
                assert (chosen(decision) == 1) is (expected is None)
                if expected is not None:
                    assert decision.reason.excluded == {expected: (1,)}


# --- fairness over a sequence ---------------------------------------------------


def test_equal_agents_get_tickets_in_rotation_when_last_assigned_is_fed_back() -> None:
    agents = [agent(i, open_load=0) for i in (3, 1, 2)]
    order = []
    for n in range(6):
        decision = route(ticket(100 + n, priority=TicketPriority.LOW), agents, RULES, now=NOW)
        assert isinstance(decision, Assignment)
        order.append(decision.agent_id)
        agents = [
            replace(a, last_assigned_at=NOW + timedelta(seconds=n))
            if a.agent_id == decision.agent_id
            else a
            for a in agents
        ]
    assert order == [1, 2, 3, 1, 2, 3]


def test_a_backlog_is_spread_by_load_then_rotation() -> None:
    agents = [agent(1), agent(2), agent(3, open_load=1)]
    tickets = [ticket(100 + n) for n in range(5)]
    decisions, after = route_backlog(tickets, agents, RULES, now=NOW)
    assert [chosen(d) for d in decisions] == [1, 2, 3, 1, 2]
    assert [a.open_load for a in after] == [2, 2, 2]
    assert all(a.last_assigned_at == NOW for a in after)


def test_a_backlog_fills_capacity_then_queues_the_rest() -> None:
    decisions, after = route_backlog(
        [ticket(100 + n, priority=TicketPriority.URGENT) for n in range(3)],
        [agent(1, open_load=1), agent(2, open_load=2)],
        RULES,
        now=NOW,
    )
    assert [chosen(d) for d in decisions] == [1, 2, None]
    assert decisions[2] == QueuedForTeam(ticket_id=102, team_id=BILLING, reason=decisions[2].reason)
    assert decisions[2].reason.counts == {Exclusion.CAPACITY: 2}
    assert [a.open_load for a in after] == [5, 6]


# --- nobody fits ---------------------------------------------------------------


def test_nobody_fits_queues_for_the_team_with_who_was_excluded_by_what() -> None:
    agents = [
        agent(1, skills={"billing": 1}),
        agent(2, presence=Presence.OFFLINE, phone=PhoneState.LOGGED_OUT),
        agent(3, phone=PhoneState.PAUSED),
        agent(4, phone=PhoneState.ON_CALL),
        agent(5, open_load=6),
        agent(6, skills={}),
        agent(9),
    ]
    decision = route(ticket(current_assignee=9), agents, RULES, now=NOW)
    assert isinstance(decision, QueuedForTeam)
    assert decision.team_id == BILLING
    assert decision.reason.considered == 7
    assert decision.reason.eligible == 0
    assert decision.reason.excluded == {
        Exclusion.RETURNED: (9,),
        Exclusion.SKILLS: (1, 6),
        Exclusion.OFFLINE: (2,),
        Exclusion.PAUSED: (3,),
        Exclusion.ON_CALL: (4,),
        Exclusion.CAPACITY: (5,),
    }
    assert decision.reason.text == (
        "0 of 7 agents fit; excluded: returned 1, skills 2, offline 1, paused 1, on_call 1, "
        "capacity 1"
    )


QUEUE_CASES = [
    ("the ticket's own team comes first", {"team_id": ESCALATIONS}, ESCALATIONS),
    ("then the category's team", {}, BILLING),
    ("then the default team", {"category": "general"}, SUPPORT),
    ("a ticket without a category goes to the default team", {"category": None}, SUPPORT),
]


@pytest.mark.parametrize(("case", "changes", "team"), QUEUE_CASES, ids=[c[0] for c in QUEUE_CASES])
def test_the_fallback_queue(case: str, changes: dict[str, Any], team: int) -> None:
    decision = route(ticket(**changes), [], RULES, now=NOW)
    assert decision == QueuedForTeam(ticket_id=100, team_id=team, reason=decision.reason)
    assert decision.reason.text == "0 of 0 agents fit"


def test_a_queued_ticket_is_assigned_once_someone_becomes_available() -> None:
    paused = agent(1, phone=PhoneState.PAUSED)
    assert chosen(route(ticket(), [paused], RULES, now=NOW)) is None
    back = replace(paused, phone=PhoneState.READY)
    assert why_unavailable(back, RULES) is None
    decisions, _ = route_backlog([ticket()], [back], RULES, now=NOW + timedelta(minutes=5))
    assert decisions[0] == Assignment(
        ticket_id=100,
        agent_id=1,
        at=NOW + timedelta(minutes=5),
        load_ratio=1 / 6,
        reason=decisions[0].reason,
    )


def test_team_only_keeps_tickets_inside_their_team() -> None:
    rules = replace(RULES, team_only=True)
    agents = [agent(1, team_id=SUPPORT), agent(2, team_id=BILLING, open_load=5)]
    decision = route(ticket(), agents, rules, now=NOW)
    assert chosen(decision) == 2
    assert decision.reason.excluded == {Exclusion.TEAM: (1,)}
    assert chosen(route(ticket(), agents, RULES, now=NOW)) == 1


def test_now_must_be_time_zone_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        route(ticket(), [agent(1)], RULES, now=datetime(2026, 3, 2, 9))


# --- reassignment ----------------------------------------------------------------


def offline(agent_id: int, since: datetime | None, **overrides: Any) -> AgentSnapshot:
    values = {"presence": Presence.OFFLINE, "phone": PhoneState.LOGGED_OUT, "offline_since": since}
    return agent(agent_id, **(values | overrides))


OPEN = {1: [11, 12], 2: [21], 3: [31], 4: [41], 5: [51]}
REASSIGN_CASES: list[tuple[str, RoutingRules, list[AgentSnapshot], list[int]]] = [
    (
        "tickets of an agent offline past the grace period are routed again",
        RULES,
        [offline(1, minutes_ago(16)), offline(2, minutes_ago(15)), agent(3)],
        [11, 12, 21],
    ),
    (
        "an agent offline within the grace period keeps their tickets",
        RULES,
        [offline(1, minutes_ago(14))],
        [],
    ),
    ("an agent offline since an unknown time keeps their tickets", RULES, [offline(1, None)], []),
    (
        "an agent with a known phone state is not offline",
        RULES,
        [
            offline(1, minutes_ago(60), phone=PhoneState.ON_CALL),
            offline(2, minutes_ago(60), phone=PhoneState.PAUSED),
        ],
        [],
    ),
    (
        "nothing moves when reassignment is off",
        replace(RULES, reassign_when_offline=False),
        [offline(1, minutes_ago(600))],
        [],
    ),
    (
        "a zero grace period moves tickets at once",
        replace(RULES, offline_grace=timedelta(0)),
        [offline(5, NOW), offline(4, NOW)],
        [41, 51],
    ),
]


@pytest.mark.parametrize(
    ("case", "rules", "agents", "expected"), REASSIGN_CASES, ids=[c[0] for c in REASSIGN_CASES]
)
def test_reassignment(
    case: str, rules: RoutingRules, agents: list[AgentSnapshot], expected: list[int]
) -> None:
    assert reassignments(OPEN, agents, rules, now=NOW) == expected


def test_reassigned_tickets_go_to_someone_else() -> None:
    gone = offline(1, minutes_ago(20))
    [moved, _] = reassignments(OPEN, [gone], RULES, now=NOW)
    decision = route(
        ticket(moved, current_assignee=1), [gone, agent(2, open_load=5)], RULES, now=NOW
    )
    assert chosen(decision) == 2


# --- config ----------------------------------------------------------------------


def test_the_config_is_read() -> None:
    assert RULES.categories["sepa"] == CategoryRule(
        skills={"billing": 5, "german": 2}, team_id=BILLING
    )
    assert RULES.weights == {"low": 0.5, "normal": 1.0, "high": 2.0, "urgent": 4.0}
    assert (RULES.default_capacity, RULES.capacity_of(7), RULES.capacity_of(8)) == (6, 3, 6)
    assert RULES.offline_grace == timedelta(minutes=15)
    assert (RULES.allow_on_call, RULES.reassign_when_offline, RULES.team_only) == (
        False,
        True,
        False,
    )
    assert RULES.default_team == SUPPORT


def test_an_empty_config_gives_the_defaults() -> None:
    rules = RoutingRules.from_config({})
    assert rules == RoutingRules()
    assert rules.weights == {"low": 0.5, "normal": 1.0, "high": 2.0, "urgent": 4.0}
    assert rules.load_of({"low": 1, "urgent": 2}) == 8.5


def test_partial_weights_keep_the_other_defaults() -> None:
    rules = RoutingRules.from_config({"weights": {"urgent": 8}})
    assert rules.weights["urgent"] == 8 and rules.weights["low"] == 0.5


BAD_CONFIGS: list[tuple[str, dict[str, Any], str]] = [
    ("an unknown key is refused", {"allow_calls": True}, "allow_calls"),
    ("an unknown priority weight is refused", {"weights": {"critical": 8}}, "weights.critical"),
    ("a negative weight is refused", {"weights": {"low": -1}}, "weights.low"),
    ("a weight must be a number", {"weights": {"low": "half"}}, "weights.low"),
    ("a zero capacity is refused", {"capacity": {"default": 0}}, "capacity.default"),
    (
        "a negative agent capacity is refused",
        {"capacity": {"agents": {"7": -2}}},
        "capacity.agents.7",
    ),
    (
        "agent capacities are keyed by id",
        {"capacity": {"agents": {"bob": 2}}},
        "capacity.agents.bob",
    ),
    ("an unknown capacity key is refused", {"capacity": {"max": 2}}, "capacity.max"),
    (
        "a skill level of 0 is refused",
        {"categories": {"b": {"skills": {"x": 0}}}},
        "categories.b.skills.x",
    ),
    (
        "a skill level of 11 is refused",
        {"categories": {"b": {"skills": {"x": 11}}}},
        "categories.b.skills.x",
    ),
    (
        "a fractional skill level is refused",
        {"categories": {"b": {"skills": {"x": 2.5}}}},
        "categories.b.skills.x",
    ),
    (
        "an unknown category key is refused",
        {"categories": {"b": {"queue": "x"}}},
        "categories.b.queue",
    ),
    ("an unknown team is refused", {"categories": {"b": {"team": "Nobody"}}}, "categories.b.team"),
    ("an unknown default team is refused", {"default_team": "Nobody"}, "default_team"),
    ("flags are booleans", {"allow_on_call": "yes"}, "allow_on_call"),
    ("the grace period is a duration", {"offline_grace": "soon"}, "offline_grace"),
    ("the grace period is not negative", {"offline_grace": "-5m"}, "offline_grace"),
]


@pytest.mark.parametrize(("case", "config", "field"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_names_the_field(case: str, config: dict[str, Any], field: str) -> None:
    with pytest.raises(RoutingError) as caught:
        RoutingRules.from_config(config, teams=TEAMS)
    assert list(caught.value.fields) == [field]
    assert caught.value.message.startswith(f"{field}: ")
    assert isinstance(caught.value, InvalidInput)


def test_rules_built_in_code_are_validated_too() -> None:
    with pytest.raises(RoutingError, match=r"^capacity\.default: "):
        RoutingRules(default_capacity=0)
    with pytest.raises(RoutingError, match=r"^weights\.high: required"):
        RoutingRules(weights={"low": 1, "normal": 1, "urgent": 1})
    with pytest.raises(RoutingError, match=r"^categories\.b\.skills\.x: "):
        RoutingRules(categories={"b": CategoryRule(skills={"x": 12})})


def test_fractional_weights_fill_a_capacity_exactly() -> None:
    rules = RoutingRules(
        weights={"low": 0.1, "normal": 0.1, "high": 0.1, "urgent": 0.1}, default_capacity=0.3
    )
    load = rules.load_of({"low": 1, "normal": 1})  # 0.2, and 0.2 + 0.1 > 0.3 in floats
    decision = route(ticket(category=None), [agent(1, open_load=load)], rules, now=NOW)
    assert chosen(decision) == 1
