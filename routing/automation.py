"""Automation rules: conditions on a ticket's fields → actions, pure and ordered.

A rule has conditions joined by ``match = "all"`` (the default) or ``"any"``,
and actions.  Conditions test one field with one operator:

* ``priority``, ``category``, ``channel``, ``tier``: ``equals`` a value, or ``in``
  a list (priorities, channels and tiers are checked against the known names);
  a missing value (no category, no customer tier) never matches.
* ``subject``: ``contains`` a word or phrase — whole words, ignoring case
  (``"outage"`` matches "Outage in Berlin", not "outages").
* ``tags``: ``contains`` a tag, or ``in`` a list (the ticket has any of them).

Actions: ``set_priority``, ``set_team`` (a team name, looked up in ``teams``, or
an id), ``add_tag``, ``notify`` (``supervisors``, ``team`` or ``assignee``).

``apply_rules`` evaluates every rule against the ticket as given — an action
never feeds a later rule, so rules cannot loop — and returns the actions in rule
order, then action order.  The first rule to set the priority (or the team)
wins; later sets of the same field are dropped, as are repeats of a tag or
notification.  So the result can be applied in any order.

Config (a list of TOML tables; errors name the rule index and field)::

    [[automation.rules]]
    name = "Outage from platinum customers"
    match = "all"
    conditions = [{field = "tier", equals = "platinum"},
                  {field = "subject", contains = "outage"}]
    actions = [{set_priority = "urgent"}, {add_tag = "outage"}, {notify = "supervisors"}]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from desk.errors import InvalidInput
from desk.models import TicketChannel, TicketPriority, Tier

_RULE_KEYS = ("name", "match", "conditions", "actions")
T = TypeVar("T")


class AutomationError(InvalidInput):
    code = "invalid_automation"


def _fail(field_name: str, problem: str) -> AutomationError:
    return AutomationError(f"{field_name}: {problem}", fields={field_name: problem})


class TicketField(StrEnum):
    PRIORITY = "priority"
    CATEGORY = "category"
    CHANNEL = "channel"
    TIER = "tier"
    SUBJECT = "subject"
    TAGS = "tags"


class Operator(StrEnum):
    EQUALS = "equals"
    IN = "in"
    CONTAINS = "contains"


class Match(StrEnum):
    ALL = "all"
    ANY = "any"


class NotifyTarget(StrEnum):
    SUPERVISORS = "supervisors"
    TEAM = "team"
    ASSIGNEE = "assignee"


_SCALAR = frozenset({Operator.EQUALS, Operator.IN})
_OPERATORS: Mapping[TicketField, frozenset[Operator]] = {
    TicketField.PRIORITY: _SCALAR,
    TicketField.CATEGORY: _SCALAR,
    TicketField.CHANNEL: _SCALAR,
    TicketField.TIER: _SCALAR,
    TicketField.SUBJECT: frozenset({Operator.CONTAINS}),
    TicketField.TAGS: frozenset({Operator.CONTAINS, Operator.IN}),
}
_KNOWN_VALUES: Mapping[TicketField, frozenset[str]] = {
    TicketField.PRIORITY: frozenset(p.value for p in TicketPriority),
    TicketField.CHANNEL: frozenset(c.value for c in TicketChannel),
    TicketField.TIER: frozenset(t.value for t in Tier),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketValues:
    """The fields rules look at.  ``tier`` is the customer's (None without one)."""

    priority: str
    category: str | None = None
    channel: str | None = None
    tier: str | None = None
    subject: str = ""
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    field: TicketField
    operator: Operator
    values: tuple[str, ...]  # exactly one for equals and contains

    def __post_init__(self) -> None:
        if self.operator not in _OPERATORS[self.field]:
            allowed = " or ".join(sorted(_OPERATORS[self.field]))
            raise _fail(str(self.operator), f"{self.field} takes {allowed}")
        if not self.values or (self.operator is not Operator.IN and len(self.values) != 1):
            raise _fail(str(self.operator), "a value is required")
        known = _KNOWN_VALUES.get(self.field)
        for value in self.values:
            if not value.strip():
                raise _fail(str(self.operator), "values must not be blank")
            if known is not None and value not in known:
                expected = ", ".join(sorted(known))
                raise _fail(str(self.operator), f"unknown {self.field} {value!r} ({expected})")

    def matches(self, ticket: TicketValues) -> bool:
        if self.field is TicketField.SUBJECT:
            word = rf"(?<!\w){re.escape(self.values[0])}(?!\w)"
            return re.search(word, ticket.subject, re.IGNORECASE) is not None
        if self.field is TicketField.TAGS:
            return not ticket.tags.isdisjoint(self.values)
        value: str | None = getattr(ticket, self.field.value)
        return value is not None and value in self.values


@dataclass(frozen=True, slots=True, kw_only=True)
class SetPriority:
    priority: TicketPriority
    rule: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetTeam:
    team_id: int
    rule: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AddTag:
    tag: str
    rule: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Notify:
    target: NotifyTarget
    rule: str


Action = SetPriority | SetTeam | AddTag | Notify


@dataclass(frozen=True, slots=True, kw_only=True)
class AutomationRule:
    name: str
    match: Match
    conditions: tuple[Condition, ...]
    actions: tuple[Action, ...]

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise _fail("name", "required")
        if not self.conditions:
            raise _fail("conditions", "at least one condition is required")
        if not self.actions:
            raise _fail("actions", "at least one action is required")

    def matches(self, ticket: TicketValues) -> bool:
        hits = (condition.matches(ticket) for condition in self.conditions)
        return all(hits) if self.match is Match.ALL else any(hits)


