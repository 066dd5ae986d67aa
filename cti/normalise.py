"""The one place where AMI frames become typed events.

Each event kind the desk uses has a reader: the fields it needs, named once
(:class:`cti.frames.FieldSet`), and a builder that turns their values into the
typed event.  ``normalise`` finds the reader by event name; most of the stream
(VarSet, Newexten, DeviceStateChange, RTCP...) has none and costs one dict
look-up, and :data:`EVENT_NAMES` lets the AMI client drop those frames before
they are even built.  A frame that lacks what its event needs is logged and
dropped: a bad frame must never stop the ingest loop.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import cast

from cti.events import (
    AgentCompleted,
    AgentConnected,
    AgentDumped,
    AgentRang,
    AgentRingNoAnswer,
    BridgeEntered,
    BridgeLeft,
    CallEvent,
    Channel,
    ChannelCreated,
    ChannelHungUp,
    ChannelSnapshot,
    DialEnded,
    DialStarted,
    HoldEnded,
    HoldStarted,
    OriginateResult,
    QueueCallerAbandoned,
    QueueCallerJoined,
    QueueCallerLeft,
    QueueEntrySnapshot,
    QueueMember,
    QueueMemberAdded,
    QueueMemberPaused,
    QueueMemberRemoved,
    QueueMemberSnapshot,
    QueueMemberStatusChanged,
    QueueParamsSnapshot,
    QueueSummarySnapshot,
    SnapshotComplete,
    TransferKind,
    Transferred,
    fast_constructor,
)
from cti.frames import FieldSet, Frame, Picked

__all__ = ["EVENT_NAMES", "forget_channels", "interface_of", "normalise"]

log = logging.getLogger(__name__)

# Asterisk writes these when a caller-id part is not set; to us that is "no value",
# as is an absent field (None).  ``_clean(v, v)`` maps all of them to "" and keeps the
# rest.  Builders get the values as picked and clean only what they use, and channels
# and members are cached by their picked values, so most frames clean a field or two.
_clean = cast(
    "Callable[[str | None, str | None], str]",
    {None: "", "<unknown>": "", "<null>": "", "(null)": ""}.get,
)
# "-0000000b" sequence suffix, and ";1"/";2" for the two halves of a Local channel.
_CHANNEL_SUFFIX = re.compile(r"-[0-9a-fA-F]+(?:;\d+)?$")

# Picked values after cleaning: "" for absent or unset, in the reader's field order.
Values = tuple[str, ...]
# A builder gets the values as picked (None where absent) and the event's time.
_Builder = Callable[[Picked, datetime], CallEvent]

# Built per frame, so by their fast constructors (see cti.events.fast_constructor).
_Channel = fast_constructor(Channel)
_QueueMember = fast_constructor(QueueMember)
_ChannelCreated = fast_constructor(ChannelCreated)
_ChannelHungUp = fast_constructor(ChannelHungUp)
_DialStarted = fast_constructor(DialStarted)
_DialEnded = fast_constructor(DialEnded)
_QueueCallerJoined = fast_constructor(QueueCallerJoined)
_QueueCallerLeft = fast_constructor(QueueCallerLeft)
_QueueCallerAbandoned = fast_constructor(QueueCallerAbandoned)
_AgentRang = fast_constructor(AgentRang)
_AgentConnected = fast_constructor(AgentConnected)
_AgentCompleted = fast_constructor(AgentCompleted)
_AgentRingNoAnswer = fast_constructor(AgentRingNoAnswer)
_AgentDumped = fast_constructor(AgentDumped)
_QueueMemberStatusChanged = fast_constructor(QueueMemberStatusChanged)
_QueueMemberPaused = fast_constructor(QueueMemberPaused)
_QueueMemberAdded = fast_constructor(QueueMemberAdded)
_QueueMemberRemoved = fast_constructor(QueueMemberRemoved)
_QueueMemberSnapshot = fast_constructor(QueueMemberSnapshot)
_BridgeEntered = fast_constructor(BridgeEntered)
_BridgeLeft = fast_constructor(BridgeLeft)
_Transferred = fast_constructor(Transferred)
_HoldStarted = fast_constructor(HoldStarted)
_HoldEnded = fast_constructor(HoldEnded)
_OriginateResult = fast_constructor(OriginateResult)
_ChannelSnapshot = fast_constructor(ChannelSnapshot)
_QueueEntrySnapshot = fast_constructor(QueueEntrySnapshot)
_QueueParamsSnapshot = fast_constructor(QueueParamsSnapshot)
_QueueSummarySnapshot = fast_constructor(QueueSummarySnapshot)
_SnapshotComplete = fast_constructor(SnapshotComplete)


class _Malformed(ValueError):
    pass


@lru_cache(maxsize=8192)
def interface_of(channel_name: str) -> str:
    """``PJSIP/1001-0000000b`` -> ``PJSIP/1001``: the device a queue member is known by."""
    slash = channel_name.find("/")
    if slash <= 0:
        return channel_name
    stripped = _CHANNEL_SUFFIX.sub("", channel_name[slash:], count=1)
    return channel_name[:slash] + stripped if len(stripped) > 1 else channel_name


def normalise(frame: Frame, *, received_at: datetime) -> CallEvent | None:
    """Turn one AMI event frame into a typed event; None for anything we do not use."""
    name = frame.event
    if name is None:
        return None
    reader = _BY_NAME.get(name, _UNSEEN)
    if reader is _UNSEEN:
        # Event names arrive in a handful of spellings; remember each one's reader.
        reader = _READERS.get(name.lower())
        if len(_BY_NAME) < 4096:
            _BY_NAME[name] = reader
    if reader is None:
        return None
    fields, build = reader
    raw = frame.pick(fields)
    # Every reader's last two fields are Timestamp and EventTV; most PBXs send neither.
    stamp, tv = raw[-2:]
    try:
        if stamp is None and tv is None and received_at.tzinfo is UTC:
            return build(raw, received_at)
        return build(raw, _moment(stamp, tv, received_at))
    except ValueError as exc:
        log.warning("dropping malformed AMI %s event: %s", name, exc)
        return None


def _moment(stamp: str | None, tv: str | None, received_at: datetime) -> datetime:
    # Asterisk adds Timestamp only with timestampevents=yes; prefer the PBX clock then.
    # Uncleaned values are fine: the unset markers ("<unknown>"...) are no number and no
    # ISO time, so they fall through as "" does.
    if stamp:
        try:
            return datetime.fromtimestamp(float(stamp), tz=UTC)
        except (ValueError, OverflowError, OSError):
            pass
    if tv:
        try:
            parsed = datetime.fromisoformat(tv)
            if parsed.tzinfo is not None:
                return parsed.astimezone(UTC)
        except (ValueError, OverflowError):  # 0001-01-01T00:00+01:00 has no UTC date
            pass
    if received_at.tzinfo is None:
        return received_at.replace(tzinfo=UTC)
    return received_at.astimezone(UTC)


def _int(value: str | None) -> int:
    # Absent and the unset markers read as 0, as any other value int() refuses.
    if not value:
        return 0
    try:
        return int(value)
    except ValueError:
        return 0


def _required(value: str | None, key: str) -> str:
    value = _clean(value, value)
    if not value:
        raise _Malformed(f"missing {key}")
    return value


def _cleaned(raw: Picked) -> Values:
    """Every picked value cleaned, for the builders of events too rare to be worth more."""
    return tuple(map(_clean, raw, raw))


# -- field groups that several events share ---------------------------------------------

_MOMENT = ("timestamp", "eventtv")
_CHANNEL = (
    "channel",
    "uniqueid",
    "linkedid",
    "calleridnum",
    "calleridname",
    "exten",
)
_CH = len(_CHANNEL)


def _prefixed(prefix: str) -> tuple[str, ...]:
    return tuple(prefix + key for key in _CHANNEL)


# A channel shows up in most events of its call, mostly unchanged (four in five
# channel snapshots of the recorded mix repeat an earlier one): equal snapshots
# share one immutable Channel, built once, found by the values as picked.  Bounded:
# past the limit it starts over.
_CHANNELS: dict[Picked, Channel] = {}
_CHANNELS_KEPT = 4096


def forget_channels() -> None:
    """Drop the remembered channels and interfaces.  A live PBX never sends a channel's
    ids twice, but a replayed recording does: a benchmark replaying one stream run after
    run calls this first so that no run finds the previous run's channels."""
    _CHANNELS.clear()
    interface_of.cache_clear()


