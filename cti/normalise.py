"""The one place where AMI frames become typed events.

``normalise`` looks up a builder by the lowercased event name; most of the
stream (VarSet, Newexten, DeviceStateChange, RTCP...) misses that dict and
costs one lookup.  A frame that lacks what its event needs is logged and
dropped: a bad frame must never stop the ingest loop.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
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
)
from cti.frames import Frame

log = logging.getLogger(__name__)

# Asterisk writes these when a caller-id part is not set; to us that is "no value".
_UNSET = frozenset({"<unknown>", "<null>", "(null)"})
# "-0000000b" sequence suffix, and ";1"/";2" for the two halves of a Local channel.
_CHANNEL_SUFFIX = re.compile(r"-[0-9a-fA-F]+(?:;\d+)?$")


# A frame's fields by lower-case key (``Frame.fields``): look-ups here are plain dict gets.
Fields = Mapping[str, str]


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
    build = _BY_NAME.get(name, _UNSEEN)
    if build is _UNSEEN:
        # Event names arrive in a handful of spellings; remember each one's builder.
        build = _BUILDERS.get(name.lower())
        if len(_BY_NAME) < 4096:
            _BY_NAME[name] = build
    if build is None:
        return None
    fields = frame.fields()
    try:
        return build(fields, _moment(fields, received_at))
    except ValueError as exc:
        log.warning("dropping malformed AMI %s event: %s", name, exc)
        return None


def _moment(frame: Fields, received_at: datetime) -> datetime:
    # Asterisk adds Timestamp only with timestampevents=yes; prefer the PBX clock then.
    stamp = frame.get("timestamp")
    if stamp:
        try:
            return datetime.fromtimestamp(float(stamp), tz=UTC)
        except (ValueError, OverflowError, OSError):
            pass
    tv = frame.get("eventtv")
    if tv:
        try:
            parsed = datetime.fromisoformat(tv)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    if received_at.tzinfo is None:
        return received_at.replace(tzinfo=UTC)
    return received_at


def _text(frame: Fields, key: str) -> str:
    value = frame.get(key)
    if value is None or value in _UNSET:
        return ""
    return value


def _int(frame: Fields, key: str) -> int:
    value = frame.get(key)
    if not value:
        return 0
    try:
        return int(value)
    except ValueError:
        return 0


def _required(frame: Fields, key: str) -> str:
    value = frame.get(key)
    if not value or value in _UNSET:
        raise _Malformed(f"missing {key}")
    return value


def _channel(frame: Fields, prefix: str = "", *, linked: bool = True) -> Channel:
    name = _text(frame, prefix + "channel")
    return Channel(
        name=name,
        uniqueid=_required(frame, prefix + "uniqueid"),
        linkedid=_required(frame, prefix + "linkedid") if linked else "",
        interface=interface_of(name),
        state=_int(frame, prefix + "channelstate"),
        caller_num=_text(frame, prefix + "calleridnum"),
        caller_name=_text(frame, prefix + "calleridname"),
        connected_num=_text(frame, prefix + "connectedlinenum"),
        connected_name=_text(frame, prefix + "connectedlinename"),
        context=_text(frame, prefix + "context"),
        exten=_text(frame, prefix + "exten"),
    )


def _optional_channel(frame: Fields, prefix: str) -> Channel | None:
    if not frame.get(prefix + "uniqueid") and not frame.get(prefix + "channel"):
        return None
    return _channel(frame, prefix)


def _member(frame: Fields) -> QueueMember:
    # QueueMember list entries say Location/Name where the live events say Interface/MemberName.
    interface = _text(frame, "interface") or _text(frame, "location")
    if not interface:
        raise _Malformed("missing Interface")
    return QueueMember(
        queue=_required(frame, "queue"),
        interface=interface,
        name=_text(frame, "membername") or _text(frame, "name"),
        status=_int(frame, "status"),
        paused=_text(frame, "paused") in ("1", "true", "yes"),
        paused_reason=_text(frame, "pausedreason"),
        in_call=_text(frame, "incall") == "1",
        calls_taken=_int(frame, "callstaken"),
    )


def _duration_s(frame: Fields) -> int:
    seconds = frame.get("seconds")
    if seconds and seconds.isdigit():
        return int(seconds)
    hms = _text(frame, "duration").split(":")
    if len(hms) == 3 and all(part.isdigit() for part in hms):
        return int(hms[0]) * 3600 + int(hms[1]) * 60 + int(hms[2])
    return 0


def _agent_parts(frame: Fields) -> tuple[Channel, Channel, str, str, str]:
    return (
        _channel(frame),
        _channel(frame, "dest"),
        _required(frame, "queue"),
        _required(frame, "interface"),
        _text(frame, "membername"),
    )


def _agent_rang(f: Fields, at: datetime) -> CallEvent:
    caller, dest, queue, interface, member = _agent_parts(f)
    return AgentRang(
        at=at, caller=caller, dest=dest, queue=queue, interface=interface, member_name=member
    )


def _agent_connected(f: Fields, at: datetime) -> CallEvent:
    caller, dest, queue, interface, member = _agent_parts(f)
    return AgentConnected(
        at=at,
        caller=caller,
        dest=dest,
        queue=queue,
        interface=interface,
        member_name=member,
        hold_s=_int(f, "holdtime"),
        ring_s=_int(f, "ringtime"),
    )


def _agent_completed(f: Fields, at: datetime) -> CallEvent:
    caller, dest, queue, interface, member = _agent_parts(f)
    return AgentCompleted(
        at=at,
        caller=caller,
        dest=dest,
        queue=queue,
        interface=interface,
        member_name=member,
        hold_s=_int(f, "holdtime"),
        talk_s=_int(f, "talktime"),
        reason=_text(f, "reason"),
    )


def _agent_ring_no_answer(f: Fields, at: datetime) -> CallEvent:
    caller, dest, queue, interface, member = _agent_parts(f)
    return AgentRingNoAnswer(
        at=at,
        caller=caller,
        dest=dest,
        queue=queue,
        interface=interface,
        member_name=member,
        ring_ms=_int(f, "ringtime"),
    )


def _agent_dumped(f: Fields, at: datetime) -> CallEvent:
    caller, dest, queue, interface, member = _agent_parts(f)
    return AgentDumped(
        at=at, caller=caller, dest=dest, queue=queue, interface=interface, member_name=member
    )


def _blind_transfer(f: Fields, at: datetime) -> CallEvent:
    return Transferred(
        at=at,
        kind=TransferKind.BLIND,
        success=_text(f, "result") == "Success",
        transferer=_optional_channel(f, "transferer"),
        transferee=_optional_channel(f, "transferee"),
        extension=_text(f, "extension"),
        context=_text(f, "context"),
    )


def _attended_transfer(f: Fields, at: datetime) -> CallEvent:
    return Transferred(
        at=at,
        kind=TransferKind.ATTENDED,
        success=_text(f, "result") == "Success",
        transferer=_optional_channel(f, "origtransferer"),
        transferee=_optional_channel(f, "transferee"),
        target=_optional_channel(f, "transfertarget"),
        second_transferer=_optional_channel(f, "secondtransferer"),
    )


def _originate_response(f: Fields, at: datetime) -> CallEvent:
    channel = _text(f, "channel")
    return OriginateResult(
        at=at,
        action_id=_text(f, "actionid"),
        success=_text(f, "response") == "Success",
        reason=_int(f, "reason"),
        channel_name=channel,
        interface=interface_of(channel) if channel else "",
        uniqueid=_text(f, "uniqueid"),
        exten=_text(f, "exten"),
        context=_text(f, "context"),
    )


def _channel_snapshot(f: Fields, at: datetime) -> CallEvent:
    return ChannelSnapshot(
        at=at,
        channel=_channel(f),
        application=_text(f, "application"),
        application_data=_text(f, "applicationdata") or _text(f, "data"),
        bridge_id=_text(f, "bridgeid"),
        duration_s=_duration_s(f),
    )


def _queue_entry(f: Fields, at: datetime) -> CallEvent:
    return QueueEntrySnapshot(
        at=at,
        queue=_required(f, "queue"),
        position=_int(f, "position"),
        uniqueid=_required(f, "uniqueid"),
        channel_name=_text(f, "channel"),
        linkedid=_text(f, "linkedid"),
        caller_num=_text(f, "calleridnum"),
        caller_name=_text(f, "calleridname"),
        wait_s=_int(f, "wait"),
    )


def _queue_params(f: Fields, at: datetime) -> CallEvent:
    return QueueParamsSnapshot(
        at=at,
        queue=_required(f, "queue"),
        strategy=_text(f, "strategy"),
        calls=_int(f, "calls"),
        service_level_s=_int(f, "servicelevel"),
        completed=_int(f, "completed"),
        abandoned=_int(f, "abandoned"),
    )


def _queue_summary(f: Fields, at: datetime) -> CallEvent:
    return QueueSummarySnapshot(
        at=at,
        queue=_required(f, "queue"),
        logged_in=_int(f, "loggedin"),
        available=_int(f, "available"),
        callers=_int(f, "callers"),
        longest_hold_s=_int(f, "longestholdtime"),
    )


def _list_complete(f: Fields, at: datetime) -> CallEvent:
    return SnapshotComplete(
        at=at,
        list_name=_required(f, "event").lower(),
        action_id=_text(f, "actionid"),
        items=_int(f, "listitems"),
    )


_Builder = Callable[[Fields, datetime], CallEvent]

_BUILDERS: dict[str, _Builder] = {
    "newchannel": lambda f, at: ChannelCreated(at=at, channel=_channel(f)),
    "hangup": lambda f, at: ChannelHungUp(
        at=at, channel=_channel(f), cause=_int(f, "cause"), cause_txt=_text(f, "Cause-txt")
    ),
    "dialbegin": lambda f, at: DialStarted(
        at=at,
        caller=_optional_channel(f, ""),
        dest=_channel(f, "dest"),
        dial_string=_text(f, "dialstring"),
    ),
    "dialend": lambda f, at: DialEnded(
        at=at,
        caller=_optional_channel(f, ""),
        dest=_channel(f, "dest"),
        status=_text(f, "dialstatus"),
    ),
    "queuecallerjoin": lambda f, at: QueueCallerJoined(
        at=at,
        channel=_channel(f),
        queue=_required(f, "queue"),
        position=_int(f, "position"),
        count=_int(f, "count"),
    ),
    "queuecallerleave": lambda f, at: QueueCallerLeft(
        at=at,
        channel=_channel(f),
        queue=_required(f, "queue"),
        position=_int(f, "position"),
        count=_int(f, "count"),
    ),
    "queuecallerabandon": lambda f, at: QueueCallerAbandoned(
        at=at,
        channel=_channel(f),
        queue=_required(f, "queue"),
        position=_int(f, "position"),
        original_position=_int(f, "originalposition"),
        hold_s=_int(f, "holdtime"),
    ),
    "agentcalled": _agent_rang,
    "agentconnect": _agent_connected,
    "agentcomplete": _agent_completed,
    "agentringnoanswer": _agent_ring_no_answer,
    "agentdump": _agent_dumped,
    "queuememberstatus": lambda f, at: QueueMemberStatusChanged(at=at, member=_member(f)),
    "queuememberpause": lambda f, at: QueueMemberPaused(at=at, member=_member(f)),
    # Asterisk before 12 called it QueueMemberPaused.
    "queuememberpaused": lambda f, at: QueueMemberPaused(at=at, member=_member(f)),
    "queuememberadded": lambda f, at: QueueMemberAdded(at=at, member=_member(f)),
    "queuememberremoved": lambda f, at: QueueMemberRemoved(at=at, member=_member(f)),
    "bridgeenter": lambda f, at: BridgeEntered(
        at=at,
        channel=_channel(f),
        bridge_id=_required(f, "bridgeuniqueid"),
        bridge_channels=_int(f, "bridgenumchannels"),
    ),
    "bridgeleave": lambda f, at: BridgeLeft(
        at=at,
        channel=_channel(f),
        bridge_id=_required(f, "bridgeuniqueid"),
        bridge_channels=_int(f, "bridgenumchannels"),
    ),
    "blindtransfer": _blind_transfer,
    "attendedtransfer": _attended_transfer,
    "hold": lambda f, at: HoldStarted(at=at, channel=_channel(f)),
    "unhold": lambda f, at: HoldEnded(at=at, channel=_channel(f)),
    "originateresponse": _originate_response,
    "coreshowchannel": _channel_snapshot,
    "status": _channel_snapshot,
    "queuemember": lambda f, at: QueueMemberSnapshot(at=at, member=_member(f)),
    "queueentry": _queue_entry,
    "queueparams": _queue_params,
    "queuesummary": _queue_summary,
    "coreshowchannelscomplete": _list_complete,
    "statuscomplete": _list_complete,
    "queuestatuscomplete": _list_complete,
    "queuesummarycomplete": _list_complete,
}
_BY_NAME: dict[str, _Builder | None] = {}
_UNSEEN: _Builder | None = cast("_Builder", object())
