"""Escalation levels and the timer schedule of an SLA clock — pure, time a parameter.

An escalation policy is a list of levels, typically agent → team lead →
supervisors.  Each level fires a fixed amount of *clock* business time past the
clock's warning or its breach: the clock must be running for that time to pass,
so a paused (pending, on hold) ticket does not escalate, and a reopened one
carries on from where it stopped.

``timer_schedule`` turns a running clock into the moments the watcher must act
on: its warning, its breach and each escalation level.  A clock that is not
running has no timers; whoever keeps the timers deletes them and asks again
when the clock runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from desk.errors import InvalidInput
from routing.calendar import BusinessCalendar
from routing.sla import (
    ClockKind,
    ClockPhase,
    ClockState,
    SlaError,
    SlaTarget,
    due_at,
    parse_duration,
)

E = TypeVar("E", bound=StrEnum)
_LEVEL_KEYS = ("who", "past", "after", "email", "clocks")
_ONE_MICROSECOND = timedelta(microseconds=1)


class EscalationError(InvalidInput):
    code = "invalid_escalation"


def _fail(field_name: str, problem: str) -> EscalationError:
    return EscalationError(f"{field_name}: {problem}", fields={field_name: problem})


class Who(StrEnum):
    ASSIGNEE = "assignee"
    TEAM_LEAD = "team_lead"
    SUPERVISORS = "supervisors"


class Anchor(StrEnum):
    WARNING = "warning"
    BREACH = "breach"


class TimerKind(StrEnum):
    WARNING = "warning"
    BREACH = "breach"
    ESCALATION = "escalation"


_RANK = {TimerKind.WARNING: 0, TimerKind.BREACH: 1, TimerKind.ESCALATION: 2}


@dataclass(frozen=True, kw_only=True)
class EscalationLevel:
    """Level ``level`` (1 first) tells ``who`` once ``after`` business time has
    run past the clock's ``past`` (warning or breach)."""

    level: int
    who: Who
    past: Anchor
    after: timedelta = timedelta(0)
    email: bool = False
    clocks: frozenset[ClockKind] | None = None  # None: every clock

    def __post_init__(self) -> None:
        if self.level < 1:
            raise _fail("level", f"levels count from 1, got {self.level}")
        if self.after < timedelta(0):
            raise _fail("after", f"must not be negative, got {self.after}")

    def applies_to(self, clock: ClockKind) -> bool:
        return self.clocks is None or clock in self.clocks


@dataclass(frozen=True)
class EscalationPolicy:
    levels: tuple[EscalationLevel, ...] = ()

    def level(self, number: int) -> EscalationLevel | None:
        return next((level for level in self.levels if level.level == number), None)

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> EscalationPolicy:
        """Build from a TOML-shaped mapping; every error names its field::

        {"levels": [{"who": "assignee", "past": "breach", "after": "0m"},
                     {"who": "team_lead", "past": "breach", "after": "1h", "email": true},
                     {"who": "supervisors", "past": "breach", "after": "4h",
                      "clocks": ["resolution"]}]}
        """
        for key in config:
            if key != "levels":
                raise _fail(key, "unknown key (expected levels)")
        raw = config.get("levels", [])
        if isinstance(raw, str) or not isinstance(raw, Sequence):
            raise _fail("levels", "a list of tables like {who = 'team_lead', past = 'breach'}")
        return cls(tuple(_level(index, item) for index, item in enumerate(raw)))


def _level(index: int, raw: object) -> EscalationLevel:
    where = f"levels[{index}]"
    if not isinstance(raw, Mapping):
        raise _fail(where, "a table like {who = 'team_lead', past = 'breach', after = '1h'}")
    for key in raw:
        if key not in _LEVEL_KEYS:
            raise _fail(f"{where}.{key}", f"unknown key (expected {', '.join(_LEVEL_KEYS)})")
    who = _choice(raw.get("who"), Who, f"{where}.who")
    past = _choice(raw.get("past", Anchor.BREACH.value), Anchor, f"{where}.past")
    try:
        after = parse_duration(raw.get("after", "0m"), field_name=f"{where}.after")
    except SlaError as error:
        raise EscalationError(error.message, fields=error.fields) from None
    email = raw.get("email", False)
    if not isinstance(email, bool):
        raise _fail(f"{where}.email", "true or false")
    clocks = raw.get("clocks")
    kinds: frozenset[ClockKind] | None = None
    if clocks is not None:
        if isinstance(clocks, str) or not isinstance(clocks, Sequence) or not clocks:
            raise _fail(f"{where}.clocks", "a non-empty list of clocks, or leave it out")
        kinds = frozenset(_choice(item, ClockKind, f"{where}.clocks") for item in clocks)
    return EscalationLevel(
        level=index + 1, who=who, past=past, after=after, email=email, clocks=kinds
    )


def _choice(raw: object, kind: type[E], field_name: str) -> E:
    known = ", ".join(member.value for member in kind)
    if not isinstance(raw, str):
        raise _fail(field_name, f"required, one of {known}")
    try:
        return kind(raw)
    except ValueError:
        raise _fail(field_name, f"unknown {raw!r} (expected one of {known})") from None


@dataclass(frozen=True)
class PlannedTimer:
    kind: TimerKind
    level: int  # 0 for the warning and the breach
    due_at: datetime

    @property
    def key(self) -> tuple[TimerKind, int]:
        return self.kind, self.level


def _reached_at(
    state: ClockState, amount: timedelta, clock: ClockKind, calendar: BusinessCalendar
) -> datetime | None:
    """When the clock has run ``amount`` of business time (in the past if it already has)."""
    probe = SlaTarget(clock=clock, target=max(amount, _ONE_MICROSECOND))
    return due_at(state, probe, calendar=calendar)


def timer_schedule(
    state: ClockState,
    target: SlaTarget,
    escalation: EscalationPolicy,
    *,
    calendar: BusinessCalendar,
) -> tuple[PlannedTimer, ...]:
    """The timers of a running clock, in firing order: warning (if the target
    has one), breach (unless already recorded), then each escalation level that
    applies to this clock.  Moments may lie in the past: they are due at once.
    Not running → no timers."""
    if state.phase is not ClockPhase.RUNNING:
        return ()
    clock = target.clock
    planned: list[PlannedTimer] = []

    def plan(kind: TimerKind, level: int, amount: timedelta) -> None:
        moment = _reached_at(state, amount, clock, calendar)
        if moment is not None:
            planned.append(PlannedTimer(kind, level, moment))

    warn_after = target.warn_after
    if warn_after is not None:
        plan(TimerKind.WARNING, 0, warn_after)
    if state.breached_at is None:
        plan(TimerKind.BREACH, 0, target.target)
    for level in escalation.levels:
        anchor = warn_after if level.past is Anchor.WARNING else target.target
        if anchor is not None and level.applies_to(clock):
            plan(TimerKind.ESCALATION, level.level, anchor + level.after)
    return tuple(sorted(planned, key=lambda t: (t.due_at, _RANK[t.kind], t.level)))
