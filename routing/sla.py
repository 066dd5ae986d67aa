"""SLA policies and clocks: pure values and transitions, time always a parameter.

A policy (chosen by customer tier and ticket priority, and category when given)
sets targets for three clocks — first response, next response (after each
customer message), resolution — measured in business time on the policy's
calendar.  A ``ClockState`` records when the clock ran and when it was paused;
business time of past spans is computed once, when the span closes, and kept.

Breach: a clock is breached once its due time passes while it still has not
stopped (``due < now`` while running, ``due <`` the end of its last run
otherwise).  ``record_breach`` writes that due time into ``breached_at`` once;
later calendar or policy changes never move it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import Literal

from desk.errors import InvalidInput
from desk.models import TicketPriority, TicketStatus, Tier
from routing.calendar import (
    BusinessCalendar,
    CalendarError,
    add_business_time,
    business_time_between,
)

_DURATION = re.compile(r"^\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$")
_POLICY_KEYS = ("name", "tiers", "priorities", "categories", "calendar", "targets")
RUNNING_STATUSES = frozenset({TicketStatus.NEW, TicketStatus.OPEN})
PAUSED_STATUSES = frozenset({TicketStatus.PENDING, TicketStatus.ON_HOLD})
STOPPED_STATUSES = frozenset({TicketStatus.SOLVED, TicketStatus.CLOSED})


class SlaError(InvalidInput):
    code = "invalid_sla"


class ClockError(ValueError):
    """A transition that makes no sense for the clock's phase or goes back in time."""


def _fail(field_name: str, problem: str) -> SlaError:
    return SlaError(f"{field_name}: {problem}", fields={field_name: problem})


class ClockKind(StrEnum):
    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


@dataclass(frozen=True)
class PercentOfTarget:
    """Warn when this share of the target is left (20 → warn at 80 % used)."""

    percent: float

    def __post_init__(self) -> None:
        if not 0 < self.percent < 100:
            raise _fail("warn_before", f"a percentage between 0 and 100, got {self.percent}")


@dataclass(frozen=True, kw_only=True)
class SlaTarget:
    clock: ClockKind
    target: timedelta
    warn_before: PercentOfTarget | timedelta | None = None

    def __post_init__(self) -> None:
        where = f"targets.{self.clock}"
        if self.target <= timedelta(0):
            raise _fail(f"{where}.target", f"must be positive, got {self.target}")
        if isinstance(self.warn_before, timedelta) and not (
            timedelta(0) < self.warn_before < self.target
        ):
            raise _fail(f"{where}.warn_before", f"must be between 0 and {self.target}")

    @property
    def warn_after(self) -> timedelta | None:
        """Business time used when the warning is due, or None without a warning."""
        if self.warn_before is None:
            return None
        if isinstance(self.warn_before, timedelta):
            return self.target - self.warn_before
        micros = Fraction(self.target // timedelta(microseconds=1))
        lead = round(micros * Fraction(self.warn_before.percent) / 100)
        return self.target - timedelta(microseconds=lead)


@dataclass(frozen=True, kw_only=True)
class SlaPolicy:
    """Applies to tickets whose tier and priority are listed (and category, if
    ``categories`` is set; a policy with categories never matches a ticket
    without one)."""

    name: str
    calendar: BusinessCalendar
    targets: tuple[SlaTarget, ...]
    tiers: frozenset[str]
    priorities: frozenset[str]
    categories: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise _fail("name", "required")
        if not self.targets:
            raise _fail("targets", "a policy needs at least one clock target")
        clocks = [target.clock for target in self.targets]
        if len(set(clocks)) != len(clocks):
            raise _fail("targets", "one target per clock")
        _check_members("tiers", self.tiers, {tier.value for tier in Tier})
        _check_members("priorities", self.priorities, {p.value for p in TicketPriority})
        if self.categories is not None and not self.categories:
            raise _fail("categories", "leave it out to match every category")

    def target_for(self, clock: ClockKind) -> SlaTarget | None:
        return next((target for target in self.targets if target.clock is clock), None)

    def matches(self, *, tier: str, priority: str, category: str | None) -> bool:
        if tier not in self.tiers or priority not in self.priorities:
            return False
        return self.categories is None or category in self.categories

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, object],
        *,
        calendars: Mapping[str, BusinessCalendar] | None = None,
    ) -> SlaPolicy:
        """Build from a TOML-shaped mapping; every error names its field::

        {"name": "Gold", "tiers": ["gold"], "priorities": ["high", "urgent"],
         "categories": ["billing"],                      # optional
         "calendar": {...} or "name-in-calendars",
         "targets": {"first_response": {"target": "4h", "warn_before": "20%"},
                     "resolution": {"target": "2h30m", "warn_before": "30m"}}}
        """
        for key in config:
            if key not in _POLICY_KEYS:
                raise _fail(key, f"unknown key (expected one of {', '.join(_POLICY_KEYS)})")
        name = config.get("name")
        if not isinstance(name, str):
            raise _fail("name", "required")
        categories = config.get("categories")
        return cls(
            name=name,
            calendar=_calendar_from_config(config.get("calendar"), calendars or {}),
            targets=_targets_from_config(config.get("targets")),
            tiers=_names(config.get("tiers"), "tiers"),
            priorities=_names(config.get("priorities"), "priorities"),
            categories=None if categories is None else _names(categories, "categories"),
        )


