"""The CTI vocabulary: PBX events in, call facts out.

Events are the only shape AMI data has after ``cti.normalise``; call facts
are what ``cti.tracker`` concludes from them and what pops, the call log and
the board consume.  All are frozen, slotted records stamped with ``at``
(tz-aware UTC), named as things that already happened.  Channel-bearing
events carry a :class:`Channel` snapshot of the fields Asterisk repeats on
every channel event, so later stages never need the frame.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ParamSpec, TypeAlias, TypeVar

from desk.models import CallDirection, CallOutcome

P = ParamSpec("P")
T = TypeVar("T")


def fast_constructor(cls: Callable[P, T]) -> Callable[P, T]:
    """A function building ``cls`` (one of the records below) from the same keyword
    arguments, with the same defaults, into the same frozen object, in under half the time.

    The ingest path builds an event per frame.  The dataclass ``__init__`` of a frozen
    record goes through ``type.__call__`` and then ``object.__setattr__`` per field; this
    calls ``object.__new__`` and each slot's own setter, nothing else.
    """
    assert isinstance(cls, type) and dataclasses.is_dataclass(cls)
    assert not hasattr(cls, "__post_init__")
    namespace: dict[str, Any] = {"new_": object.__new__, "cls_": cls}
    params, lines = [], []
    for i, field in enumerate(dataclasses.fields(cls)):
        assert field.init and field.kw_only and field.default_factory is dataclasses.MISSING
        assert not field.name.endswith("_")  # the generated code's own names do
        if field.default is dataclasses.MISSING:
            params.append(field.name)
        else:
            namespace[f"default{i}_"] = field.default
            params.append(f"{field.name}=default{i}_")
        namespace[f"set{i}_"] = cls.__dict__[field.name].__set__  # the slot's descriptor
        lines.append(f"    set{i}_(self_, {field.name})")
    source = f"def build(*, {', '.join(params)}):\n    self_ = new_(cls_)\n"
    source += "\n".join(lines) + "\n    return self_\n"
    exec(source, namespace)
    build: Callable[P, T] = namespace["build"]
    build.__qualname__ = build.__name__ = f"fast_constructor({cls.__name__})"
    return build


@dataclass(frozen=True, slots=True, kw_only=True)
class Channel:
    """One channel as an event saw it.  ``interface`` is the device (``PJSIP/1001``).

    Only what the desk reads: Asterisk's snapshot of a channel also has its state,
    connected line and dialplan context, which change between otherwise equal snapshots
    of a call, so carrying them unread would cost the normaliser a new record at each
    change.  The state is read only from a resync's list (:class:`ChannelSnapshot`).
    """

    name: str
    uniqueid: str
    linkedid: str
    interface: str
    caller_num: str = ""
    caller_name: str = ""
    exten: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMember:
    """A queue membership as app_queue reports it; ``status`` is the AST_DEVICE_* code."""

    queue: str
    interface: str
    name: str = ""
    status: int = 0
    paused: bool = False
    paused_reason: str = ""
    in_call: bool = False
    calls_taken: int = 0


class TransferKind(StrEnum):
    BLIND = "blind"
    ATTENDED = "attended"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelCreated:
    at: datetime
    channel: Channel


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelHungUp:
    at: datetime
    channel: Channel
    cause: int = 0
    cause_txt: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DialStarted:
    """``caller`` is None for the first leg of an Originate: nobody is calling yet."""

    at: datetime
    caller: Channel | None
    dest: Channel
    dial_string: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DialEnded:
    at: datetime
    caller: Channel | None
    dest: Channel
    status: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerJoined:
    at: datetime
    channel: Channel
    queue: str
    position: int = 0
    count: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerLeft:
    at: datetime
    channel: Channel
    queue: str
    position: int = 0
    count: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerAbandoned:
    at: datetime
    channel: Channel
    queue: str
    position: int = 0
    original_position: int = 0
    hold_s: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRang:
    """app_queue rang a member (AgentCalled): ``caller`` waits, ``dest`` is the agent leg."""

    at: datetime
    caller: Channel
    dest: Channel
    queue: str
    interface: str
    member_name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConnected:
    at: datetime
    caller: Channel
    dest: Channel
    queue: str
    interface: str
    member_name: str = ""
    hold_s: int = 0
    ring_s: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentCompleted:
    at: datetime
    caller: Channel
    dest: Channel
    queue: str
    interface: str
    member_name: str = ""
    hold_s: int = 0
    talk_s: int = 0
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRingNoAnswer:
    at: datetime
    caller: Channel
    dest: Channel
    queue: str
    interface: str
    member_name: str = ""
    ring_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentDumped:
    """The agent rejected a ringing queue call."""

    at: datetime
    caller: Channel
    dest: Channel
    queue: str
    interface: str
    member_name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberStatusChanged:
    at: datetime
    member: QueueMember


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberPaused:
    """Pause *or* unpause: read ``member.paused``."""

    at: datetime
    member: QueueMember


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberAdded:
    at: datetime
    member: QueueMember


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberRemoved:
    at: datetime
    member: QueueMember


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeEntered:
    at: datetime
    channel: Channel
    bridge_id: str
    bridge_channels: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeLeft:
    at: datetime
    channel: Channel
    bridge_id: str
    bridge_channels: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Transferred:
    """Blind or attended transfer.

    ``transferer`` is the agent leg that was talking to ``transferee`` (the
    customer).  For attended transfers ``target`` is the leg now talking to
    the customer and ``second_transferer`` the transferer's consultation leg.
    For blind transfers ``target`` is None and ``extension`` says where to.
    """

    at: datetime
    kind: TransferKind
    success: bool
    transferer: Channel | None
    transferee: Channel | None = None
    target: Channel | None = None
    second_transferer: Channel | None = None
    extension: str = ""
    context: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldStarted:
    at: datetime
    channel: Channel


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldEnded:
    at: datetime
    channel: Channel


@dataclass(frozen=True, slots=True, kw_only=True)
class OriginateResult:
    """Outcome of an async Originate.  Asterisk sends no Linkedid here."""

    at: datetime
    action_id: str
    success: bool
    reason: int = 0
    channel_name: str = ""
    interface: str = ""
    uniqueid: str = ""
    exten: str = ""
    context: str = ""


# --- list responses, used to resynchronise after (re)connecting -------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelSnapshot:
    """A live channel from CoreShowChannels or Status; ``state`` is Asterisk's channel
    state code (AST_STATE_*: 5 ringing, 6 up)."""

    at: datetime
    channel: Channel
    state: int = 0
    application: str = ""
    application_data: str = ""
    bridge_id: str = ""
    duration_s: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberSnapshot:
    at: datetime
    member: QueueMember


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueEntrySnapshot:
    """A caller waiting in a queue.  QueueEntry has no Linkedid, hence optional."""

    at: datetime
    queue: str
    position: int
    uniqueid: str
    channel_name: str = ""
    linkedid: str = ""
    caller_num: str = ""
    caller_name: str = ""
    wait_s: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueParamsSnapshot:
    at: datetime
    queue: str
    strategy: str = ""
    calls: int = 0
    service_level_s: int = 0
    completed: int = 0
    abandoned: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueSummarySnapshot:
    at: datetime
    queue: str
    logged_in: int = 0
    available: int = 0
    callers: int = 0
    longest_hold_s: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotComplete:
    """End of a list response.  Only a complete list may declare things gone."""

    at: datetime
    list_name: str
    action_id: str = ""
    items: int = 0


SnapshotEvent: TypeAlias = (
    ChannelSnapshot
    | QueueMemberSnapshot
    | QueueEntrySnapshot
    | QueueParamsSnapshot
    | QueueSummarySnapshot
    | SnapshotComplete
)

CallEvent: TypeAlias = (
    ChannelCreated
    | ChannelHungUp
    | DialStarted
    | DialEnded
    | QueueCallerJoined
    | QueueCallerLeft
    | QueueCallerAbandoned
    | AgentRang
    | AgentConnected
    | AgentCompleted
    | AgentRingNoAnswer
    | AgentDumped
    | QueueMemberStatusChanged
    | QueueMemberPaused
    | QueueMemberAdded
    | QueueMemberRemoved
    | BridgeEntered
    | BridgeLeft
    | Transferred
    | HoldStarted
    | HoldEnded
    | OriginateResult
    | SnapshotEvent
)

# --- call facts: what the tracker concluded from the events ------------------


# The call log's own vocabulary: a fact's direction and outcome are stored as they are.
Direction = CallDirection
Outcome = CallOutcome


class RingStop(StrEnum):
    ANSWERED_ELSEWHERE = "answered_elsewhere"
    NO_ANSWER = "no_answer"
    REJECTED = "rejected"
    BUSY = "busy"
    CANCELLED = "cancelled"
    HUNG_UP = "hung_up"
    CALL_ENDED = "call_ended"


# ``caller_number_raw`` is always the customer's side: the caller for inbound
# calls, the callee for outbound ones, exactly as the PBX wrote it.


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStarted:
    call_id: str
    at: datetime
    direction: Direction
    caller_number_raw: str
    caller_name: str
    dialled: str
    agent_interface: str  # who placed an outbound/internal call; "" for inbound
    adopted: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRinging:
    call_id: str
    at: datetime
    agent_interface: str
    direction: Direction
    queue: str | None
    caller_number_raw: str
    caller_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRingStopped:
    call_id: str
    at: datetime
    agent_interface: str
    reason: RingStop


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAnswered:
    """An agent is now talking on the call; ``first`` is False for transfer targets."""

    call_id: str
    at: datetime
    agent_interface: str
    direction: Direction
    queue: str | None
    caller_number_raw: str
    caller_name: str
    wait_s: float
    first: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class CallTransferred:
    call_id: str
    at: datetime
    kind: TransferKind
    from_agent: str
    to_agent: str  # "" until a blind transfer's target answers
    extension: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallHoldChanged:
    call_id: str
    at: datetime
    on_hold: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded:
    """The call log entry.

    ``wait_s`` runs from the call's first channel to the first answer (or the
    abandon, or the end), as the customer experienced it; ``talk_s`` from the
    first answer to the last channel hanging up.  ``outcome`` is abandoned only
    for a QueueCallerAbandon; unanswered calls otherwise count as missed.
    """

    call_id: str
    at: datetime
    started_at: datetime
    answered_at: datetime | None
    outcome: Outcome
    direction: Direction
    queue: str | None
    answered_by: str | None
    agents: tuple[str, ...]
    caller_number_raw: str
    caller_name: str
    wait_s: float
    talk_s: float
    hold_s: float
    adopted: bool  # picked up by a resync, so times before it are estimates


@dataclass(frozen=True, slots=True, kw_only=True)
class OriginateCompleted:
    at: datetime
    action_id: str
    success: bool
    reason: int
    call_id: str | None
    agent_interface: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallsListedLive:
    """A complete channel list taken at ``at`` named these calls as the live ones.

    Any other call still open in the call log that began before ``at`` ended while
    nobody was watching — say the process that held the link was killed after seeing
    the hang-up but before writing it — and is closed with ``at`` as its end."""

    at: datetime
    call_ids: frozenset[str]


CallFact: TypeAlias = (
    CallStarted
    | CallRinging
    | CallRingStopped
    | CallAnswered
    | CallTransferred
    | CallHoldChanged
    | CallEnded
    | OriginateCompleted
    | CallsListedLive
)


# List names as SnapshotComplete reports them (the lowercased *Complete event).
CHANNELS_COMPLETE = frozenset({"coreshowchannelscomplete", "statuscomplete"})
QUEUES_COMPLETE = frozenset({"queuestatuscomplete"})
