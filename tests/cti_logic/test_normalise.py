from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from cti import events as ev
from cti.frames import Frame
from cti.normalise import EVENT_NAMES, forget_channels, interface_of, normalise
from tests.cti_logic.conftest import at, frame, recording

RECEIVED = at(0)


def first_recorded(name: str, event: str, **match: str) -> Frame:
    for _, raw in recording(name):
        if raw.event == event and all(raw.get(k) == v for k, v in match.items()):
            return raw
    raise LookupError(f"{event} not in {name}")


@pytest.mark.parametrize(
    ("name", "event", "kind"),
    [
        ("support_ringall_answered", "Newchannel", ev.ChannelCreated),
        ("support_ringall_answered", "Hangup", ev.ChannelHungUp),
        ("support_ringall_answered", "DialBegin", ev.DialStarted),
        ("support_ringall_answered", "DialEnd", ev.DialEnded),
        ("support_ringall_answered", "QueueCallerJoin", ev.QueueCallerJoined),
        ("support_ringall_answered", "QueueCallerLeave", ev.QueueCallerLeft),
        ("support_abandoned", "QueueCallerAbandon", ev.QueueCallerAbandoned),
        ("support_ringall_answered", "AgentCalled", ev.AgentRang),
        ("support_ringall_answered", "AgentConnect", ev.AgentConnected),
        ("support_ringall_answered", "AgentComplete", ev.AgentCompleted),
        ("sales_rrmemory_ring_no_answer", "AgentRingNoAnswer", ev.AgentRingNoAnswer),
        ("support_ringall_answered", "QueueMemberStatus", ev.QueueMemberStatusChanged),
        ("agent_paused", "QueueMemberPause", ev.QueueMemberPaused),
        ("support_ringall_answered", "BridgeEnter", ev.BridgeEntered),
        ("support_ringall_answered", "BridgeLeave", ev.BridgeLeft),
        ("click_to_call", "OriginateResponse", ev.OriginateResult),
        ("resync_snapshot_after_reconnect", "CoreShowChannel", ev.ChannelSnapshot),
        ("resync_snapshot_after_reconnect", "Status", ev.ChannelSnapshot),
        ("resync_snapshot_after_reconnect", "QueueMember", ev.QueueMemberSnapshot),
        ("resync_snapshot_after_reconnect", "QueueParams", ev.QueueParamsSnapshot),
        ("resync_snapshot_after_reconnect", "QueueSummary", ev.QueueSummarySnapshot),
        ("resync_snapshot_after_reconnect", "CoreShowChannelsComplete", ev.SnapshotComplete),
        ("resync_snapshot_after_reconnect", "QueueStatusComplete", ev.SnapshotComplete),
    ],
)
def test_each_recorded_event_becomes_its_typed_event(name: str, event: str, kind: type) -> None:
    assert isinstance(normalise(first_recorded(name, event), received_at=RECEIVED), kind)


@pytest.mark.parametrize("event", ["VarSet", "Newexten", "DeviceStateChange", "Cdr", "FullyBooted"])
def test_events_the_desk_does_not_use_are_ignored(event: str) -> None:
    assert (
        normalise(frame(Event=event, Uniqueid="1.1", Linkedid="1.1"), received_at=RECEIVED) is None
    )


def test_responses_are_not_events() -> None:
    assert normalise(frame(Response="Success", ActionID="rec-1"), received_at=RECEIVED) is None


def test_a_new_channel_carries_its_caller_and_its_agent_interface() -> None:
    raw = first_recorded("support_ringall_answered", "Newchannel", Channel="PJSIP/1002-0000000b")
    event = normalise(raw, received_at=RECEIVED)
    assert event == ev.ChannelCreated(
        at=RECEIVED,
        channel=ev.Channel(
            name="PJSIP/1002-0000000b",
            uniqueid="1795464262.11",
            linkedid="1795464262.10",
            interface="PJSIP/1002",
            caller_num="1002",
            caller_name="Agent 1002",
            exten="s",
        ),
    )


def test_agent_called_names_the_member_interface_and_both_legs() -> None:
    event = normalise(
        first_recorded("support_ringall_answered", "AgentCalled"), received_at=RECEIVED
    )
    assert isinstance(event, ev.AgentRang)
    assert (event.queue, event.interface, event.member_name) == ("support", "PJSIP/1002", "Bob")
    assert event.caller.caller_num == "+4930123456789"
    assert (event.dest.uniqueid, event.dest.interface) == ("1795464262.11", "PJSIP/1002")