def _channel(raw: Picked, at: int = 0, prefix: str = "") -> Channel:
    """The channel whose fields (``_CHANNEL``, maybe prefixed) start at ``raw[at]``."""
    fields = raw[at : at + _CH]
    channel = _CHANNELS.get(fields)
    if channel is None:
        channel = _new_channel(fields, prefix)
        if len(_CHANNELS) >= _CHANNELS_KEPT:
            _CHANNELS.clear()
        _CHANNELS[fields] = channel
    return channel


def _new_channel(fields: Picked, prefix: str) -> Channel:
    name, uniqueid, linkedid, num, caller, exten = _cleaned(fields)
    return _Channel(
        name=name,
        uniqueid=_required(uniqueid, prefix + "Uniqueid"),
        linkedid=_required(linkedid, prefix + "Linkedid"),
        interface=interface_of(name),
        caller_num=num,
        caller_name=caller,
        exten=exten,
    )


def _optional_channel(raw: Picked, at: int, prefix: str) -> Channel | None:
    # Judged on the raw values: "<unknown>" is there, so the channel is required whole.
    if not raw[at + 1] and not raw[at]:
        return None
    return _channel(raw, at, prefix)


_MEMBER = (
    "interface",
    "location",
    "queue",
    "membername",
    "name",
    "status",
    "paused",
    "pausedreason",
    "incall",
    "callstaken",
)


