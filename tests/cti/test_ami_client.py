"""The AMI client against the PBX simulator over real TCP."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from cti.ami import AmiClient, AmiNotConnectedError, AmiTimeoutError, LinkStatus
from cti.frames import Frame
from cti.recordings import load_recording
from cti.simulator import PbxSimulator
from tests.cti.conftest import Link, MakeLink, eventually


async def test_the_client_logs_in_with_events_on_and_reports_a_healthy_link(
    sim: PbxSimulator, make_link: MakeLink
) -> None:
    link = await make_link()
    state = link.client.state
    assert state.status is LinkStatus.CONNECTED
    assert state.banner == "Asterisk Call Manager/11.0.0"
    assert state.connected_since is not None and state.connected_since.tzinfo is not None
    assert state.last_error is None and state.reconnects == 0
    login = next(f for f in sim.actions_received if f.get("Action") == "Login")
    assert login["Events"] == "on" and login["Username"] == "desk"
    await eventually(lambda: bool(link.events("FullyBooted")))
    assert link.client.frames_received >= 2  # login reply + FullyBooted


async def test_concurrent_actions_each_get_their_own_reply_even_out_of_order(
    sim: PbxSimulator, make_link: MakeLink
) -> None:
    link = await make_link()
    sim.reply_jitter = 0.05  # replies overtake each other
    client = link.client
    calls = []
    for i in range(30):
        if i % 3 == 0:
            calls.append(client.send_action("QueuePause", Interface="PJSIP/1001", Paused="true"))
        elif i % 3 == 1:
            calls.append(client.send_action("QueuePause", Interface="PJSIP/9999", Paused="true"))
        else:
            calls.append(client.send_action("Ping"))
    replies = await asyncio.gather(*calls)
    for i, reply in enumerate(replies):
        expected = ["Interface paused successfully", "Interface not found", None][i % 3]
        assert reply.get("Message") == expected
    assert all(r.get("Ping") == "Pong" for r in replies[2::3])
    assert len({r.action_id for r in replies}) == 30


async def test_a_list_action_collects_its_events_up_to_complete_and_keeps_them_off_on_frame(
    make_link: MakeLink,
) -> None:
    link = await make_link()
    result = await link.client.send_list_action("QueueStatus")
    assert result.ok and result.response["EventList"] == "start"
    assert [e.event for e in result.events].count("QueueMember") == 4
    assert {e.event for e in result.events} == {"QueueParams", "QueueMember"}
    assert result.complete is not None and result.complete.event == "QueueStatusComplete"
    assert result.complete["ListItems"] == "6"
    await link.client.send_action("Ping")  # everything sent before it has arrived
    assert not link.events("QueueMember") and not link.events("QueueStatusComplete")


async def test_every_resync_list_answers(make_link: MakeLink) -> None:
    link = await make_link()
    results = await asyncio.gather(
        *(
            link.client.send_list_action(name)
            for name in ("CoreShowChannels", "QueueSummary", "Status")
        )
    )
    completes = [r.complete.event if r.complete else None for r in results]
    assert completes == ["CoreShowChannelsComplete", "QueueSummaryComplete", "StatusComplete"]
    assert len(results[1].events) == 2  # support and sales


async def test_recorded_events_reach_on_frame_in_order(
    sim: PbxSimulator, make_link: MakeLink
) -> None:
    link = await make_link()
    link.frames.clear()
    sent = await sim.play("agent_paused")
    await link.client.send_action("Ping")
    expected = [
        e.frame.event for e in load_recording("agent_paused").events() if e.reply_to is None
    ]
    assert sent == len(expected)
    assert [f.event for f in link.frames] == expected


async def test_pings_keep_the_link_alive(sim: PbxSimulator, make_link: MakeLink) -> None:
    link = await make_link(ping_interval=0.05, pong_timeout=0.5)
    await asyncio.sleep(0.4)
    pings = [f for f in sim.actions_received if f.get("Action") == "Ping"]
    assert len(pings) >= 3
    assert link.client.connected and link.client.state.reconnects == 0


async def test_a_link_that_stops_answering_pings_is_declared_dead_and_reconnected(
    sim: PbxSimulator, make_link: MakeLink
) -> None:
    link = await make_link(ping_interval=0.05, pong_timeout=0.15)
    sim.stall_links()  # half-open TCP: nothing answers, nothing errors
    await eventually(lambda: link.connections() == 2)
    assert "Ping" in (link.states[-2].last_error or "")
    await eventually(lambda: link.resyncs == 2)
    assert (await link.client.send_action("Ping"))["Ping"] == "Pong"


async def test_a_dropped_link_reconnects_after_a_backoff_and_resyncs_again(
    sim: PbxSimulator, make_link: MakeLink
) -> None:
    snapshots: list[int] = []

    async def resync(link: Link) -> None:
        result = await link.client.send_list_action("QueueSummary")
        snapshots.append(len(result.events))

    link = await make_link(on_connected=resync, backoff_initial=0.2, backoff_max=1.0)
    await eventually(lambda: snapshots == [2])
    dropped_at = time.monotonic()
    sim.drop_link()  # mid-frame
    await eventually(lambda: link.connections() == 2)
    assert time.monotonic() - dropped_at >= 0.1  # half of backoff_initial, the least jitter allows
    statuses = [s.status for s in link.states]
    assert LinkStatus.DISCONNECTED in statuses[statuses.index(LinkStatus.CONNECTED) :]
    assert link.client.state.reconnects == 1
    await eventually(lambda: snapshots == [2, 2])
    # The half-sent frame died with the old connection instead of corrupting the next one.
    assert all(f.get("Privilege") != "call,al" for f in link.frames)


async def test_wrong_credentials_report_auth_failed_and_retry_with_backoff_not_a_loop(
    sim: PbxSimulator, make_link: MakeLink
) -> None:
    link = await make_link(secret="wrong", wait=False, backoff_initial=0.05, backoff_max=0.2)
    await asyncio.sleep(1.0)
    # Full backoff would be 0.05 + 0.1 + 0.2 + 0.2 + ...; jitter halves it at most.
    assert 3 <= sim.login_attempts <= 14
    assert not link.client.connected
    assert any(s.status is LinkStatus.AUTH_FAILED for s in link.states)
    assert link.client.state.last_error == "authentication failed"
    assert link.resyncs == 0


async def test_an_exception_in_on_frame_does_not_kill_the_reader(
    sim: PbxSimulator, make_link: MakeLink, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(frame: Frame) -> None:
        raise RuntimeError("consumer bug")

    link = await make_link(on_frame=explode)
    with caplog.at_level(logging.ERROR, logger="cti.ami"):
        await sim.play("support_abandoned")
        assert (await link.client.send_action("Ping"))["Ping"] == "Pong"
    assert link.events("QueueCallerAbandon")
    assert "consumer bug" in caplog.text
    assert link.client.frame_errors == len(link.frames) > caplog.text.count("consumer bug")
    assert link.client.state.reconnects == 0


async def test_an_unanswered_action_times_out(sim: PbxSimulator, make_link: MakeLink) -> None:
    link = await make_link()
    sim.stall_links()
    with pytest.raises(AmiTimeoutError):
        await link.client.send_action("Ping", reply_timeout=0.1)


async def test_actions_fail_fast_while_there_is_no_link() -> None:
    client = AmiClient("127.0.0.1", 9, "desk", "x", on_frame=lambda frame: None)
    with pytest.raises(AmiNotConnectedError):
        await client.send_action("Ping")


async def test_stop_sends_logoff_and_leaves_no_task_behind(
    sim: PbxSimulator, make_link: MakeLink
) -> None:
    link = await make_link(ping_interval=0.05)
    await link.client.stop()
    assert any(f.get("Action") == "Logoff" for f in sim.actions_received)
    assert link.client.state.status is LinkStatus.STOPPED
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("ami-")]
    await link.client.stop()  # idempotent