def _check_members(field_name: str, values: frozenset[str], allowed: set[str]) -> None:
    if not values:
        raise _fail(field_name, "at least one is required")
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise _fail(
            field_name, f"unknown {', '.join(unknown)} (known: {', '.join(sorted(allowed))})"
        )


def _names(raw: object, field_name: str) -> frozenset[str]:
    if isinstance(raw, str) or not isinstance(raw, Iterable):
        raise _fail(field_name, "a list of names")
    names = list(raw)
    if not all(isinstance(name, str) for name in names):
        raise _fail(field_name, "a list of names")
    return frozenset(names)


def _calendar_from_config(
    raw: object, calendars: Mapping[str, BusinessCalendar]
) -> BusinessCalendar:
    if isinstance(raw, BusinessCalendar):
        return raw
    if isinstance(raw, str):
        if raw not in calendars:
            raise _fail("calendar", f"no calendar named {raw!r}")
        return calendars[raw]
    if not isinstance(raw, Mapping):
        raise _fail("calendar", "required, a calendar table or a calendar name")
    try:
        return BusinessCalendar.from_config(raw)
    except CalendarError as error:
        fields = {f"calendar.{key}": problem for key, problem in error.fields.items()}
        raise CalendarError(f"calendar.{error.message}", fields=fields) from None


def _targets_from_config(raw: object) -> tuple[SlaTarget, ...]:
    if not isinstance(raw, Mapping) or not raw:
        raise _fail("targets", "required, a table like {first_response = {target = '4h'}}")
    targets = []
    for key, spec in raw.items():
        where = f"targets.{key}"
        try:
            clock = ClockKind(key)
        except ValueError:
            known = ", ".join(kind.value for kind in ClockKind)
            raise _fail(where, f"unknown clock (expected {known})") from None
        if not isinstance(spec, Mapping) or "target" not in spec:
            raise _fail(where, "a table like {target = '4h', warn_before = '20%'}")
        extra = sorted(set(spec) - {"target", "warn_before"})
        if extra:
            raise _fail(f"{where}.{extra[0]}", "unknown key (expected target, warn_before)")
        warn = spec.get("warn_before")
        targets.append(
            SlaTarget(
                clock=clock,
                target=parse_duration(spec["target"], field_name=f"{where}.target"),
                warn_before=None if warn is None else _warn_before(warn, f"{where}.warn_before"),
            )
        )
    return tuple(targets)


def _warn_before(raw: object, field_name: str) -> PercentOfTarget | timedelta:
    if isinstance(raw, str) and raw.strip().endswith("%"):
        try:
            return PercentOfTarget(float(raw.strip()[:-1]))
        except ValueError:
            raise _fail(field_name, f"{raw!r} is not a percentage like '20%'") from None
        except SlaError as error:
            raise _fail(field_name, error.fields["warn_before"]) from None
    return parse_duration(raw, field_name=field_name)