def test_an_originate_dial_has_no_caller_channel() -> None:
    event = normalise(first_recorded("click_to_call", "DialBegin"), received_at=RECEIVED)
    assert isinstance(event, ev.DialStarted)
    assert event.caller is None
    assert event.dest.interface == "PJSIP/1001"


def test_an_originate_response_needs_no_linkedid() -> None:
    event = normalise(first_recorded("click_to_call", "OriginateResponse"), received_at=RECEIVED)
    assert event == ev.OriginateResult(
        at=RECEIVED,
        action_id="rec-2",
        success=True,
        reason=4,
        channel_name="PJSIP/1001-0000001d",
        interface="PJSIP/1001",
        uniqueid="1795464347.29",
        exten="+4940987654",
        context="from-agents",
    )


def test_a_pause_carries_its_reason() -> None:
    event = normalise(first_recorded("agent_paused", "QueueMemberPause"), received_at=RECEIVED)
    assert isinstance(event, ev.QueueMemberPaused)
    assert event.member == ev.QueueMember(
        queue="support",
        interface="PJSIP/1001",
        name="Alice",
        status=1,
        paused=True,
        paused_reason="Lunch",
        calls_taken=3,
    )


def test_queue_member_list_entries_use_location_and_name() -> None:
    raw = first_recorded("resync_snapshot_after_reconnect", "QueueMember", Name="Bob")
    event = normalise(raw, received_at=RECEIVED)
    assert isinstance(event, ev.QueueMemberSnapshot)
    assert (event.member.interface, event.member.name, event.member.status) == (
        "PJSIP/1002",
        "Bob",
        2,
    )
    assert event.member.in_call


def test_channel_snapshots_read_duration_from_either_list() -> None:
    core = normalise(
        first_recorded("resync_snapshot_after_reconnect", "CoreShowChannel"), received_at=RECEIVED
    )
    status = normalise(
        first_recorded("resync_snapshot_after_reconnect", "Status"), received_at=RECEIVED
    )
    assert isinstance(core, ev.ChannelSnapshot) and isinstance(status, ev.ChannelSnapshot)
    assert (core.duration_s, core.application, core.application_data) == (
        1,
        "Queue",
        "support,,,,120",
    )
    assert (status.duration_s, status.application_data) == (2, "support,,,,120")
    assert core.bridge_id == status.bridge_id == "66c2d78a-1ec3-4f2c-a3d6-75365d6752a3"
    assert core.state == status.state == 6  # up: the resync reads a bridged one as talking


def test_a_queue_entry_without_linkedid_is_still_a_waiting_caller() -> None:
    raw = frame(
        Event="QueueEntry",
        Queue="support",
        Position="2",
        Channel="PJSIP/trunk-00000050",
        Uniqueid="1795465000.80",
        CallerIDNum="+4930111",
        CallerIDName="Wait Ing",
        Wait="17",
    )
    event = normalise(raw, received_at=RECEIVED)
    assert event == ev.QueueEntrySnapshot(
        at=RECEIVED,
        queue="support",
        position=2,
        uniqueid="1795465000.80",
        channel_name="PJSIP/trunk-00000050",
        caller_num="+4930111",
        caller_name="Wait Ing",
        wait_s=17,
    )


def test_a_blind_transfer_names_transferer_transferee_and_extension() -> None:
    raw = frame(
        Event="BlindTransfer",
        Result="Success",
        TransfererChannel="PJSIP/1001-00000060",
        TransfererUniqueid="9.2",
        TransfererLinkedid="9.1",
        TransfereeChannel="PJSIP/trunk-0000005f",
        TransfereeUniqueid="9.1",
        TransfereeLinkedid="9.1",
        TransfereeCallerIDNum="+4930123",
        IsExternal="No",
        Context="from-agents",
        Extension="1002",
    )
    event = normalise(raw, received_at=RECEIVED)
    assert isinstance(event, ev.Transferred)
    assert event.kind is ev.TransferKind.BLIND and event.success
    assert event.transferer is not None and event.transferer.interface == "PJSIP/1001"
    assert event.transferee is not None and event.transferee.caller_num == "+4930123"
    assert (event.target, event.extension) == (None, "1002")