# Member snapshots repeat even more than channels (30 distinct in 2360 of the recorded mix).
_MEMBERS: dict[Picked, QueueMember] = {}
_MEMBERS_KEPT = 1024


def _member(raw: Picked) -> QueueMember:
    fields = raw[:10]
    member = _MEMBERS.get(fields)
    if member is None:
        member = _new_member(fields)
        if len(_MEMBERS) >= _MEMBERS_KEPT:
            _MEMBERS.clear()
        _MEMBERS[fields] = member
    return member


def _new_member(fields: Picked) -> QueueMember:
    interface, location, queue, member_name, name, status, paused, reason, in_call, taken = (
        _cleaned(fields)
    )
    # QueueMember list entries say Location/Name where the live events say Interface/MemberName.
    interface = interface or location
    if not interface:
        raise _Malformed("missing Interface")
    return _QueueMember(
        queue=_required(queue, "Queue"),
        interface=interface,
        name=member_name or name,
        status=_int(status),
        paused=paused in ("1", "true", "yes"),
        paused_reason=reason,
        in_call=in_call == "1",
        calls_taken=_int(taken),
    )


# -- readers ---------------------------------------------------------------------------

_READERS: dict[str, tuple[FieldSet, _Builder]] = {}


def _reads(*events: str, fields: tuple[str, ...]) -> Callable[[_Builder], _Builder]:
    """Register a builder for ``events``; it gets ``fields`` (then Timestamp, EventTV)."""
    field_set = FieldSet(*fields, *_MOMENT)

    def register(build: _Builder) -> _Builder:
        for event in events:
            _READERS[event.lower()] = (field_set, build)
        return build

    return register


@_reads("Newchannel", fields=_CHANNEL)
def _channel_created(raw: Picked, at: datetime) -> CallEvent:
    return _ChannelCreated(at=at, channel=_channel(raw))


@_reads("Hangup", fields=(*_CHANNEL, "cause", "cause-txt"))
def _hangup(raw: Picked, at: datetime) -> CallEvent:
    cause, cause_txt = raw[_CH : _CH + 2]
    return _ChannelHungUp(
        at=at, channel=_channel(raw), cause=_int(cause), cause_txt=_clean(cause_txt, cause_txt)
    )


@_reads("DialBegin", fields=(*_CHANNEL, *_prefixed("dest"), "dialstring"))
def _dial_begin(raw: Picked, at: datetime) -> CallEvent:
    return _DialStarted(
        at=at,
        caller=_optional_channel(raw, 0, ""),
        dest=_channel(raw, _CH, "Dest"),
        dial_string=_clean(raw[2 * _CH], raw[2 * _CH]),
    )


