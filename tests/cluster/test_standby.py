"""Two processes, one holding the PBX link: the other still serves everything.

Browsers and requests go to the standby; what they get comes from the holder
(pops through socket.io's Redis fan-out, snapshots and actions through the
link relay), and the PBX sees one AMI session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tests.cluster.conftest import Cluster, Process, assert_each_pop_once, lease_held_elsewhere
from tests.cti_e2e.conftest import until

SPEED = 4.0


@pytest.fixture
async def pair(cluster: Cluster) -> AsyncIterator[tuple[Process, Process]]:
    """The first process holds the link (it started first); the second stands by."""
    holder = await cluster.start("first")
    await cluster.wait_for_holder()
    standby = await cluster.start("second")
    await cluster.sign_in()
    yield holder, standby


async def test_of_two_processes_only_the_holder_logs_in_to_the_pbx(
    cluster: Cluster, pair: tuple[Process, Process]
) -> None:
    holder, standby = pair
    await asyncio.sleep(1.5)  # the standby has tried to take the lease since
    assert cluster.holder() is holder and not standby.holding
    assert (cluster.sim.clients, cluster.sim.login_attempts) == (1, 1)
    assert standby.link.status()["status"] == "stopped"

    status, health = await cluster.request("GET", standby, "/healthz", "sam")
    assert (status, health["ami"]["status"], health["ami"]["role"]) == (200, "standby", "standby")
    status, ready = await cluster.request("GET", standby, "/readyz", "sam")
    assert (status, ready["checks"]["ami"]) == (200, {"ok": True, "error": None})
    status, health = await cluster.request("GET", holder, "/healthz", "sam")
    assert (health["ami"]["status"], health["ami"]["role"]) == ("connected", "holder")


async def test_agents_on_the_standby_get_each_pop_of_a_call_exactly_once(
    cluster: Cluster, pair: tuple[Process, Process]
) -> None:
    _, standby = pair
    browsers = {who: await cluster.connect(who, standby) for who in cluster.tokens}

    await cluster.play("support_ringall_answered", speed=SPEED)

    (call,) = await cluster.calls()
    assert (call.outcome, call.agent_id) == ("answered", cluster.agent_ids["alice"])
    assert browsers["alice"].phases(call.call_id) == ["ringing", "connected", "ended"]
    assert browsers["bob"].phases(call.call_id) == ["ringing", "withdrawn"]
    assert not any(browsers[who].pops() for who in ("carol", "dave", "sam"))
    assert_each_pop_once(list(browsers.values()))


async def test_a_browser_reconnecting_to_the_standby_mid_call_gets_the_current_pop(
    cluster: Cluster, pair: tuple[Process, Process]
) -> None:
    _, standby = pair
    bob = await cluster.connect("bob", standby)
    playing = asyncio.create_task(cluster.sim.play("live_call_during_resync", speed=SPEED))
    try:
        await until(lambda: "connected" in bob.phases(), what="Bob answered")
        await cluster.settle()
        (connected,) = [p for p in bob.pops() if p["phase"] == "connected"]

        await bob.sio.disconnect()
        again = await cluster.connect("bob", standby)
        await until(lambda: bool(again.events("screen_pop_snapshot")), what="a snapshot")
        (snapshot,) = again.events("screen_pop_snapshot")
        assert snapshot["pops"] == [connected]
        assert snapshot["seq"] >= connected["seq"]
        await until(lambda: bool(again.events("agent_state")), what="Bob's phone state")
        assert again.events("agent_state")[-1]["status"] == "on_call"
        assert not playing.done(), "the call ended before the checks: replay too fast"
    finally:
        await playing
    await cluster.settle()
    assert again.phases() == ["ended"]
    assert_each_pop_once([bob, again])


async def test_a_supervisor_on_the_standby_gets_the_board_live_from_the_api_and_the_page(
    cluster: Cluster, pair: tuple[Process, Process]
) -> None:
    _, standby = pair
    sam = await cluster.connect("sam", standby)
    await until(lambda: bool(sam.events("board")), what="the board on connecting")
    board = sam.events("board")[0]
    assert board["link"] == {"status": "connected", "error": None}
    assert "PJSIP/1001" in {agent["interface"] for agent in board["agents"]}

    status, answered = await cluster.request("GET", standby, "/api/v1/board", "sam")
    assert status == 200
    assert answered["link"]["status"] == "connected"
    assert {a["interface"] for a in answered["agents"]} == {a["interface"] for a in board["agents"]}

    status, page = await cluster.request("GET", standby, "/wallboard", "sam")
    assert status == 200
    assert 'data-interface="PJSIP/1001"' in page


async def test_a_pause_asked_of_the_standby_reaches_the_pbx_as_queue_pause(
    cluster: Cluster, pair: tuple[Process, Process]
) -> None:
    _, standby = pair
    alice = await cluster.connect("alice", standby)
    status, answer = await cluster.request(
        "PUT", standby, "/api/v1/agents/me/state", "alice", {"status": "paused", "reason": "Lunch"}
    )
    assert status == 202, answer

    (pause,) = [f for f in cluster.sim.actions_received if f.get("Action") == "QueuePause"]
    assert (pause["Interface"], pause["Paused"], pause["Reason"]) == ("PJSIP/1001", "true", "Lunch")
    await until(
        lambda: any(s["status"] == "paused" for s in alice.events("agent_state")),
        what="Alice hears she is paused",
    )
    status, state = await cluster.request("GET", standby, "/api/v1/agents/me/state", "alice")
    assert (status, state["status"], state["pause_reason"]) == (200, "paused", "Lunch")
    status, page = await cluster.request("GET", standby, "/desk", "alice")
    assert status == 200 and 'data-status="paused"' in page


async def test_click_to_call_asked_of_the_standby_reaches_the_pbx_as_originate(
    cluster: Cluster, pair: tuple[Process, Process]
) -> None:
    _, standby = pair
    cluster.sim.originate_speed = 20.0
    alice = await cluster.connect("alice", standby)
    status, answer = await cluster.request(
        "POST", standby, "/api/v1/calls", "alice", {"number": "040 987654"}
    )
    assert status == 202, answer

    (originate,) = [f for f in cluster.sim.actions_received if f.get("Action") == "Originate"]
    assert (originate["Channel"], originate["Exten"]) == ("PJSIP/1001", "+4940987654")
    assert originate.action_id == answer["action_id"]
    await until(lambda: bool(alice.events("originate_result")), what="the originate result")
    assert alice.events("originate_result")[0]["action_id"] == answer["action_id"]


async def test_with_no_process_holding_the_link_an_action_on_a_standby_fails_at_once_with_503(
    cluster: Cluster,
) -> None:
    async with lease_held_elsewhere(cluster.database):
        alone = await cluster.start("alone")
        await cluster.sign_in()
        await asyncio.sleep(1.2)  # it has tried to take the lease again, in vain
        assert not alone.holding and cluster.sim.clients == 0

        for method, path, who, body in [
            ("PUT", "/api/v1/agents/me/state", "alice", {"status": "paused", "reason": "x"}),
            ("POST", "/api/v1/calls", "alice", {"number": "040 987654"}),
            ("GET", "/api/v1/agents/me/state", "alice", None),
            ("GET", "/api/v1/board", "sam", None),
        ]:
            asked = time.perf_counter()
            status, answer = await cluster.request(method, alone, path, who, body)
            assert time.perf_counter() - asked < 1.0, f"{method} {path} waited"
            assert (status, answer["error"]["code"]) == (503, "pbx_unavailable"), path
            assert "no process holds the PBX link" in answer["error"]["message"]

        # Browsers still connect: they get no PBX snapshot, and nothing hangs.
        sam = await cluster.connect("sam", alone)
        assert sam.sio.connected
        status, page = await cluster.request("GET", alone, "/wallboard", "sam")
        assert status == 200 and "data-interface=" not in page  # no board to show
        assert list(cluster.sim.actions_received) == []