def test_an_attended_transfer_names_the_target_leg() -> None:
    raw = frame(
        Event="AttendedTransfer",
        Result="Success",
        DestType="Bridge",
        OrigTransfererChannel="PJSIP/1001-00000060",
        OrigTransfererUniqueid="9.2",
        OrigTransfererLinkedid="9.1",
        SecondTransfererChannel="PJSIP/1001-00000061",
        SecondTransfererUniqueid="9.3",
        SecondTransfererLinkedid="9.3",
        TransfereeChannel="PJSIP/trunk-0000005f",
        TransfereeUniqueid="9.1",
        TransfereeLinkedid="9.1",
        TransferTargetChannel="PJSIP/1002-00000062",
        TransferTargetUniqueid="9.4",
        TransferTargetLinkedid="9.3",
    )
    event = normalise(raw, received_at=RECEIVED)
    assert isinstance(event, ev.Transferred)
    assert event.kind is ev.TransferKind.ATTENDED
    assert event.target is not None and event.target.interface == "PJSIP/1002"
    assert event.second_transferer is not None and event.second_transferer.uniqueid == "9.3"


@pytest.mark.parametrize(("name", "kind"), [("Hold", ev.HoldStarted), ("Unhold", ev.HoldEnded)])
def test_hold_and_unhold_are_channel_events(name: str, kind: type) -> None:
    raw = frame(
        Event=name,
        Channel="PJSIP/1001-00000060",
        Uniqueid="9.2",
        Linkedid="9.1",
        MusicClass="default",
    )
    assert isinstance(normalise(raw, received_at=RECEIVED), kind)


@pytest.mark.parametrize(
    ("channel", "interface"),
    [
        ("PJSIP/1001-0000000b", "PJSIP/1001"),
        ("PJSIP/trunk-0000000a", "PJSIP/trunk"),
        ("PJSIP/my-trunk-000000ff", "PJSIP/my-trunk"),
        ("SIP/1003-00000001", "SIP/1003"),
        ("Local/1002@from-agents-00000012;1", "Local/1002@from-agents"),
        ("PJSIP/1001", "PJSIP/1001"),
        ("garbage", "garbage"),
        ("", ""),
    ],
)
def test_the_interface_is_the_channel_name_without_its_sequence(
    channel: str, interface: str
) -> None:
    assert interface_of(channel) == interface


def test_a_timestamp_field_wins_over_the_receive_time() -> None:
    raw = frame(
        Event="Hangup",
        Timestamp="1795464404.016159",
        Channel="PJSIP/1001-1",
        Uniqueid="1.1",
        Linkedid="1.1",
    )
    event = normalise(raw, received_at=RECEIVED)
    assert event is not None
    assert event.at == datetime.fromtimestamp(1795464404.016159, tz=UTC)


def test_an_event_tv_field_is_read_as_utc() -> None:
    raw = frame(
        Event="Hangup",
        EventTV="2026-11-23T21:04:21.114+0100",
        Channel="X/1-1",
        Uniqueid="1.1",
        Linkedid="1.1",
    )
    event = normalise(raw, received_at=RECEIVED)
    assert event is not None
    assert event.at == datetime(2026, 11, 23, 20, 4, 21, 114000, tzinfo=UTC)


def test_without_a_timestamp_the_receive_time_is_used_and_made_utc() -> None:
    raw = frame(Event="Hangup", Timestamp="soon", Channel="X/1-1", Uniqueid="1.1", Linkedid="1.1")
    naive = datetime(2026, 1, 1, 12, 0)  # a careless caller
    event = normalise(raw, received_at=naive)
    assert event is not None
    assert event.at == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw",
    [
        frame(Event="Hangup", Channel="PJSIP/1001-1", Linkedid="1.1"),
        frame(Event="Newchannel", Channel="PJSIP/1001-1", Uniqueid="1.1"),
        frame(Event="AgentCalled", Uniqueid="1.1", Linkedid="1.1", Queue="q", Interface="PJSIP/1"),
        frame(Event="QueueCallerJoin", Uniqueid="1.1", Linkedid="1.1"),
        frame(Event="QueueMemberStatus", Queue="support"),
        frame(Event="DialBegin", Uniqueid="1.1", Linkedid="1.1", DestChannel="PJSIP/1-2"),
        frame(Event="BridgeEnter", Uniqueid="1.1", Linkedid="<unknown>", BridgeUniqueid="b"),
    ],
)
def test_a_malformed_frame_is_logged_and_dropped(
    raw: Frame, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="cti.normalise"):
        assert normalise(raw, received_at=RECEIVED) is None
    assert "malformed" in caplog.text