@_reads("DialEnd", fields=(*_CHANNEL, *_prefixed("dest"), "dialstatus"))
def _dial_end(raw: Picked, at: datetime) -> CallEvent:
    return _DialEnded(
        at=at,
        caller=_optional_channel(raw, 0, ""),
        dest=_channel(raw, _CH, "Dest"),
        status=_clean(raw[2 * _CH], raw[2 * _CH]),
    )


_QUEUE_CALLER = (*_CHANNEL, "queue", "position")


def _queue_caller_moved(record: Callable[..., CallEvent]) -> _Builder:
    """A reader of QueueCallerJoin or QueueCallerLeave: the same fields, another record."""

    def build(raw: Picked, at: datetime) -> CallEvent:
        queue, position, count = raw[_CH : _CH + 3]
        return record(
            at=at,
            channel=_channel(raw),
            queue=_required(queue, "Queue"),
            position=_int(position),
            count=_int(count),
        )

    return build


_reads("QueueCallerJoin", fields=(*_QUEUE_CALLER, "count"))(_queue_caller_moved(_QueueCallerJoined))
_reads("QueueCallerLeave", fields=(*_QUEUE_CALLER, "count"))(_queue_caller_moved(_QueueCallerLeft))


@_reads("QueueCallerAbandon", fields=(*_QUEUE_CALLER, "originalposition", "holdtime"))
def _queue_caller_abandon(raw: Picked, at: datetime) -> CallEvent:
    queue, position, original, hold = raw[_CH : _CH + 4]
    return _QueueCallerAbandoned(
        at=at,
        channel=_channel(raw),
        queue=_required(queue, "Queue"),
        position=_int(position),
        original_position=_int(original),
        hold_s=_int(hold),
    )


# The caller's channel, the agent's (Dest) channel, then the member; each event adds its own.
_AGENT = (*_CHANNEL, *_prefixed("dest"), "queue", "interface", "membername")
_AG = len(_AGENT)


def _agent_parts(raw: Picked) -> tuple[Channel, Channel, str, str, str]:
    queue, interface, member_name = raw[2 * _CH : _AG]
    return (
        _channel(raw),
        _channel(raw, _CH, "Dest"),
        _required(queue, "Queue"),
        _required(interface, "Interface"),
        _clean(member_name, member_name),
    )


@_reads("AgentCalled", fields=_AGENT)
def _agent_rang(raw: Picked, at: datetime) -> CallEvent:
    caller, dest, queue, interface, member = _agent_parts(raw)
    return _AgentRang(
        at=at, caller=caller, dest=dest, queue=queue, interface=interface, member_name=member
    )


@_reads("AgentConnect", fields=(*_AGENT, "holdtime", "ringtime"))
def _agent_connected(raw: Picked, at: datetime) -> CallEvent:
    caller, dest, queue, interface, member = _agent_parts(raw)
    hold, ring = raw[_AG : _AG + 2]
    return _AgentConnected(
        at=at,
        caller=caller,
        dest=dest,
        queue=queue,
        interface=interface,
        member_name=member,
        hold_s=_int(hold),
        ring_s=_int(ring),
    )


@_reads("AgentComplete", fields=(*_AGENT, "holdtime", "talktime", "reason"))
def _agent_completed(raw: Picked, at: datetime) -> CallEvent:
    caller, dest, queue, interface, member = _agent_parts(raw)
    hold, talk, reason = raw[_AG : _AG + 3]
    return _AgentCompleted(
        at=at,
        caller=caller,
        dest=dest,
        queue=queue,
        interface=interface,
        member_name=member,
        hold_s=_int(hold),
        talk_s=_int(talk),
        reason=_clean(reason, reason),
    )


@_reads("AgentRingNoAnswer", fields=(*_AGENT, "ringtime"))
def _agent_ring_no_answer(raw: Picked, at: datetime) -> CallEvent:
    caller, dest, queue, interface, member = _agent_parts(raw)
    return _AgentRingNoAnswer(
        at=at,
        caller=caller,
        dest=dest,
        queue=queue,
        interface=interface,
        member_name=member,
        ring_ms=_int(raw[_AG]),
    )


