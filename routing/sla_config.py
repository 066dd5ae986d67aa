"""SLA set-up from the settings, built once at start-up.

``[sla.calendars.<name>]`` tables, ``[[sla.policies]]`` (in order: the first
generic match wins, a category-specific one beats it) and ``[sla.escalation]``
become one ``SlaSetup``.  Anything wrong — an empty calendar, a target of zero,
overlapping hours, an unknown time zone, a duplicate policy name — is an
``SlaConfigError`` whose message is one line naming the setting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from desk.errors import InvalidInput
from desk.settings import Settings
from routing.calendar import BusinessCalendar
from routing.escalation import EscalationPolicy
from routing.sla import SlaPolicy, choose_policy

POLICY_NAME_LENGTH = 100


class SlaConfigError(Exception):
    """The SLA settings are unusable; ``str()`` is the one line to show the operator."""


@dataclass(frozen=True)
class SlaSetup:
    policies: tuple[SlaPolicy, ...] = ()
    escalation: EscalationPolicy = field(default_factory=EscalationPolicy)
    calendars: Mapping[str, BusinessCalendar] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [policy.name for policy in self.policies]
        if len(set(names)) != len(names):
            raise SlaConfigError("sla.policies: policy names must be unique")

    def policy_named(self, name: str) -> SlaPolicy | None:
        return next((policy for policy in self.policies if policy.name == name), None)

    def choose(self, *, tier: str, priority: str, category: str | None) -> SlaPolicy | None:
        return choose_policy(self.policies, tier=tier, priority=priority, category=category)


def sla_setup_from_config(
    *,
    calendars: Mapping[str, object],
    policies: Sequence[object],
    escalation: Mapping[str, object],
) -> SlaSetup:
    built: dict[str, BusinessCalendar] = {}
    for name, table in calendars.items():
        where = f"sla.calendars.{name}"
        if not isinstance(table, Mapping):
            raise SlaConfigError(f"{where}: a table with time_zone and hours")
        try:
            built[name] = BusinessCalendar.from_config(table)
        except InvalidInput as error:
            raise SlaConfigError(f"{where}.{error.message}") from None
    chosen: list[SlaPolicy] = []
    seen: set[str] = set()
    for index, table in enumerate(policies):
        where = f"sla.policies[{index}]"
        if not isinstance(table, Mapping):
            raise SlaConfigError(f"{where}: a table with name, tiers, priorities, targets")
        label = f" (policy {table['name']!r})" if isinstance(table.get("name"), str) else ""
        try:
            policy = SlaPolicy.from_config(table, calendars=built)
        except InvalidInput as error:
            raise SlaConfigError(f"{where}.{error.message}{label}") from None
        if len(policy.name) > POLICY_NAME_LENGTH:
            raise SlaConfigError(f"{where}.name: at most {POLICY_NAME_LENGTH} characters")
        if policy.name in seen:
            raise SlaConfigError(f"{where}.name: {policy.name!r} is already used by a policy")
        seen.add(policy.name)
        chosen.append(policy)
    try:
        levels = EscalationPolicy.from_config(escalation)
    except InvalidInput as error:
        raise SlaConfigError(f"sla.escalation.{error.message}") from None
    return SlaSetup(policies=tuple(chosen), escalation=levels, calendars=built)


def sla_setup(settings: Settings) -> SlaSetup:
    """The SLA set-up the settings describe, or ``SlaConfigError``."""
    return sla_setup_from_config(
        calendars=settings.sla_calendars,
        policies=settings.sla_policies,
        escalation=settings.sla_escalation,
    )