_CALL = {"Channel": "PJSIP/trunk-1", "Uniqueid": "1.1", "Linkedid": "1.1"}
_DEST = {"DestChannel": "PJSIP/1001-2", "DestUniqueid": "1.2", "DestLinkedid": "1.1"}
_AGENT = {**_CALL, **_DEST, "Queue": "support", "Interface": "PJSIP/1001"}


@pytest.mark.parametrize("marker", ["<unknown>", "<null>", "(null)"])
@pytest.mark.parametrize(
    ("fields", "key", "read"),
    [
        ({"Event": "Newchannel", **_CALL}, "CallerIDName", lambda e: e.channel.caller_name),
        ({"Event": "Newchannel", **_CALL}, "Exten", lambda e: e.channel.exten),
        ({"Event": "Hangup", **_CALL}, "Cause-txt", lambda e: e.cause_txt),
        ({"Event": "DialBegin", **_CALL, **_DEST}, "DialString", lambda e: e.dial_string),
        ({"Event": "DialEnd", **_CALL, **_DEST}, "DialStatus", lambda e: e.status),
        ({"Event": "DialEnd", **_CALL, **_DEST}, "DestCallerIDNum", lambda e: e.dest.caller_num),
        ({"Event": "AgentCalled", **_AGENT}, "MemberName", lambda e: e.member_name),
        ({"Event": "AgentComplete", **_AGENT}, "Reason", lambda e: e.reason),
        (
            {"Event": "QueueMemberStatus", "Queue": "support", "Interface": "PJSIP/1001"},
            "PausedReason",
            lambda e: e.member.paused_reason,
        ),
        ({"Event": "BlindTransfer", **_CALL}, "Extension", lambda e: e.extension),
        ({"Event": "OriginateResponse"}, "Channel", lambda e: e.channel_name),
    ],
    ids=[
        "channel-caller-name",
        "channel-exten",
        "hangup-cause-text",
        "dial-string",
        "dial-status",
        "dest-channel-caller",
        "agent-member-name",
        "agent-complete-reason",
        "member-paused-reason",
        "transfer-extension",
        "originate-channel",
    ],
)
def test_an_unset_marker_in_a_text_field_reads_as_empty_as_an_absent_field_does(
    fields: dict[str, str], key: str, read: Callable[[Any], str], marker: str
) -> None:
    absent = normalise(frame(**fields), received_at=RECEIVED)
    unset = normalise(frame(**fields, **{key: marker}), received_at=RECEIVED)
    assert absent is not None and unset is not None
    assert read(unset) == read(absent) == ""
    assert unset == absent


def test_unparseable_numbers_read_as_zero_rather_than_dropping_the_event() -> None:
    raw = frame(
        Event="QueueCallerJoin",
        Channel="PJSIP/trunk-1",
        Uniqueid="1.1",
        Linkedid="1.1",
        Queue="support",
        Position="first",
        Count="",
    )
    event = normalise(raw, received_at=RECEIVED)
    assert isinstance(event, ev.QueueCallerJoined)
    assert (event.position, event.count) == (0, 0)
    listed = frame(Event="CoreShowChannel", ChannelState="x", **_CALL)
    snapshot = normalise(listed, received_at=RECEIVED)
    assert isinstance(snapshot, ev.ChannelSnapshot)
    assert snapshot.state == 0


def test_keys_match_whatever_their_case() -> None:
    raw = Frame(
        (("event", "HANGUP"), ("CHANNEL", "PJSIP/1001-1"), ("uniqueid", "1.1"), ("LINKEDID", "1.1"))
    )
    event = normalise(raw, received_at=RECEIVED)
    assert isinstance(event, ev.ChannelHungUp)
    assert event.channel.interface == "PJSIP/1001"