def parse_duration(raw: object, *, field_name: str) -> timedelta:
    """``"4h"``, ``"90m"``, ``"1h30m"``, ``"45s"`` (or a ``timedelta``) → timedelta."""
    if isinstance(raw, timedelta):
        return raw
    if isinstance(raw, str) and raw.strip().startswith("-"):
        raise _fail(field_name, f"must be positive, got {raw!r}")
    match = _DURATION.match(raw) if isinstance(raw, str) else None
    if match is None or not any(match.groups()):
        raise _fail(field_name, f"{raw!r} is not a duration like '4h', '90m' or '1h30m'")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def choose_policy(
    policies: Iterable[SlaPolicy], *, tier: str, priority: str, category: str | None = None
) -> SlaPolicy | None:
    """The policy for a ticket: a category-specific match beats a generic one;
    among equals the first in ``policies`` (config order) wins; None if none."""
    generic: SlaPolicy | None = None
    for policy in policies:
        if not policy.matches(tier=tier, priority=priority, category=category):
            continue
        if policy.categories is not None:
            return policy
        generic = generic or policy
    return generic


# --- clocks -----------------------------------------------------------------


class ClockPhase(StrEnum):
    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Span:
    """A closed stretch of wall time and the business time inside it."""

    start: datetime
    end: datetime
    business: timedelta


@dataclass(frozen=True, kw_only=True)
class ClockState:
    running_since: datetime | None = None
    paused_since: datetime | None = None
    stopped_at: datetime | None = None
    runs: tuple[Span, ...] = ()
    pauses: tuple[Span, ...] = ()
    breached_at: datetime | None = None

    def __post_init__(self) -> None:
        marks = [self.running_since, self.paused_since, self.stopped_at]
        if sum(mark is not None for mark in marks) > 1:
            raise ClockError("a clock is running, paused or stopped — not several at once")

    @property
    def phase(self) -> ClockPhase:
        if self.running_since is not None:
            return ClockPhase.RUNNING
        if self.paused_since is not None:
            return ClockPhase.PAUSED
        if self.stopped_at is not None:
            return ClockPhase.STOPPED
        return ClockPhase.IDLE

    @property
    def accumulated(self) -> timedelta:
        """Business time of the finished runs."""
        return sum((run.business for run in self.runs), timedelta(0))

    @property
    def since(self) -> datetime | None:
        return self.running_since or self.paused_since or self.stopped_at


