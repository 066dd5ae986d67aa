"""Call tracking: typed PBX events in, call facts (``cti.events``) out.

A call is everything sharing a Linkedid; a leg is one channel (Uniqueid).
``CallTracker.apply`` is deterministic and idempotent: a duplicated or
replayed event finds its work already done and yields no facts, and events
for channels or calls that are already gone are ignored, so late
AgentComplete or answer-after-hangup cannot resurrect a call.

The tracker is a plain mutable class rather than a frozen state value: the
ingest path sees thousands of frames a second and copying the live-call maps
per event would cost more than the purity buys.  No I/O, no clock: every
time comes from the events.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from cti.events import (
    CHANNELS_COMPLETE,
    AgentConnected,
    AgentDumped,
    AgentRang,
    AgentRingNoAnswer,
    BridgeEntered,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallFact,
    CallHoldChanged,
    CallRinging,
    CallRingStopped,
    CallsListedLive,
    CallStarted,
    CallTransferred,
    Channel,
    ChannelCreated,
    ChannelHungUp,
    ChannelSnapshot,
    DialEnded,
    DialStarted,
    Direction,
    HoldEnded,
    HoldStarted,
    OriginateCompleted,
    OriginateResult,
    Outcome,
    QueueCallerAbandoned,
    QueueCallerJoined,
    RingStop,
    SnapshotComplete,
    Transferred,
)

if TYPE_CHECKING:
    from cti.agent_state import AgentBoard
    from cti.pops import PopDecision, PopDesk
    from cti.queue_state import QueueBoard


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveCall:
    """Read-only view of a call in progress."""

    call_id: str
    direction: Direction | None
    started_at: datetime
    caller_number_raw: str
    caller_name: str
    queue: str | None
    ringing: tuple[str, ...]
    connected: tuple[str, ...]
    answered_at: datetime | None
    on_hold: bool
    transferred: bool


K = TypeVar("K", bound=Hashable)


class RecentKeys(Generic[K]):
    """A set that forgets its oldest keys beyond ``capacity``.

    Idempotency needs to remember what was already handled, but a PBX runs
    for months; forgetting the oldest keeps memory flat.
    """

    __slots__ = ("_capacity", "_keys", "_order")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._keys: set[K] = set()
        self._order: deque[K] = deque()

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: K) -> bool:
        """Remember ``key``; True if it was new."""
        if key in self._keys:
            return False
        self._keys.add(key)
        self._order.append(key)
        if len(self._order) > self._capacity:
            self._keys.discard(self._order.popleft())
        return True


_IDLE, _RINGING, _DONE = 0, 1, 2  # ring progress of one leg


class _Leg:
    __slots__ = ("agent", "call", "device", "interface", "ring", "trunk", "uniqueid")

    def __init__(self, channel: Channel, call: _Call, *, trunk: bool) -> None:
        self.uniqueid = channel.uniqueid
        self.call = call
        self.interface = channel.interface
        self.trunk = trunk
        # Local channels are dialplan plumbing, not a phone anyone sits at.
        self.device = not trunk and not channel.interface.startswith("Local/")
        self.agent = ""
        self.ring = _IDLE


@dataclass(slots=True, eq=False)
class _Call:
    call_id: str
    started_at: datetime
    direction: Direction | None = None  # None until CallStarted went out
    customer_num: str = ""
    customer_name: str = ""
    dialled: str = ""
    originator: str = ""  # the agent device that placed an outbound/internal call
    queue: str | None = None
    answered_at: datetime | None = None
    abandoned_at: datetime | None = None
    connected: list[str] = field(default_factory=list)
    ringing: dict[str, str] = field(default_factory=dict)  # agent -> ringing leg uniqueid
    legs: set[str] = field(default_factory=set)
    transferred: bool = False
    hold_since: datetime | None = None
    hold_s: float = 0.0
    adopted: bool = False


_STOP_REASONS = {"NOANSWER": RingStop.NO_ANSWER, "BUSY": RingStop.BUSY}

_Out = list[CallFact]


class CallTracker:
    """Per-call and per-leg state; ``trunks`` are the interfaces customers come in on."""

    def __init__(self, *, trunks: Iterable[str], memory: int = 50_000) -> None:
        self._trunks = frozenset(trunks)
        self._calls: dict[str, _Call] = {}
        self._legs: dict[str, _Leg] = {}
        self._gone_legs: RecentKeys[str] = RecentKeys(memory)
        self._ended_calls: RecentKeys[str] = RecentKeys(memory)
        self._seen: RecentKeys[tuple[str, ...]] = RecentKeys(memory)
        self._handlers: dict[type[Any], Callable[[Any, _Out], None]] = {
            ChannelCreated: self._on_created,
            ChannelHungUp: self._on_hung_up,
            DialStarted: self._on_dial_started,
            DialEnded: self._on_dial_ended,
            QueueCallerJoined: self._on_queue_joined,
            QueueCallerAbandoned: self._on_abandoned,
            AgentRang: self._on_agent_rang,
            AgentConnected: self._on_agent_connected,
            AgentRingNoAnswer: self._on_ring_no_answer,
            AgentDumped: self._on_agent_dumped,
            BridgeEntered: self._on_bridge_entered,
            Transferred: self._on_transferred,
            HoldStarted: self._on_hold,
            HoldEnded: self._on_unhold,
            OriginateResult: self._on_originate,
        }

    def apply(self, event: CallEvent) -> list[CallFact]:
        handler = self._handlers.get(type(event))
        if handler is None:
            return []
        out: _Out = []
        handler(event, out)
        return out

    def live_calls(self) -> tuple[LiveCall, ...]:
        return tuple(_view(call) for call in self._calls.values())

    def live_call(self, call_id: str) -> LiveCall | None:
        call = self._calls.get(call_id)
        return None if call is None else _view(call)

    # --- legs and calls ---------------------------------------------------

    def _leg(
        self, channel: Channel, at: datetime, out: _Out, call: _Call | None = None
    ) -> _Leg | None:
        leg = self._legs.get(channel.uniqueid)
        if leg is not None:
            return leg
        if channel.uniqueid in self._gone_legs:
            return None
        if call is None:
            if channel.linkedid in self._ended_calls:
                return None
            call = self._calls.get(channel.linkedid) or self._open(channel, at, out)
        leg = _Leg(channel, call, trunk=channel.interface in self._trunks)
        call.legs.add(leg.uniqueid)
        self._legs[leg.uniqueid] = leg
        return leg

    def _open(
        self, first: Channel, started_at: datetime, out: _Out, *, adopted: bool = False
    ) -> _Call:
        call = _Call(first.linkedid, started_at)
        call.adopted = adopted
        self._calls[call.call_id] = call
        if first.interface in self._trunks and first.uniqueid == first.linkedid:
            call.customer_num, call.customer_name = first.caller_num, first.caller_name
            call.dialled = first.exten
            self._start(call, Direction.INBOUND, out)
        elif not first.interface.startswith("Local/"):
            call.originator = first.interface
        return call

    def _start(self, call: _Call, direction: Direction, out: _Out) -> None:
        if call.direction is not None:
            return
        call.direction = direction
        out.append(
            CallStarted(
                call_id=call.call_id,
                at=call.started_at,
                direction=direction,
                caller_number_raw=call.customer_num,
                caller_name=call.customer_name,
                dialled=call.dialled,
                agent_interface="" if direction is Direction.INBOUND else call.originator,
                adopted=call.adopted,
            )
        )

    def _start_internal(self, call: _Call, caller: Channel, dialled: str, out: _Out) -> None:
        if call.direction is None:
            call.customer_num, call.customer_name = caller.caller_num, caller.caller_name
            call.dialled = dialled
            self._start(call, Direction.INTERNAL, out)

    def _start_outbound(self, call: _Call, callee: Channel, dialled: str, out: _Out) -> None:
        if call.direction is None:
            # The outgoing trunk channel carries the dialled number as its caller id.
            call.customer_num = callee.caller_num or dialled
            call.dialled = dialled or callee.caller_num
            self._start(call, Direction.OUTBOUND, out)

    def _ring(self, call: _Call, leg: _Leg, agent: str, at: datetime, out: _Out) -> None:
        if leg.ring != _IDLE:
            return
        leg.ring, leg.agent = _RINGING, agent
        call.ringing[agent] = leg.uniqueid
        out.append(
            CallRinging(
                call_id=call.call_id,
                at=at,
                agent_interface=agent,
                direction=call.direction or Direction.INBOUND,
                queue=call.queue,
                caller_number_raw=call.customer_num,
                caller_name=call.customer_name,
            )
        )

    def _stop(self, call: _Call, leg: _Leg, reason: RingStop, at: datetime, out: _Out) -> None:
        if leg.ring != _RINGING:
            return
        leg.ring = _DONE
        if call.ringing.get(leg.agent) == leg.uniqueid:
            del call.ringing[leg.agent]
        out.append(
            CallRingStopped(call_id=call.call_id, at=at, agent_interface=leg.agent, reason=reason)
        )

    def _connect(
        self, call: _Call, agent: str, at: datetime, out: _Out, leg: _Leg | None = None
    ) -> None:
        if leg is not None:
            leg.ring, leg.agent = _DONE, leg.agent or agent
        if not agent or agent in call.connected:
            return
        if call.direction is None:
            self._start(call, Direction.INTERNAL, out)
        first = not call.connected
        call.connected.append(agent)
        if first:
            call.answered_at = at
        call.ringing.pop(agent, None)
        out.append(
            CallAnswered(
                call_id=call.call_id,
                at=at,
                agent_interface=agent,
                direction=call.direction or Direction.INBOUND,
                queue=call.queue,
                caller_number_raw=call.customer_num,
                caller_name=call.customer_name,
                wait_s=_seconds(call.started_at, call.answered_at or at),
                first=first,
            )
        )
        for uniqueid in list(call.ringing.values()):
            other = self._legs.get(uniqueid)
            if other is not None:
                self._stop(call, other, RingStop.ANSWERED_ELSEWHERE, at, out)

    def _drop_leg(self, uniqueid: str, at: datetime, out: _Out) -> None:
        self._gone_legs.add(uniqueid)
        leg = self._legs.pop(uniqueid, None)
        if leg is None:
            return
        call = leg.call
        self._stop(call, leg, RingStop.HUNG_UP, at, out)
        call.legs.discard(uniqueid)
        if not call.legs:
            self._end(call, at, out)

    def _move(self, leg: _Leg, call: _Call, at: datetime, out: _Out) -> None:
        old = leg.call
        if old is call:
            return
        old.legs.discard(leg.uniqueid)
        if old.ringing.get(leg.agent) == leg.uniqueid:
            del old.ringing[leg.agent]
        leg.call = call
        call.legs.add(leg.uniqueid)
        if not old.legs:
            self._end(old, at, out)

    def _end(self, call: _Call, at: datetime, out: _Out) -> None:
        if self._calls.pop(call.call_id, None) is None:
            return
        self._ended_calls.add(call.call_id)
        for agent in call.ringing:
            out.append(
                CallRingStopped(
                    call_id=call.call_id, at=at, agent_interface=agent, reason=RingStop.CALL_ENDED
                )
            )
        for uniqueid in call.legs:
            self._legs.pop(uniqueid, None)
            self._gone_legs.add(uniqueid)
        if call.hold_since is not None:
            call.hold_s += _seconds(call.hold_since, at)
        if call.direction is None:
            return  # a phone picked up and put down again is not a call
        if call.connected:
            outcome = Outcome.TRANSFERRED if call.transferred else Outcome.ANSWERED
        elif call.abandoned_at is not None:
            outcome = Outcome.ABANDONED
        else:
            outcome = Outcome.MISSED
        waited_until = call.answered_at or call.abandoned_at or at
        out.append(
            CallEnded(
                call_id=call.call_id,
                at=at,
                started_at=call.started_at,
                answered_at=call.answered_at,
                outcome=outcome,
                direction=call.direction,
                queue=call.queue,
                answered_by=call.connected[0] if call.connected else None,
                agents=tuple(call.connected),
                caller_number_raw=call.customer_num,
                caller_name=call.customer_name,
                wait_s=_seconds(call.started_at, waited_until),
                talk_s=_seconds(call.answered_at, at) if call.answered_at else 0.0,
                hold_s=call.hold_s,
                adopted=call.adopted,
            )
        )

    # --- event handlers -----------------------------------------------------

    def _on_created(self, e: ChannelCreated, out: _Out) -> None:
        self._leg(e.channel, e.at, out)

    def _on_hung_up(self, e: ChannelHungUp, out: _Out) -> None:
        self._drop_leg(e.channel.uniqueid, e.at, out)

    def _on_dial_started(self, e: DialStarted, out: _Out) -> None:
        if e.caller is None:
            # An Originate rings the agent's own phone first: not a call to pop.
            self._leg(e.dest, e.at, out)
            return
        caller = self._leg(e.caller, e.at, out)
        if caller is None:
            return
        call = caller.call
        dest = self._leg(e.dest, e.at, out, call)
        if dest is None:
            return
        dialled = e.dial_string.partition("@")[0] or e.caller.exten
        if dest.trunk:
            self._start_outbound(call, e.dest, dialled, out)
        elif dest.device:
            self._start_internal(call, e.caller, e.caller.exten or dialled, out)
            self._ring(call, dest, dest.interface, e.at, out)

    def _on_dial_ended(self, e: DialEnded, out: _Out) -> None:
        if e.caller is None:
            return  # the agent picking up their own phone for an Originate
        caller = self._leg(e.caller, e.at, out)
        if caller is None:
            return
        call = caller.call
        dest = self._leg(e.dest, e.at, out, call)
        if dest is None:
            return
        if e.status != "ANSWER":
            self._stop(call, dest, _STOP_REASONS.get(e.status, RingStop.CANCELLED), e.at, out)
        elif dest.trunk:
            self._start_outbound(call, e.dest, e.dest.caller_num, out)
            if call.direction is Direction.OUTBOUND and call.originator:
                self._connect(call, call.originator, e.at, out)
        elif dest.device:
            self._connect(call, dest.agent or dest.interface, e.at, out, dest)

    def _on_queue_joined(self, e: QueueCallerJoined, out: _Out) -> None:
        leg = self._leg(e.channel, e.at, out)
        if leg is not None:
            leg.call.queue = e.queue

    def _on_abandoned(self, e: QueueCallerAbandoned, out: _Out) -> None:
        leg = self._leg(e.channel, e.at, out)
        if leg is not None and leg.call.abandoned_at is None and not leg.call.connected:
            leg.call.abandoned_at = e.at
            leg.call.queue = e.queue

    def _queue_legs(
        self, caller: Channel, dest: Channel, at: datetime, out: _Out
    ) -> tuple[_Call, _Leg] | None:
        leg = self._leg(caller, at, out)
        if leg is None:
            return None
        dest_leg = self._leg(dest, at, out, leg.call)
        return None if dest_leg is None else (leg.call, dest_leg)

    def _on_agent_rang(self, e: AgentRang, out: _Out) -> None:
        found = self._queue_legs(e.caller, e.dest, e.at, out)
        if found is not None:
            found[0].queue = e.queue
            self._ring(found[0], found[1], e.interface, e.at, out)

    def _on_agent_connected(self, e: AgentConnected, out: _Out) -> None:
        found = self._queue_legs(e.caller, e.dest, e.at, out)
        if found is not None:
            found[0].queue = e.queue
            self._connect(found[0], e.interface, e.at, out, found[1])

    def _on_ring_no_answer(self, e: AgentRingNoAnswer, out: _Out) -> None:
        found = self._queue_legs(e.caller, e.dest, e.at, out)
        if found is not None:
            self._stop(found[0], found[1], RingStop.NO_ANSWER, e.at, out)

    def _on_agent_dumped(self, e: AgentDumped, out: _Out) -> None:
        found = self._queue_legs(e.caller, e.dest, e.at, out)
        if found is not None:
            self._stop(found[0], found[1], RingStop.REJECTED, e.at, out)

    def _on_bridge_entered(self, e: BridgeEntered, out: _Out) -> None:
        # A fallback for a lost DialEnd/AgentConnect: a rung agent leg in a bridge is talking.
        leg = self._legs.get(e.channel.uniqueid)
        if leg is not None and leg.agent:
            self._connect(leg.call, leg.agent, e.at, out, leg)

    def _on_transferred(self, e: Transferred, out: _Out) -> None:
        anchor = e.transferee or e.transferer
        if not e.success or anchor is None:
            return
        key = (e.kind.value, anchor.uniqueid, e.target.uniqueid if e.target else e.extension)
        if not self._seen.add(key):
            return
        anchor_leg = self._leg(anchor, e.at, out)
        if anchor_leg is None:
            return
        call = anchor_leg.call
        from_leg = self._legs.get(e.transferer.uniqueid) if e.transferer else None
        from_agent = (from_leg.agent or from_leg.interface) if from_leg and from_leg.device else ""
        target = self._leg(e.target, e.at, out, call) if e.target else None
        to_agent = ""
        if target is not None and target.device:
            self._move(target, call, e.at, out)
            to_agent = target.agent or target.interface
        call.transferred = True
        out.append(
            CallTransferred(
                call_id=call.call_id,
                at=e.at,
                kind=e.kind,
                from_agent=from_agent,
                to_agent=to_agent,
                extension=e.extension,
            )
        )
        if target is not None and to_agent:
            self._connect(call, to_agent, e.at, out, target)

    def _on_hold(self, e: HoldStarted, out: _Out) -> None:
        leg = self._legs.get(e.channel.uniqueid)
        if leg is not None and leg.call.hold_since is None:
            leg.call.hold_since = e.at
            out.append(CallHoldChanged(call_id=leg.call.call_id, at=e.at, on_hold=True))

    def _on_unhold(self, e: HoldEnded, out: _Out) -> None:
        leg = self._legs.get(e.channel.uniqueid)
        if leg is not None and leg.call.hold_since is not None:
            leg.call.hold_s += _seconds(leg.call.hold_since, e.at)
            leg.call.hold_since = None
            out.append(CallHoldChanged(call_id=leg.call.call_id, at=e.at, on_hold=False))

    def _on_originate(self, e: OriginateResult, out: _Out) -> None:
        if not self._seen.add(("originate", e.action_id, e.uniqueid)):
            return
        leg = self._legs.get(e.uniqueid) if e.uniqueid else None
        out.append(
            OriginateCompleted(
                at=e.at,
                action_id=e.action_id,
                success=e.success,
                reason=e.reason,
                call_id=leg.call.call_id if leg else (e.uniqueid or None),
                agent_interface=leg.call.originator if leg and leg.call.originator else e.interface,
            )
        )

    # --- resynchronisation --------------------------------------------------

    def leg_ids(self) -> frozenset[str]:
        """The channels known now: pass them to :meth:`resync` as ``known_legs``."""
        return frozenset(self._legs)

    def resync(
        self,
        snapshot: Iterable[CallEvent],
        *,
        at: datetime,
        known_legs: Iterable[str] | None = None,
    ) -> list[CallFact]:
        """Reconcile with a CoreShowChannels/Status list taken at ``at``.

        Legs missing from a *complete* list hung up while we were not looking
        (their calls end, so no ghosts); live channels we do not know are
        adopted (so no lost calls).  Known state yields no facts, which is
        what keeps pops from being issued twice.  ``known_legs`` are the legs
        known when the list was requested (:meth:`leg_ids`): a leg that live
        events brought in while the list was on its way cannot be on it, so
        only those may be declared gone.  None: every leg known now.
        """
        events = list(snapshot)
        if not any(
            isinstance(e, SnapshotComplete) and e.list_name in CHANNELS_COMPLETE for e in events
        ):
            return []  # without the end of the list, unlisted does not mean gone
        live: dict[str, ChannelSnapshot] = {}
        for e in events:
            if isinstance(e, ChannelSnapshot):
                live.setdefault(e.channel.uniqueid, e)
        out: _Out = []
        listed_for = self._legs.keys() if known_legs is None else frozenset(known_legs)
        for uniqueid in [u for u in self._legs if u not in live and u in listed_for]:
            self._drop_leg(uniqueid, at, out)
        for call in [c for c in self._calls.values() if not c.legs]:
            self._end(call, at, out)
        by_call: dict[str, list[ChannelSnapshot]] = {}
        for snap in live.values():
            by_call.setdefault(snap.channel.linkedid, []).append(snap)
        for call_id, snaps in by_call.items():
            if call_id not in self._ended_calls:
                self._adopt(call_id, snaps, at, out)
        # Last, so the call log closes what it still holds open only after the ends above.
        out.append(CallsListedLive(at=at, call_ids=frozenset(self._calls)))
        return out

    def _adopt(self, call_id: str, snaps: list[ChannelSnapshot], at: datetime, out: _Out) -> None:
        # The originating channel (Uniqueid == Linkedid) first, then the oldest.
        snaps.sort(key=lambda s: (s.channel.uniqueid != call_id, -s.duration_s))
        call = self._calls.get(call_id)
        if call is None:
            started = at - timedelta(seconds=snaps[0].duration_s)
            call = self._open(snaps[0].channel, started, out, adopted=True)
            # The caller's channel runs Queue(support,...) while it is in a queue call.
            queues = (s.application_data for s in snaps if s.application.lower() == "queue")
            call.queue = next((data.split(",", 1)[0] for data in queues if data), None)
        for snap in snaps:
            leg = self._leg(snap.channel, at, out, call)
            if leg is None:
                continue
            talking = snap.state == 6 and bool(snap.bridge_id)
            if leg.trunk and call.originator:
                self._start_outbound(call, snap.channel, snap.channel.caller_num, out)
                if talking:
                    self._connect(call, call.originator, at, out)
            elif leg.device and leg.interface != call.originator:
                first_channel = snaps[0].channel
                self._start_internal(call, first_channel, first_channel.exten, out)
                if talking:
                    self._connect(call, leg.agent or leg.interface, at, out, leg)
                elif snap.state == 5:
                    self._ring(call, leg, leg.interface, at, out)


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())


def _view(call: _Call) -> LiveCall:
    return LiveCall(
        call_id=call.call_id,
        direction=call.direction,
        started_at=call.started_at,
        caller_number_raw=call.customer_num,
        caller_name=call.customer_name,
        queue=call.queue,
        ringing=tuple(call.ringing),
        connected=tuple(call.connected),
        answered_at=call.answered_at,
        on_hold=call.hold_since is not None,
        transferred=call.transferred,
    )


def resync(
    snapshot: Iterable[CallEvent],
    *,
    tracker: CallTracker,
    agents: AgentBoard,
    queues: QueueBoard,
    pops: PopDesk,
    at: datetime,
    known_legs: Iterable[str] | None = None,
) -> tuple[list[CallFact], list[PopDecision]]:
    """Rebuild calls, agents and queues from list responses after an AMI (re)connect.

    Pops go through the same idempotency keys as live ones, so a call that
    was already popped is not popped again.  ``known_legs``: see
    :meth:`CallTracker.resync`.
    """
    events = list(snapshot)
    agents.resync(events, at=at)
    queues.resync(events, at=at)
    facts = tracker.resync(events, at=at, known_legs=known_legs)
    decisions = [decision for fact in facts for decision in pops.apply(fact)]
    return facts, decisions