@_reads("AgentDump", fields=_AGENT)
def _agent_dumped(raw: Picked, at: datetime) -> CallEvent:
    caller, dest, queue, interface, member = _agent_parts(raw)
    return _AgentDumped(
        at=at, caller=caller, dest=dest, queue=queue, interface=interface, member_name=member
    )


@_reads("QueueMemberStatus", fields=_MEMBER)
def _member_status(raw: Picked, at: datetime) -> CallEvent:
    return _QueueMemberStatusChanged(at=at, member=_member(raw))


# Asterisk before 12 called it QueueMemberPaused.
@_reads("QueueMemberPause", "QueueMemberPaused", fields=_MEMBER)
def _member_paused(raw: Picked, at: datetime) -> CallEvent:
    return _QueueMemberPaused(at=at, member=_member(raw))


@_reads("QueueMemberAdded", fields=_MEMBER)
def _member_added(raw: Picked, at: datetime) -> CallEvent:
    return _QueueMemberAdded(at=at, member=_member(raw))


@_reads("QueueMemberRemoved", fields=_MEMBER)
def _member_removed(raw: Picked, at: datetime) -> CallEvent:
    return _QueueMemberRemoved(at=at, member=_member(raw))


@_reads("QueueMember", fields=_MEMBER)
def _member_snapshot(raw: Picked, at: datetime) -> CallEvent:
    return _QueueMemberSnapshot(at=at, member=_member(raw))


_BRIDGE = (*_CHANNEL, "bridgeuniqueid", "bridgenumchannels")


@_reads("BridgeEnter", fields=_BRIDGE)
def _bridge_enter(raw: Picked, at: datetime) -> CallEvent:
    bridge_id, channels = raw[_CH : _CH + 2]
    return _BridgeEntered(
        at=at,
        channel=_channel(raw),
        bridge_id=_required(bridge_id, "BridgeUniqueid"),
        bridge_channels=_int(channels),
    )


@_reads("BridgeLeave", fields=_BRIDGE)
def _bridge_leave(raw: Picked, at: datetime) -> CallEvent:
    bridge_id, channels = raw[_CH : _CH + 2]
    return _BridgeLeft(
        at=at,
        channel=_channel(raw),
        bridge_id=_required(bridge_id, "BridgeUniqueid"),
        bridge_channels=_int(channels),
    )


@_reads(
    "BlindTransfer",
    fields=(
        *_prefixed("transferer"),
        *_prefixed("transferee"),
        "result",
        "extension",
        "context",
    ),
)
def _blind_transfer(raw: Picked, at: datetime) -> CallEvent:
    result, extension, context = _cleaned(raw[2 * _CH : 2 * _CH + 3])
    return _Transferred(
        at=at,
        kind=TransferKind.BLIND,
        success=result == "Success",
        transferer=_optional_channel(raw, 0, "Transferer"),
        transferee=_optional_channel(raw, _CH, "Transferee"),
        extension=extension,
        context=context,
    )


@_reads(
    "AttendedTransfer",
    fields=(
        *_prefixed("origtransferer"),
        *_prefixed("transferee"),
        *_prefixed("transfertarget"),
        *_prefixed("secondtransferer"),
        "result",
    ),
)
def _attended_transfer(raw: Picked, at: datetime) -> CallEvent:
    return _Transferred(
        at=at,
        kind=TransferKind.ATTENDED,
        success=raw[4 * _CH] == "Success",
        transferer=_optional_channel(raw, 0, "OrigTransferer"),
        transferee=_optional_channel(raw, _CH, "Transferee"),
        target=_optional_channel(raw, 2 * _CH, "TransferTarget"),
        second_transferer=_optional_channel(raw, 3 * _CH, "SecondTransferer"),
    )


@_reads("Hold", fields=_CHANNEL)
def _hold(raw: Picked, at: datetime) -> CallEvent:
    return _HoldStarted(at=at, channel=_channel(raw))


@_reads("Unhold", fields=_CHANNEL)
def _unhold(raw: Picked, at: datetime) -> CallEvent:
    return _HoldEnded(at=at, channel=_channel(raw))