def _now(state: ClockState, now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be time-zone aware, got {now!r}")
    now = now.astimezone(UTC)
    if state.since is not None and now < state.since:
        raise ClockError(f"{now} is before the clock's last change at {state.since}")
    return now


def _span(start: datetime, end: datetime, calendar: BusinessCalendar) -> Span:
    return Span(start, end, business_time_between(start, end, calendar))


def start(state: ClockState, now: datetime) -> ClockState:
    """A fresh run from ``now`` (an idle clock, or a stopped one beginning a new
    cycle — its old runs and breach are dropped, so store them first); a running
    or paused clock is left as it is (a second customer message does not move
    the next-response due time)."""
    if state.phase in (ClockPhase.RUNNING, ClockPhase.PAUSED):
        return state
    return ClockState(running_since=_now(state, now))


def pause(state: ClockState, now: datetime, *, calendar: BusinessCalendar) -> ClockState:
    if state.phase is ClockPhase.PAUSED:
        return state
    if state.running_since is None:
        raise ClockError(f"cannot pause a {state.phase} clock")
    at = _now(state, now)
    run = _span(state.running_since, at, calendar)
    return replace(state, running_since=None, paused_since=at, runs=(*state.runs, run))


def resume(state: ClockState, now: datetime, *, calendar: BusinessCalendar) -> ClockState:
    """Paused → running (the pause is recorded); stopped → running again from its
    accumulated time (a reopened ticket)."""
    if state.phase is ClockPhase.RUNNING:
        return state
    if state.phase is ClockPhase.IDLE:
        raise ClockError("cannot resume a clock that never started")
    at = _now(state, now)
    pauses = state.pauses
    if state.paused_since is not None:
        pauses = (*pauses, _span(state.paused_since, at, calendar))
    return replace(state, running_since=at, paused_since=None, stopped_at=None, pauses=pauses)


def stop(state: ClockState, now: datetime, *, calendar: BusinessCalendar) -> ClockState:
    if state.phase is ClockPhase.STOPPED:
        return state
    if state.phase is ClockPhase.IDLE:
        raise ClockError("cannot stop a clock that never started")
    at = _now(state, now)
    runs, pauses = state.runs, state.pauses
    if state.running_since is not None:
        runs = (*runs, _span(state.running_since, at, calendar))
    if state.paused_since is not None:
        pauses = (*pauses, _span(state.paused_since, at, calendar))
    return replace(
        state, running_since=None, paused_since=None, stopped_at=at, runs=runs, pauses=pauses
    )


def elapsed(state: ClockState, now: datetime, *, calendar: BusinessCalendar) -> timedelta:
    """Business time the clock has run up to ``now``."""
    total = state.accumulated
    if state.running_since is not None:
        total += business_time_between(state.running_since, _now(state, now), calendar)
    return total


def remaining(
    state: ClockState, now: datetime, *, target: SlaTarget, calendar: BusinessCalendar
) -> timedelta:
    """Business time left before breach; negative once overdue."""
    return target.target - elapsed(state, now, calendar=calendar)


def _reached_at(
    state: ClockState, amount: timedelta, calendar: BusinessCalendar
) -> datetime | None:
    """When the clock's business time reaches ``amount``: inside a finished run,
    or ahead while running; None if it is not running and has not got there."""
    used = timedelta(0)
    for run in state.runs:
        if used + run.business >= amount:
            return add_business_time(run.start, amount - used, calendar)
        used += run.business
    if state.running_since is None:
        return None
    return add_business_time(state.running_since, amount - used, calendar)


def due_at(state: ClockState, target: SlaTarget, *, calendar: BusinessCalendar) -> datetime | None:
    return _reached_at(state, target.target, calendar)


def warn_at(state: ClockState, target: SlaTarget, *, calendar: BusinessCalendar) -> datetime | None:
    warn_after = target.warn_after
    return None if warn_after is None else _reached_at(state, warn_after, calendar)


def record_breach(
    state: ClockState, now: datetime, *, target: SlaTarget, calendar: BusinessCalendar
) -> ClockState:
    """The state with ``breached_at`` set to the due time if the clock has
    breached by ``now``; a recorded breach is never recomputed."""
    if state.breached_at is not None:
        return state
    due = due_at(state, target, calendar=calendar)
    if due is None:
        return state
    horizon = _now(state, now) if state.running_since is not None else state.runs[-1].end
    return replace(state, breached_at=due) if due < horizon else state


def breached(state: ClockState, now: datetime) -> bool:
    return state.breached_at is not None and state.breached_at < now


# --- the ticket lifecycle ---------------------------------------------------


ClockEvent = Literal["started", "paused", "resumed", "restarted", "stopped"]


@dataclass(frozen=True)
class AuditNote:
    clock: ClockKind
    event: ClockEvent
    at: datetime
    paused_business: timedelta | None = None  # for the pause that just ended

    @property
    def text(self) -> str:
        return f"{self.clock.value.replace('_', ' ')} {self.event}"


@dataclass(frozen=True)
class ClockChange:
    clocks: Mapping[ClockKind, ClockState] = field(hash=False)
    notes: tuple[AuditNote, ...] = ()


class _Changer:
    """Applies transitions to one clock and writes the audit notes."""

    def __init__(
        self, kind: ClockKind, state: ClockState, now: datetime, cal: BusinessCalendar
    ) -> None:
        self.kind, self.state, self.now, self.calendar = kind, state, now, cal
        self.notes: list[AuditNote] = []

    def apply(self, event: ClockEvent) -> None:
        before = self.state
        if event == "started":
            self.state = start(before, self.now)
        elif event == "paused":
            self.state = pause(before, self.now, calendar=self.calendar)
        elif event == "stopped":
            self.state = stop(before, self.now, calendar=self.calendar)
        else:
            self.state = resume(before, self.now, calendar=self.calendar)
        ended = self.state.pauses[-1] if len(self.state.pauses) > len(before.pauses) else None
        at = self.now.astimezone(UTC)
        paused = ended.business if ended is not None else None
        self.notes.append(AuditNote(self.kind, event, at, paused))


def clocks_after_status_change(
    clocks: Mapping[ClockKind, ClockState],
    *,
    old_status: TicketStatus | None,
    new_status: TicketStatus,
    now: datetime,
    calendar: BusinessCalendar,
) -> ClockChange:
    """Clock states after a ticket moves from ``old_status`` (None: just created).

    new/open run every started clock (paused ones resume; a reopened ticket
    restarts resolution from its accumulated time); pending/on_hold pause
    resolution and next response (first response keeps running); solved/closed
    stop all.  Creation starts first response and resolution.
    """
    old = None if old_status is None else TicketStatus(old_status)
    new = TicketStatus(new_status)
    result, notes = dict(clocks), []
    if old == new:
        return ClockChange(result)
    reopened = old in STOPPED_STATUSES and new not in STOPPED_STATUSES
    for kind, state in clocks.items():
        changer = _Changer(kind, state, now, calendar)
        if old is None and kind is not ClockKind.NEXT_RESPONSE and state.phase is ClockPhase.IDLE:
            changer.apply("started")
        if reopened and kind is ClockKind.RESOLUTION and state.phase is ClockPhase.STOPPED:
            changer.apply("restarted")
        phase = changer.state.phase
        if new in STOPPED_STATUSES and phase in (ClockPhase.RUNNING, ClockPhase.PAUSED):
            changer.apply("stopped")
        elif new in PAUSED_STATUSES and kind is not ClockKind.FIRST_RESPONSE:
            if phase is ClockPhase.RUNNING:
                changer.apply("paused")
        elif new in RUNNING_STATUSES and phase is ClockPhase.PAUSED:
            changer.apply("resumed")
        result[kind] = changer.state
        notes.extend(changer.notes)
    return ClockChange(result, tuple(notes))


def clocks_after_customer_message(
    clocks: Mapping[ClockKind, ClockState], *, now: datetime
) -> ClockChange:
    """Starts next response once the first response is done (an unanswered
    earlier message keeps its running clock)."""
    first = clocks.get(ClockKind.FIRST_RESPONSE)
    following = clocks.get(ClockKind.NEXT_RESPONSE)
    answered = first is None or first.phase is ClockPhase.STOPPED
    fresh = following is not None and following.phase in (ClockPhase.IDLE, ClockPhase.STOPPED)
    if following is None or not answered or not fresh:
        return ClockChange(dict(clocks))
    at = now.astimezone(UTC)
    started = start(following, at)
    note = AuditNote(ClockKind.NEXT_RESPONSE, "started", at)
    return ClockChange({**clocks, ClockKind.NEXT_RESPONSE: started}, (note,))


def clocks_after_agent_reply(
    clocks: Mapping[ClockKind, ClockState], *, now: datetime, calendar: BusinessCalendar
) -> ClockChange:
    """A public reply stops first response and next response."""
    result, notes = dict(clocks), []
    for kind in (ClockKind.FIRST_RESPONSE, ClockKind.NEXT_RESPONSE):
        state = clocks.get(kind)
        if state is not None and state.phase in (ClockPhase.RUNNING, ClockPhase.PAUSED):
            changer = _Changer(kind, state, now, calendar)
            changer.apply("stopped")
            result[kind] = changer.state
            notes.extend(changer.notes)
    return ClockChange(result, tuple(notes))