def test_every_event_is_frozen_and_slotted() -> None:
    event = normalise(
        first_recorded("support_ringall_answered", "AgentConnect"), received_at=RECEIVED
    )
    assert event is not None
    assert not hasattr(event, "__dict__")
    with pytest.raises(AttributeError):
        event.at = RECEIVED  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "event"),
    [
        ("support_ringall_answered", "AgentConnect"),
        ("support_ringall_answered", "DialBegin"),
        ("agent_paused", "QueueMemberPause"),
        ("resync_snapshot_after_reconnect", "CoreShowChannel"),
        ("click_to_call", "OriginateResponse"),
    ],
)
def test_a_fast_constructor_builds_what_the_class_builds_defaults_included(
    name: str, event: str
) -> None:
    built = normalise(first_recorded(name, event), received_at=RECEIVED)
    assert built is not None
    parts = (getattr(built, f.name) for f in dataclasses.fields(built))
    records: list[Any] = [built, *(part for part in parts if dataclasses.is_dataclass(part))]
    for record in records:
        cls = type(record)
        fields = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
        fast = ev.fast_constructor(cls)(**fields)
        assert type(fast) is cls
        assert fast == record and hash(fast) == hash(record) and repr(fast) == repr(record)
        required = {
            f.name: fields[f.name]
            for f in dataclasses.fields(record)
            if f.default is dataclasses.MISSING
        }
        assert ev.fast_constructor(cls)(**required) == cls(**required)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(fast, next(iter(fields)), RECEIVED)


def test_event_names_lists_exactly_the_events_normalise_reads() -> None:
    for name in EVENT_NAMES:
        raw = frame(
            Event=name,
            Channel="PJSIP/1001-1",
            Uniqueid="1.1",
            Linkedid="1.1",
            DestChannel="PJSIP/1002-2",
            DestUniqueid="1.2",
            DestLinkedid="1.1",
            Queue="support",
            Interface="PJSIP/1002",
            BridgeUniqueid="b-1",
        )
        assert normalise(raw, received_at=RECEIVED) is not None, name
    for name in ("VarSet", "Newexten", "UserEvent", "Cdr"):
        assert name.lower() not in EVENT_NAMES


def test_a_pbx_clock_without_a_utc_date_falls_back_to_the_receive_time() -> None:
    raw = frame(
        Event="Hangup",
        EventTV="0001-01-01T00:00:00+01:00",
        Channel="X/1-1",
        Uniqueid="1.1",
        Linkedid="1.1",
    )
    event = normalise(raw, received_at=RECEIVED)
    assert event is not None
    assert event.at == RECEIVED


def test_a_duration_in_digits_int_cannot_read_is_zero_rather_than_a_dropped_snapshot() -> None:
    raw = frame(
        Event="CoreShowChannel",
        Channel="PJSIP/1001-1",
        Uniqueid="1.1",
        Linkedid="1.1",
        Seconds="²",
        Duration="00:00:0²",
    )
    event = normalise(raw, received_at=RECEIVED)
    assert isinstance(event, ev.ChannelSnapshot)
    assert event.duration_s == 0


def test_a_hangup_carries_its_cause_and_cause_text() -> None:
    event = normalise(first_recorded("agent_paused", "Hangup"), received_at=RECEIVED)
    assert isinstance(event, ev.ChannelHungUp)
    assert (event.cause, event.cause_txt) == (16, "Normal Clearing")


def test_a_frame_without_any_pbx_time_takes_the_receive_time_as_utc() -> None:
    raw = frame(Event="Hangup", Channel="X/1-1", Uniqueid="1.1", Linkedid="1.1")
    aware = datetime(2026, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    naive = datetime(2026, 1, 1, 12, 0)  # a careless caller
    for received_at in (aware, naive):
        event = normalise(raw, received_at=received_at)
        assert event is not None
        assert event.at == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        assert event.at.utcoffset() == timedelta(0)


def test_a_repeated_channel_snapshot_shares_one_record_until_channels_are_forgotten() -> None:
    raw = frame(Event="Newchannel", Channel="PJSIP/1001-7", Uniqueid="7.1", Linkedid="7.1")
    first, again = (normalise(raw, received_at=RECEIVED) for _ in range(2))
    assert isinstance(first, ev.ChannelCreated) and isinstance(again, ev.ChannelCreated)
    assert again.channel is first.channel
    forget_channels()
    after = normalise(raw, received_at=RECEIVED)
    assert isinstance(after, ev.ChannelCreated)
    assert after.channel == first.channel
    assert after.channel is not first.channel