@_reads(
    "OriginateResponse",
    fields=("channel", "actionid", "response", "reason", "uniqueid", "exten", "context"),
)
def _originate_response(raw: Picked, at: datetime) -> CallEvent:
    channel, action_id, response, reason, uniqueid, exten, context = _cleaned(raw[:7])
    return _OriginateResult(
        at=at,
        action_id=action_id,
        success=response == "Success",
        reason=_int(reason),
        channel_name=channel,
        interface=interface_of(channel) if channel else "",
        uniqueid=uniqueid,
        exten=exten,
        context=context,
    )


@_reads(
    "CoreShowChannel",
    "Status",
    fields=(
        *_CHANNEL,
        "channelstate",
        "application",
        "applicationdata",
        "data",
        "bridgeid",
        "seconds",
        "duration",
    ),
)
def _channel_snapshot(raw: Picked, at: datetime) -> CallEvent:
    state, application, application_data, data, bridge_id, seconds, duration = _cleaned(
        raw[_CH : _CH + 7]
    )
    return _ChannelSnapshot(
        at=at,
        channel=_channel(raw),
        state=_int(state),
        application=application,
        application_data=application_data or data,
        bridge_id=bridge_id,
        duration_s=_duration_s(seconds, duration),
    )


def _duration_s(seconds: str, duration: str) -> int:
    # isdecimal, not isdigit: int() refuses digits such as "²" that isdigit accepts.
    if seconds.isdecimal():
        return int(seconds)
    hms = duration.split(":")
    if len(hms) == 3 and all(part.isdecimal() for part in hms):
        return int(hms[0]) * 3600 + int(hms[1]) * 60 + int(hms[2])
    return 0


@_reads(
    "QueueEntry",
    fields=(
        "queue",
        "position",
        "uniqueid",
        "channel",
        "linkedid",
        "calleridnum",
        "calleridname",
        "wait",
    ),
)
def _queue_entry(raw: Picked, at: datetime) -> CallEvent:
    queue, position, uniqueid, channel, linkedid, num, name, wait = _cleaned(raw[:8])
    return _QueueEntrySnapshot(
        at=at,
        queue=_required(queue, "Queue"),
        position=_int(position),
        uniqueid=_required(uniqueid, "Uniqueid"),
        channel_name=channel,
        linkedid=linkedid,
        caller_num=num,
        caller_name=name,
        wait_s=_int(wait),
    )


@_reads(
    "QueueParams",
    fields=("queue", "strategy", "calls", "servicelevel", "completed", "abandoned"),
)
def _queue_params(raw: Picked, at: datetime) -> CallEvent:
    queue, strategy, calls, service_level, completed, abandoned = _cleaned(raw[:6])
    return _QueueParamsSnapshot(
        at=at,
        queue=_required(queue, "Queue"),
        strategy=strategy,
        calls=_int(calls),
        service_level_s=_int(service_level),
        completed=_int(completed),
        abandoned=_int(abandoned),
    )


@_reads(
    "QueueSummary",
    fields=("queue", "loggedin", "available", "callers", "longestholdtime"),
)
def _queue_summary(raw: Picked, at: datetime) -> CallEvent:
    queue, logged_in, available, callers, longest = _cleaned(raw[:5])
    return _QueueSummarySnapshot(
        at=at,
        queue=_required(queue, "Queue"),
        logged_in=_int(logged_in),
        available=_int(available),
        callers=_int(callers),
        longest_hold_s=_int(longest),
    )


@_reads(
    "CoreShowChannelsComplete",
    "StatusComplete",
    "QueueStatusComplete",
    "QueueSummaryComplete",
    fields=("event", "actionid", "listitems"),
)
def _list_complete(raw: Picked, at: datetime) -> CallEvent:
    event, action_id, items = _cleaned(raw[:3])
    return _SnapshotComplete(
        at=at,
        list_name=_required(event, "Event").lower(),
        action_id=action_id,
        items=_int(items),
    )


EVENT_NAMES: frozenset[str] = frozenset(_READERS)
"""Lower-case names of the events ``normalise`` reads; every other event is ignored."""

_Reader = tuple[FieldSet, _Builder]
_BY_NAME: dict[str, _Reader | None] = {}
_UNSEEN: _Reader | None = cast("_Reader", object())
