"""Recorded AMI sessions as Frames, and the CTI logic wired end to end.

Frames are built here from the recordings' raw text (not by cti.wire) so
these tests exercise only normalise -> tracker -> pops/agents/queues.
Time is the recording's ``t`` on a fixed base, so durations are exact.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest

from cti.agent_state import AgentBoard
from cti.events import CallEnded, CallEvent, CallFact, Channel
from cti.frames import Frame
from cti.normalise import normalise
from cti.pops import PopDecision, PopDesk, PopPhase
from cti.queue_state import QueueBoard
from cti.tracker import CallTracker

RECORDINGS = Path("/work/shared/ami/recordings")
BASE = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
TRUNKS = frozenset({"PJSIP/trunk"})
WRAP_UP_S = {"support": 2.0}
SERVICE_LEVEL_S = {"support": 20.0, "sales": 30.0}


def frame_from_raw(raw: str) -> Frame:
    pairs = []
    for line in raw.split("\r\n"):
        if not line:
            continue
        key, _, value = line.partition(":")
        pairs.append((key, value[1:] if value.startswith(" ") else value))
    return Frame(tuple(pairs))


@cache
def recording(name: str) -> tuple[tuple[float, Frame], ...]:
    """Every received frame of a recording after the banner, with its ``t``."""
    received = []
    for line in (RECORDINGS / f"{name}.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry["dir"] == "recv":
            received.append((float(entry["t"]), entry["raw"]))
    return tuple((t, frame_from_raw(raw)) for t, raw in received[1:])


def at(t: float) -> datetime:
    return BASE + timedelta(seconds=t)


def snapshot(*, taken_at: datetime) -> list[CallEvent]:
    """The list responses of resync_snapshot_after_reconnect, as if received at ``taken_at``."""
    events = (
        normalise(raw, received_at=taken_at)
        for _, raw in recording("resync_snapshot_after_reconnect")
    )
    return [event for event in events if event is not None]


def frame(**fields: str) -> Frame:
    return Frame(tuple(fields.items()))


def channel(
    name: str,
    uniqueid: str,
    linkedid: str | None = None,
    *,
    caller_num: str = "",
    caller_name: str = "",
    exten: str = "",
) -> Channel:
    """A Channel as the normaliser would build it, for hand-made events."""
    return Channel(
        name=name,
        uniqueid=uniqueid,
        linkedid=linkedid or uniqueid,
        interface=name.rsplit("-", 1)[0],
        caller_num=caller_num,
        caller_name=caller_name,
        exten=exten,
    )


@dataclass
class Desk:
    """The CTI logic as the service wires it: one event feeds every state machine."""

    tracker: CallTracker = field(default_factory=lambda: CallTracker(trunks=TRUNKS))
    agents: AgentBoard = field(default_factory=lambda: AgentBoard(wrap_up_s=WRAP_UP_S))
    queues: QueueBoard = field(
        default_factory=lambda: QueueBoard(service_level_s=SERVICE_LEVEL_S, short_abandon_s=5.0)
    )
    pops: PopDesk = field(default_factory=PopDesk)
    events: list[CallEvent] = field(default_factory=list)
    facts: list[CallFact] = field(default_factory=list)
    decisions: list[PopDecision] = field(default_factory=list)

    def push(self, event: CallEvent) -> list[CallFact]:
        self.events.append(event)
        self.agents.apply(event)
        self.queues.apply(event)
        facts = self.tracker.apply(event)
        self.facts.extend(facts)
        for fact in facts:
            self.decisions.extend(self.pops.apply(fact))
        return facts

    def feed(
        self, frames: Iterable[tuple[float, Frame]], *, after: float = -1.0, until: float = 1e9
    ) -> None:
        for t, raw in frames:
            if after < t <= until:
                event = normalise(raw, received_at=at(t))
                if event is not None:
                    self.push(event)

    def phases(self, agent: str) -> list[PopPhase]:
        return [d.phase for d in self.decisions if d.agent_interface == agent]

    def ended(self) -> list[CallEnded]:
        return [f for f in self.facts if isinstance(f, CallEnded)]


@pytest.fixture
def desk() -> Desk:
    return Desk()
