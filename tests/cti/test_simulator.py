"""The PBX simulator speaks AMI the way the recorded Asterisk did."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

from cti.frames import Frame
from cti.recordings import load_recording
from cti.simulator import CALL_SCENARIOS, PbxSimulator
from cti.wire import FrameParser
from tests.cti.conftest import MakeLink, eventually


def recorded(name: str, event: str) -> Frame:
    return next(e.frame for e in load_recording(name).events() if e.frame.event == event)


async def test_it_greets_with_the_banner_and_refuses_a_wrong_secret_like_asterisk(
    sim: PbxSimulator,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    assert await reader.readline() == b"Asterisk Call Manager/11.0.0\r\n"
    writer.write(b"Action: Ping\r\nActionID: 1\r\n\r\n")
    writer.write(b"Action: Login\r\nActionID: 2\r\nUsername: desk\r\nSecret: nope\r\n\r\n")
    replies = await reader.read()  # the server hangs up after a failed login
    assert replies == (
        b"Response: Error\r\nActionID: 1\r\nMessage: Permission denied\r\n\r\n"
        b"Response: Error\r\nActionID: 2\r\nMessage: Authentication failed\r\n\r\n"
    )
    writer.close()
    await writer.wait_closed()


async def test_queue_pause_replies_and_emits_queue_member_pause_shaped_like_the_recording(
    sim: PbxSimulator, make_link: MakeLink
) -> None:
    link = await make_link()
    reply = await link.client.send_action(
        "QueuePause", Interface="PJSIP/1001", Queue="support", Paused="true", Reason="Lunch"
    )
    assert reply["Message"] == "Interface paused successfully"
    await eventually(lambda: bool(link.events("QueueMemberPause")))
    (pause,) = link.events("QueueMemberPause")
    assert [k for k, _ in pause] == [k for k, _ in recorded("agent_paused", "QueueMemberPause")]
    assert (pause["MemberName"], pause["Paused"], pause["PausedReason"]) == ("Alice", "1", "Lunch")
    status = await link.client.send_list_action("QueueStatus", Queue="support")
    alice = next(e for e in status.events if e.get("Name") == "Alice")
    assert (alice["Paused"], alice["PausedReason"]) == ("1", "Lunch")


async def test_list_responses_have_the_recorded_shape(make_link: MakeLink) -> None:
    link = await make_link()
    status = await link.client.send_list_action("QueueStatus")
    member = next(e for e in status.events if e.event == "QueueMember")
    recorded_member = recorded("resync_snapshot_after_reconnect", "QueueMember")
    assert [k for k, _ in member] == [k for k, _ in recorded_member]
    summary = await link.client.send_list_action("QueueSummary")
    recorded_summary = recorded("resync_snapshot_after_reconnect", "QueueSummary")
    assert [k for k, _ in summary.events[0]] == [k for k, _ in recorded_summary]
    channels = await link.client.send_list_action("CoreShowChannels")
    assert channels.events == () and channels.complete is not None
    assert channels.complete["ListItems"] == "0"


async def test_originate_replays_click_to_call_for_the_requested_agent_and_number(
    sim: PbxSimulator, make_link: MakeLink
) -> None:
    sim.originate_speed = 20.0
    link = await make_link()
    reply = await link.client.send_action(
        "Originate", Channel="PJSIP/1002", Context="from-agents", Exten="+4940111222", Async="true"
    )
    assert reply["Message"] == "Originate successfully queued"
    await eventually(lambda: len(link.events("BridgeEnter")) == 2)
    (originated,) = link.events("OriginateResponse")
    assert originated.action_id == reply.action_id
    assert originated["Channel"].startswith("PJSIP/1002-") and originated["Exten"] == "+4940111222"
    assert not any("+4940987654" in v or "1001" in v for f in link.frames for _, v in f)

    live = await link.client.send_list_action("CoreShowChannels")
    assert len(live.events) == 2 and len({e["Linkedid"] for e in live.events}) == 1
    hangup = await link.client.send_action("Hangup", Channel=originated["Channel"])
    assert hangup["Message"] == "Channel Hungup"
    await eventually(lambda: len(link.events("Hangup")) == 2)
    assert (await link.client.send_list_action("CoreShowChannels")).events == ()


async def test_generated_calls_get_fresh_distinct_ids_and_caller_numbers(
    sim: PbxSimulator, make_link: MakeLink
) -> None:
    link = await make_link()
    calls = await sim.generate_load(100, count=8, speed=None)
    await link.client.send_action("Ping")
    assert calls == 8
    new_channels = link.events("Newchannel")
    trunk = [f for f in new_channels if f["Channel"].startswith("PJSIP/trunk-")]
    assert len({f["Linkedid"] for f in trunk}) == 8
    assert len({f["CallerIDNum"] for f in trunk}) == 8
    assert len({f["Channel"] for f in new_channels}) == len(new_channels)
    recorded_ids = {
        e.frame.get("Uniqueid") for name in CALL_SCENARIOS for e in load_recording(name).events()
    }
    assert not recorded_ids & {f["Uniqueid"] for f in new_channels}
    # Each call stays coherent: its agent legs share the caller's Linkedid.
    linked = {f["Linkedid"] for f in new_channels}
    assert linked == {f["Linkedid"] for f in trunk}
    assert (await link.client.send_list_action("CoreShowChannels")).events == ()


async def test_timed_replay_keeps_the_recorded_gaps_scaled_by_speed(
    sim: PbxSimulator, make_link: MakeLink
) -> None:
    link = await make_link()
    arrivals: list[float] = []
    link.client._on_frame = lambda frame: arrivals.append(time.monotonic())
    started = time.monotonic()
    await sim.play("support_abandoned", speed=20.0)
    span = load_recording("support_abandoned").events()
    recorded_span = span[-1].t - span[0].t  # about 6 s
    assert recorded_span / 20 * 0.8 <= time.monotonic() - started <= recorded_span / 20 + 0.5
    await eventually(lambda: len(arrivals) == len(span))


async def test_replayed_calls_update_the_queue_counters(
    sim: PbxSimulator, make_link: MakeLink
) -> None:
    link = await make_link()
    before = await link.client.send_list_action("QueueStatus", Queue="support")
    await sim.play("support_ringall_answered")
    await sim.play("support_abandoned")
    after = await link.client.send_list_action("QueueStatus", Queue="support")
    params = [r.events[0] for r in (before, after)]
    assert int(params[1]["Completed"]) == int(params[0]["Completed"]) + 1
    assert int(params[1]["Abandoned"]) == int(params[0]["Abandoned"]) + 1


def test_the_simulator_runs_standalone() -> None:
    command = [sys.executable, "-m", "cti.simulator", "--port", "0", "--speed", "0"]
    result = subprocess.run(
        [*command, "--pause", "0", "--scenario", "direct_call_to_agent"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "listening" in result.stderr and "direct_call_to_agent" in result.stderr


def test_recordings_parse_with_the_parser_used_by_the_simulator() -> None:
    for name in CALL_SCENARIOS:
        recording = load_recording(name)
        for chunk in recording.recv[1:]:
            assert len(FrameParser(expect_banner=False).feed(chunk.data)) == 1