def apply_rules(ticket: TicketValues, rules: Iterable[AutomationRule]) -> list[Action]:
    """The actions of every matching rule, in order, without conflicts or
    repeats (see the module notes)."""
    actions: list[Action] = []
    seen: set[object] = set()
    for rule in rules:
        if not rule.matches(ticket):
            continue
        for action in rule.actions:
            key = _conflict_key(action)
            if key not in seen:
                seen.add(key)
                actions.append(action)
    return actions


def _conflict_key(action: Action) -> object:
    if isinstance(action, SetPriority | SetTeam):
        return type(action)
    if isinstance(action, AddTag):
        return (AddTag, action.tag)
    return (Notify, action.target)


# --- config -----------------------------------------------------------------


def rules_from_config(
    config: object, *, teams: Mapping[str, int] | None = None
) -> tuple[AutomationRule, ...]:
    """Rules from a list of TOML tables (``[[automation.rules]]``), in order.
    Errors name the field as ``rules[2].conditions[0].equals``."""
    if isinstance(config, str) or not isinstance(config, Sequence):
        raise _fail("rules", "a list of rule tables")
    rules: list[AutomationRule] = []
    first_by_name: dict[str, int] = {}
    for index, raw in enumerate(config):
        where = f"rules[{index}]"
        try:
            rule = _rule(raw, teams or {})
        except AutomationError as error:
            fields = {f"{where}.{key}": problem for key, problem in error.fields.items()}
            raise AutomationError(f"{where}.{error.message}", fields=fields) from None
        if rule.name in first_by_name:
            raise _fail(f"{where}.name", f"duplicate of rules[{first_by_name[rule.name]}]")
        first_by_name[rule.name] = index
        rules.append(rule)
    return tuple(rules)


def _rule(raw: object, teams: Mapping[str, int]) -> AutomationRule:
    if not isinstance(raw, Mapping):
        raise _fail("rule", "a table with name, match, conditions and actions")
    for key in raw:
        if key not in _RULE_KEYS:
            raise _fail(str(key), f"unknown key (expected one of {', '.join(_RULE_KEYS)})")
    name = raw.get("name")
    if not isinstance(name, str):
        raise _fail("name", "required")
    match = raw.get("match", Match.ALL.value)
    if match not in tuple(Match):
        raise _fail("match", f"'all' or 'any', got {match!r}")
    return AutomationRule(
        name=name,
        match=Match(match),
        conditions=tuple(
            _nested(f"conditions[{i}]", _condition, item)
            for i, item in enumerate(_list(raw.get("conditions"), "conditions"))
        ),
        actions=tuple(
            _nested(f"actions[{i}]", lambda item: _action(item, name, teams), item)
            for i, item in enumerate(_list(raw.get("actions"), "actions"))
        ),
    )


def _list(raw: object, where: str) -> Sequence[object]:
    if isinstance(raw, str) or not isinstance(raw, Sequence) or not raw:
        raise _fail(where, "a non-empty list of tables")
    return raw


def _nested(where: str, build: Callable[[object], T], raw: object) -> T:
    """``build(raw)`` with its error's field prefixed by ``where``."""
    try:
        return build(raw)
    except AutomationError as error:
        fields = {f"{where}.{key}": problem for key, problem in error.fields.items()}
        raise AutomationError(f"{where}.{error.message}", fields=fields) from None


def _condition(raw: object) -> Condition:
    if not isinstance(raw, Mapping):
        raise _fail("field", "a table like {field = 'priority', equals = 'high'}")
    name = raw.get("field")
    if name not in tuple(TicketField):
        expected = ", ".join(TicketField)
        raise _fail("field", f"unknown field {name!r} (expected {expected})")
    operators = [key for key in raw if key != "field"]
    for key in operators:
        if key not in tuple(Operator):
            raise _fail(str(key), f"unknown operator (expected {', '.join(Operator)})")
    if len(operators) != 1:
        raise _fail("field", "one operator: equals, in or contains")
    operator = Operator(operators[0])
    value = raw[operator.value]
    if operator is Operator.IN:
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise _fail("in", "a list of values")
        values = tuple(value)
    else:
        values = (value,)
    if not all(isinstance(item, str) for item in values):
        raise _fail(operator.value, "values are text")
    return Condition(field=TicketField(name), operator=operator, values=values)


def _action(raw: object, rule: str, teams: Mapping[str, int]) -> Action:
    kinds = ("set_priority", "set_team", "add_tag", "notify")
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise _fail("action", f"a table with one of {', '.join(kinds)}")
    [(kind, value)] = raw.items()
    if kind == "set_priority":
        if value not in tuple(TicketPriority):
            raise _fail(kind, f"unknown priority {value!r}")
        return SetPriority(priority=TicketPriority(value), rule=rule)
    if kind == "set_team":
        if isinstance(value, int) and not isinstance(value, bool):
            return SetTeam(team_id=value, rule=rule)
        if not isinstance(value, str) or value not in teams:
            raise _fail(kind, f"no team named {value!r}")
        return SetTeam(team_id=teams[value], rule=rule)
    if kind == "add_tag":
        if not isinstance(value, str) or not value.strip():
            raise _fail(kind, "a tag")
        return AddTag(tag=value, rule=rule)
    if kind == "notify":
        if value not in tuple(NotifyTarget):
            raise _fail(kind, f"{', '.join(NotifyTarget)}, got {value!r}")
        return Notify(target=NotifyTarget(value), rule=rule)
    raise _fail(str(kind), f"unknown action (expected {', '.join(kinds)})")
