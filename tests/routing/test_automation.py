"""Automation rules: conditions on ticket fields, all/any, ordered actions
without conflicts, and config validation that names the rule and field."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from desk.errors import InvalidInput
from desk.models import TicketPriority
from routing.automation import (
    Action,
    AddTag,
    AutomationError,
    AutomationRule,
    Condition,
    Match,
    Notify,
    NotifyTarget,
    Operator,
    SetPriority,
    SetTeam,
    TicketField,
    TicketValues,
    apply_rules,
    rules_from_config,
)

TEAMS = {"Support": 1, "Billing": 2, "Escalations": 3}
CONFIG_TOML = """
[[rules]]
name = "Platinum outage"
conditions = [
  {field = "tier", equals = "platinum"},
  {field = "subject", contains = "outage"},
]
actions = [{set_priority = "urgent"}, {set_team = "Escalations"}, {notify = "supervisors"}]

[[rules]]
name = "Money matters"
match = "any"
conditions = [
  {field = "category", in = ["billing", "refund"]},
  {field = "tags", contains = "invoice"},
]
actions = [{set_team = "Billing"}, {add_tag = "finance"}]

[[rules]]
name = "Loud phone calls"
conditions = [
  {field = "channel", equals = "phone"},
  {field = "priority", in = ["high", "urgent"]},
]
actions = [{set_priority = "high"}, {notify = "team"}, {notify = "supervisors"}]
"""
RULES = rules_from_config(tomllib.loads(CONFIG_TOML)["rules"], teams=TEAMS)


def values(**overrides: Any) -> TicketValues:
    fields: dict[str, Any] = {"priority": "normal", "channel": "web", "subject": "Question"}
    return TicketValues(**(fields | overrides))


def condition(field: str, operator: str, *items: str) -> Condition:
    return Condition(field=TicketField(field), operator=Operator(operator), values=items)


MATCH_CASES: list[tuple[str, Condition, TicketValues, bool]] = [
    ("priority equals", condition("priority", "equals", "high"), values(priority="high"), True),
    ("priority equals another", condition("priority", "equals", "high"), values(), False),
    (
        "priority in a list",
        condition("priority", "in", "high", "urgent"),
        values(priority="urgent"),
        True,
    ),
    (
        "category equals",
        condition("category", "equals", "billing"),
        values(category="billing"),
        True,
    ),
    (
        "no category never matches",
        condition("category", "in", "billing"),
        values(category=None),
        False,
    ),
    ("channel equals", condition("channel", "equals", "email"), values(channel="email"), True),
    ("tier equals", condition("tier", "equals", "gold"), values(tier="gold"), True),
    (
        "no customer tier never matches",
        condition("tier", "equals", "gold"),
        values(tier=None),
        False,
    ),
    (
        "subject contains a word ignoring case",
        condition("subject", "contains", "outage"),
        values(subject="OUTAGE in Berlin"),
        True,
    ),
    (
        "subject contains whole words only",
        condition("subject", "contains", "outage"),
        values(subject="outages again"),
        False,
    ),
    (
        "subject contains a phrase",
        condition("subject", "contains", "no dial tone"),
        values(subject="Line: no dial tone!"),
        True,
    ),
    (
        "subject with regex characters is literal",
        condition("subject", "contains", "c++"),
        values(subject="c++ help"),
        True,
    ),
    (
        "tags contains a tag",
        condition("tags", "contains", "vip"),
        values(tags=frozenset({"vip", "new"})),
        True,
    ),
    (
        "tags contains a missing tag",
        condition("tags", "contains", "vip"),
        values(tags=frozenset({"new"})),
        False,
    ),
    (
        "tags in: any of them",
        condition("tags", "in", "a", "vip"),
        values(tags=frozenset({"vip"})),
        True,
    ),
]


@pytest.mark.parametrize(
    ("case", "cond", "ticket", "expected"), MATCH_CASES, ids=[c[0] for c in MATCH_CASES]
)
def test_condition_matching(
    case: str, cond: Condition, ticket: TicketValues, expected: bool
) -> None:
    assert cond.matches(ticket) is expected


def test_all_needs_every_condition_and_any_needs_one() -> None:
    conditions = (condition("priority", "equals", "high"), condition("channel", "equals", "phone"))
    action = (AddTag(tag="x", rule="r"),)
    both = AutomationRule(name="r", match=Match.ALL, conditions=conditions, actions=action)
    either = AutomationRule(name="r", match=Match.ANY, conditions=conditions, actions=action)
    half = values(priority="high")
    assert not both.matches(half) and either.matches(half)
    assert both.matches(values(priority="high", channel="phone"))
    assert not either.matches(values())


APPLY_CASES: list[tuple[str, TicketValues, list[Action]]] = [
    ("no rule matches: no actions", values(), []),
    (
        "one rule's actions come in its order",
        values(tier="platinum", subject="Total outage"),
        [
            SetPriority(priority=TicketPriority.URGENT, rule="Platinum outage"),
            SetTeam(team_id=3, rule="Platinum outage"),
            Notify(target=NotifyTarget.SUPERVISORS, rule="Platinum outage"),
        ],
    ),
    (
        "an any rule matches on one condition",
        values(tags=frozenset({"invoice"})),
        [SetTeam(team_id=2, rule="Money matters"), AddTag(tag="finance", rule="Money matters")],
    ),
    (
        "the first rule to set a field wins and repeats are dropped",
        values(
            tier="platinum", subject="outage", category="billing", channel="phone", priority="high"
        ),
        [
            SetPriority(priority=TicketPriority.URGENT, rule="Platinum outage"),
            SetTeam(team_id=3, rule="Platinum outage"),
            Notify(target=NotifyTarget.SUPERVISORS, rule="Platinum outage"),
            AddTag(tag="finance", rule="Money matters"),
            Notify(target=NotifyTarget.TEAM, rule="Loud phone calls"),
        ],
    ),
    (
        "rules see the ticket as given, not earlier rules' changes",
        # rule 1 sets urgent, but rule 3 (priority high/urgent) looks at "normal"
        values(tier="platinum", subject="outage", channel="phone"),
        [
            SetPriority(priority=TicketPriority.URGENT, rule="Platinum outage"),
            SetTeam(team_id=3, rule="Platinum outage"),
            Notify(target=NotifyTarget.SUPERVISORS, rule="Platinum outage"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("case", "ticket", "expected"), APPLY_CASES, ids=[c[0] for c in APPLY_CASES]
)
def test_apply_rules(case: str, ticket: TicketValues, expected: list[Action]) -> None:
    assert apply_rules(ticket, RULES) == expected


def test_the_config_is_read_in_order() -> None:
    assert [rule.name for rule in RULES] == ["Platinum outage", "Money matters", "Loud phone calls"]
    assert RULES[0].match is Match.ALL and RULES[1].match is Match.ANY
    assert RULES[1].conditions[0] == condition("category", "in", "billing", "refund")
    assert rules_from_config([]) == ()


def rule(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "r",
        "conditions": [{"field": "priority", "equals": "high"}],
        "actions": [{"add_tag": "x"}],
    }
    return base | overrides


BAD_CONFIGS: list[tuple[str, Any, str]] = [
    ("rules are a list", {"name": "r"}, "rules"),
    ("a rule is a table", ["r"], "rules[0].rule"),
    ("an unknown rule key is refused", [rule(when="now")], "rules[0].when"),
    ("a rule needs a name", [rule(name=None)], "rules[0].name"),
    ("rule names are unique", [rule(), rule()], "rules[1].name"),
    ("match is all or any", [rule(match="most")], "rules[0].match"),
    ("a rule needs conditions", [rule(conditions=[])], "rules[0].conditions"),
    ("a rule needs actions", [rule(actions=[])], "rules[0].actions"),
    (
        "an unknown field is refused",
        [rule(conditions=[{"field": "mood", "equals": "x"}])],
        "rules[0].conditions[0].field",
    ),
    (
        "an unknown operator is refused",
        [rule(conditions=[{"field": "tier", "is": "x"}])],
        "rules[0].conditions[0].is",
    ),
    (
        "a condition needs one operator",
        [rule(conditions=[{"field": "tier"}])],
        "rules[0].conditions[0].field",
    ),
    (
        "an operator the field does not take is refused",
        [rule(conditions=[{"field": "subject", "equals": "x"}])],
        "rules[0].conditions[0].equals",
    ),
    (
        "an unknown priority value is refused",
        [rule(conditions=[{"field": "priority", "in": ["high", "hgih"]}])],
        "rules[0].conditions[0].in",
    ),
    (
        "an unknown tier is refused",
        [rule(conditions=[{"field": "tier", "equals": "diamond"}])],
        "rules[0].conditions[0].equals",
    ),
    (
        "in takes a list",
        [rule(conditions=[{"field": "tier", "in": "gold"}])],
        "rules[0].conditions[0].in",
    ),
    (
        "in takes a non-empty list",
        [rule(conditions=[{"field": "tier", "in": []}])],
        "rules[0].conditions[0].in",
    ),
    (
        "a blank word is refused",
        [rule(conditions=[{"field": "subject", "contains": " "}])],
        "rules[0].conditions[0].contains",
    ),
    (
        "values are text",
        [rule(conditions=[{"field": "category", "equals": 3}])],
        "rules[0].conditions[0].equals",
    ),
    (
        "an unknown action is refused",
        [rule(actions=[{"escalate": True}])],
        "rules[0].actions[0].escalate",
    ),
    (
        "an action has one key",
        [rule(actions=[{"add_tag": "a", "notify": "team"}])],
        "rules[0].actions[0].action",
    ),
    (
        "an unknown priority to set is refused",
        [rule(actions=[{"set_priority": "asap"}])],
        "rules[0].actions[0].set_priority",
    ),
    (
        "an unknown team is refused",
        [rule(actions=[{"set_team": "Nobody"}])],
        "rules[0].actions[0].set_team",
    ),
    ("a blank tag is refused", [rule(actions=[{"add_tag": ""}])], "rules[0].actions[0].add_tag"),
    (
        "an unknown notify target is refused",
        [rule(actions=[{"notify": "everyone"}])],
        "rules[0].actions[0].notify",
    ),
    (
        "the index points at the bad rule",
        [rule(name="a"), rule(name="b", match="x")],
        "rules[1].match",
    ),
]


@pytest.mark.parametrize(("case", "config", "field"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_names_the_rule_and_field(case: str, config: Any, field: str) -> None:
    with pytest.raises(AutomationError) as caught:
        rules_from_config(config, teams=TEAMS)
    assert list(caught.value.fields) == [field]
    assert caught.value.message.startswith(f"{field}: ")
    assert isinstance(caught.value, InvalidInput)


def test_a_team_id_is_taken_as_is() -> None:
    [only] = rules_from_config([rule(actions=[{"set_team": 7}])])
    assert only.actions == (SetTeam(team_id=7, rule="r"),)
