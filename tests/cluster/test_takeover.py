"""The process holding the PBX link goes; another takes over within 5 s, logs in,
resyncs, and nothing is popped or logged twice."""

from __future__ import annotations

import asyncio
import time

from tests.cluster.conftest import (
    TAKEOVER_LIMIT_S,
    Cluster,
    assert_each_pop_once,
    terminate_lock_session,
)
from tests.cti_e2e.conftest import until

SPEED = 4.0


async def test_when_the_holder_stops_the_standby_takes_over_within_5_s_and_pops_each_call_once(
    cluster: Cluster,
) -> None:
    first = await cluster.start("first")
    await cluster.wait_for_holder()
    second = await cluster.start("second")
    await cluster.sign_in()
    browsers = {who: await cluster.connect(who, second) for who in cluster.tokens}
    await cluster.play("support_ringall_answered", speed=SPEED)

    stopped = time.perf_counter()
    await cluster.stop(first)
    assert await cluster.wait_for_holder() is second
    took = time.perf_counter() - stopped
    print(f"take-over after the holder stopped: {took:.2f} s")
    assert took < TAKEOVER_LIMIT_S
    assert (cluster.sim.clients, cluster.sim.login_attempts) == (1, 2)

    await cluster.play("sales_rrmemory_ring_no_answer", speed=SPEED)
    before, after = await cluster.calls()
    assert before.call_id != after.call_id
    assert (before.outcome, before.agent_id) == ("answered", cluster.agent_ids["alice"])
    assert (after.outcome, after.agent_id) == ("answered", cluster.agent_ids["dave"])
    assert browsers["alice"].phases() == ["ringing", "connected", "ended"]
    assert browsers["bob"].phases() == ["ringing", "withdrawn"]
    assert browsers["carol"].phases() == ["ringing", "withdrawn"]
    assert browsers["dave"].phases() == ["ringing", "connected", "ended"]
    assert_each_pop_once(list(browsers.values()))


async def test_when_the_holders_lock_connection_is_killed_the_standby_takes_over_within_5_s(
    cluster: Cluster,
) -> None:
    first = await cluster.start("first")
    await cluster.wait_for_holder()
    second = await cluster.start("second")
    await cluster.sign_in()
    # Alice stays on the process that loses the link, Bob on the one that takes it.
    alice = await cluster.connect("alice", first)
    bob = await cluster.connect("bob", second)

    killed = time.perf_counter()
    await terminate_lock_session(cluster.database)
    await until(lambda: second.linked(), timeout=TAKEOVER_LIMIT_S, what="the standby took over")
    took = time.perf_counter() - killed
    print(f"take-over after the lock session was killed: {took:.2f} s")
    assert not first.holding
    assert first.link.status()["status"] == "stopped"
    await until(lambda: cluster.sim.clients == 1, what="the old holder logged off")

    await asyncio.sleep(4.0)  # past the old holder's step back: it stays a standby
    assert cluster.holder() is second and cluster.sim.clients == 1

    await cluster.play("support_ringall_answered", speed=SPEED)
    (call,) = await cluster.calls()
    assert alice.phases(call.call_id) == ["ringing", "connected", "ended"]
    assert bob.phases(call.call_id) == ["ringing", "withdrawn"]
    assert_each_pop_once([alice, bob])


async def test_a_call_live_across_the_take_over_is_logged_once_and_popped_once(
    cluster: Cluster,
) -> None:
    first = await cluster.start("first")
    await cluster.wait_for_holder()
    second = await cluster.start("second")
    await cluster.sign_in()
    alice = await cluster.connect("alice", second)
    bob = await cluster.connect("bob", second)
    # On the recorded schedule: Bob talks for 9 s, longer than any take-over may take.
    playing = asyncio.create_task(cluster.sim.play("live_call_during_resync", speed=1.0))
    try:
        await until(lambda: "connected" in bob.phases(), what="Bob answered")
        await cluster.settle()
        await cluster.stop(first)
        await cluster.wait_for_holder()
        assert not playing.done(), "the call ended before the take-over: replay too fast"
        # The new holder found the call in its resync and popped nothing again.
        assert bob.phases() == ["ringing", "connected"]
        again = await cluster.connect("bob", second)
        await until(lambda: bool(again.events("screen_pop_snapshot")), what="a snapshot")
    finally:
        await playing
    await cluster.settle()

    assert bob.phases() == ["ringing", "connected", "ended"]
    assert alice.phases() == ["ringing", "withdrawn"]
    assert_each_pop_once([alice, bob, again])
    (call,) = await cluster.calls()
    assert (call.outcome, call.agent_id) == ("answered", cluster.agent_ids["bob"])
