"""Every recording replayed through the PBX simulator into the running desk, checked
against the README's "what the desk must do", from what the browsers received, the
call log in the database and the wallboard.

Time: the recordings carry no ``Timestamp`` (timestampevents is off) and call events
no ``EventTV``, so the normaliser stamps each event with the desk's clock when it
arrives.  A replay as fast as possible therefore collapses every duration to ~0;
where a duration or an order across time matters the scenario is replayed on its
recorded schedule at ``SPEED`` times real time, and durations are scaled back.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.cti_e2e.conftest import (
    E2E,
    assert_pops_consistent,
    pop_summary,
    until,
)

SPEED = 4.0
# Scaled back to recorded seconds, a duration may be off by this much: it is stamped on
# arrival, so a stall of the test's loop or the replay (a busy CI machine) stretches it;
# at 0.3 s (75 ms of real time) these tests were the timing-sensitive part of a run that
# failed once under load.  1 s still tells 2 s from 4 s and from 0.
TOLERANCE_S = 1.0


def only_call(desk: E2E) -> str:
    call_ids = {str(p["call_id"]) for b in desk.all_browsers() for p in b.pops()}
    assert len(call_ids) == 1, call_ids
    return call_ids.pop()


def queue_of(board: dict[str, Any], name: str) -> dict[str, Any]:
    return next(q for q in board["queues"] if q["queue"] == name)


def agent_on(board: dict[str, Any], interface: str) -> dict[str, Any]:
    return next(a for a in board["agents"] if a["interface"] == interface)


async def test_support_ringall_answered_pops_alice_and_bob_and_logs_alice_answering(
    e2e: E2E,
) -> None:
    await e2e.play("support_ringall_answered", speed=SPEED)

    assert pop_summary(e2e) == {
        "alice": [("ringing", "queue"), ("connected", "answered"), ("ended", "answered")],
        "bob": [("ringing", "queue"), ("withdrawn", "answered_elsewhere")],
        "carol": [],
        "dave": [],
        "sam": [],
    }
    call_id = only_call(e2e)
    erika = await e2e.customer_id("Erika Mustermann")
    for pop in [*e2e.browsers["alice"].pops(), *e2e.browsers["bob"].pops()]:
        assert pop["caller"] == {
            "number_raw": "+4930123456789",
            "number_e164": "+4930123456789",
            "status": "valid",
            "name": "Erika Mustermann",
        }
        assert (pop["customer"]["id"], pop["customer"]["tier"]) == (erika, "platinum")
        assert (pop["queue"], pop["direction"]) == ("support", "inbound")

    (call,) = await e2e.calls()
    assert (call.call_id, call.outcome, call.direction, call.queue) == (
        call_id,
        "answered",
        "inbound",
        "support",
    )
    assert (call.agent_id, call.customer_id) == (e2e.agent_ids["alice"], erika)
    # Durations were stamped on arrival of a replay SPEED times faster than the PBX.
    assert call.wait_seconds is not None and call.talk_seconds is not None
    assert call.wait_seconds * SPEED == pytest.approx(2.0, abs=TOLERANCE_S)
    assert call.talk_seconds * SPEED == pytest.approx(4.0, abs=TOLERANCE_S)
    assert_pops_consistent(e2e)


async def test_support_abandoned_withdraws_both_pops_and_logs_an_abandoned_call(
    e2e: E2E,
) -> None:
    await e2e.play("support_abandoned", speed=SPEED)

    # The caller's hang-up cancels both rings (DialEnd CANCEL) before QueueCallerAbandon.
    assert pop_summary(e2e) == {
        "alice": [("ringing", "queue"), ("withdrawn", "cancelled")],
        "bob": [("ringing", "queue"), ("withdrawn", "cancelled")],
        "carol": [],
        "dave": [],
        "sam": [],
    }
    (call,) = await e2e.calls()
    assert (call.outcome, call.agent_id, call.answered_at, call.caller_e164) == (
        "abandoned",
        None,
        None,
        "+4930555000111",
    )
    assert call.customer_id == await e2e.customer_id("Hans Wartend")
    assert call.wait_seconds is not None
    assert call.wait_seconds * SPEED == pytest.approx(6.0, abs=TOLERANCE_S)
    support = queue_of(await e2e.board(), "support")
    # (A 6 s wait replayed 4x faster is a "short abandon" by the clock: not checked here.)
    assert (support["abandoned"], support["answered"], support["waiting"]) == (1, 0, 0)
    await until(
        lambda: any(
            queue_of(b, "support")["abandoned"] == 1 for b in e2e.browsers["sam"].events("board")
        ),
        what="a board event with the abandoned call",
    )
    assert_pops_consistent(e2e)


async def test_sales_ring_no_answer_withdraws_carols_pop_counts_her_miss_and_dave_answers(
    e2e: E2E,
) -> None:
    await e2e.play("sales_rrmemory_ring_no_answer")

    assert pop_summary(e2e) == {
        "alice": [],
        "bob": [],
        "carol": [("ringing", "queue"), ("withdrawn", "no_answer")],
        "dave": [("ringing", "queue"), ("connected", "answered"), ("ended", "answered")],
        "sam": [],
    }
    max_power = await e2e.customer_id("Max Power")  # stored as "+49 30 99887766"
    for pop in [*e2e.browsers["carol"].pops(), *e2e.browsers["dave"].pops()]:
        assert pop["caller"]["number_raw"] == "03099887766"
        assert pop["caller"]["number_e164"] == "+493099887766"
        assert pop["customer"]["id"] == max_power
    (call,) = await e2e.calls()
    assert (call.outcome, call.queue, call.agent_id, call.customer_id) == (
        "answered",
        "sales",
        e2e.agent_ids["dave"],
        max_power,
    )
    board = await e2e.board()
    carol, dave = agent_on(board, "PJSIP/1003"), agent_on(board, "PJSIP/1004")
    assert (carol["agent_id"], carol["missed_rings"]) == (e2e.agent_ids["carol"], 1)
    assert dave["missed_rings"] == 0
    assert_pops_consistent(e2e)


async def test_a_direct_call_pops_bob_without_any_queue(e2e: E2E) -> None:
    await e2e.play("direct_call_to_agent")

    assert pop_summary(e2e) == {
        "alice": [],
        "bob": [("ringing", "inbound"), ("connected", "answered"), ("ended", "answered")],
        "carol": [],
        "dave": [],
        "sam": [],
    }
    assert {p["queue"] for p in e2e.browsers["bob"].pops()} == {None}
    pat = await e2e.customer_id("Pat Jones")
    assert {p["customer"]["id"] for p in e2e.browsers["bob"].pops()} == {pat}
    (call,) = await e2e.calls()
    assert (call.queue, call.direction, call.outcome, call.agent_id, call.customer_id) == (
        None,
        "inbound",
        "answered",
        e2e.agent_ids["bob"],
        pat,
    )
    assert_pops_consistent(e2e)


async def test_a_paused_alice_shows_paused_for_lunch_then_ready_and_only_bob_is_popped(
    e2e: E2E,
) -> None:
    await e2e.play("agent_paused", speed=SPEED)
    alice = e2e.browsers["alice"]
    await until(
        lambda: (
            bool(alice.events("agent_state"))
            and alice.events("agent_state")[-1]["status"] == "ready"
        ),
        what="Alice ready again",
    )

    states = [(s["status"], s["pause_reason"]) for s in alice.events("agent_state")]
    paused_at = states.index(("paused", "Lunch"))
    assert ("ready", "") in states[paused_at:]
    assert states[-1] == ("ready", "")
    boards = [
        (a["status"], a["pause_reason"])
        for b in e2e.browsers["sam"].events("board")
        for a in b["agents"]
        if a["interface"] == "PJSIP/1001"
    ]
    assert ("ready", "") in boards[boards.index(("paused", "Lunch")) :]
    assert pop_summary(e2e) == {
        "alice": [],
        "bob": [("ringing", "queue"), ("connected", "answered"), ("ended", "answered")],
        "carol": [],
        "dave": [],
        "sam": [],
    }
    assert_pops_consistent(e2e)


async def test_a_click_to_call_is_logged_outbound_for_alice_and_pops_her_the_callee(
    e2e: E2E,
) -> None:
    # Replayed as recorded: its OriginateResponse answers the recording client's own
    # Originate (ActionID rec-2), so the simulator does not broadcast it.  The desk's
    # own click-to-call, with originate_result, is in test_click_to_call_and_pause.
    await e2e.play("click_to_call")

    assert pop_summary(e2e) == {
        "alice": [("ringing", "outbound"), ("connected", "answered"), ("ended", "answered")],
        "bob": [],
        "carol": [],
        "dave": [],
        "sam": [],
    }
    nordlicht = await e2e.customer_id("Nordlicht Logistik GmbH")  # stored as "040 / 987654"
    for pop in e2e.browsers["alice"].pops():
        assert (pop["caller"]["number_e164"], pop["direction"]) == ("+4940987654", "outbound")
        assert pop["customer"]["id"] == nordlicht
    (call,) = await e2e.calls()
    assert (call.direction, call.outcome, call.agent_id, call.customer_id) == (
        "outbound",
        "answered",
        e2e.agent_ids["alice"],
        nordlicht,
    )
    assert (call.caller_raw, call.caller_e164) == ("+4940987654", "+4940987654")
    assert_pops_consistent(e2e)


def runs(values: list[int]) -> list[int]:
    return [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]


def is_subsequence(part: list[int], whole: list[int]) -> bool:
    remaining = iter(whole)
    return all(any(v == w for w in remaining) for v in part)


async def test_a_queue_burst_is_followed_on_the_board_and_every_call_is_logged_once(
    e2e: E2E,
) -> None:
    boards: list[dict[str, Any]] = []

    async def watch() -> None:
        while True:
            boards.append(await e2e.board())
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    try:
        await e2e.play("queue_burst", speed=3.0)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    boards.append(await e2e.board())

    # Asterisk's own queue depth after each join and leave of the recording.
    recorded_depths = [0, 1, 2, 3, 4, 3, 4, 5, 4, 3, 2, 1, 0]
    depths = runs([queue_of(b, "support")["waiting"] for b in boards])
    assert max(depths) == 5 and depths[-1] == 0
    assert is_subsequence(depths, recorded_depths), depths
    fullest = next(queue_of(b, "support") for b in boards if queue_of(b, "support")["waiting"] == 5)
    assert [(c["position"], c["name"]) for c in fullest["callers"]] == [
        (n - 1, f"Burst Caller {n}") for n in range(2, 7)
    ]
    assert fullest["longest_wait_seconds"] > 0
    seen = {(a["name"], a["status"]) for b in boards for a in b["agents"]}
    assert {("Alice", "on_call"), ("Bob", "ringing")} <= seen
    last = queue_of(boards[-1], "support")
    assert (last["answered"], last["abandoned"], last["waiting"]) == (6, 0, 0)

    calls = await e2e.calls()
    assert len(calls) == len({c.call_id for c in calls}) == 6
    assert {(c.outcome, c.queue, c.agent_id) for c in calls} == {
        ("answered", "support", e2e.agent_ids["alice"])
    }
    alice, bob = e2e.browsers["alice"], e2e.browsers["bob"]
    for call in calls:
        assert alice.phases(call.call_id) == ["ringing", "connected", "ended"]
        assert bob.phases(call.call_id) == ["ringing", "withdrawn"]
    assert not any(e2e.browsers[who].pops() for who in ("carol", "dave", "sam"))
    assert_pops_consistent(e2e)


async def test_a_browser_connecting_mid_call_gets_its_pops_as_a_snapshot_and_no_duplicates(
    e2e: E2E,
) -> None:
    bob, alice = e2e.browsers["bob"], e2e.browsers["alice"]
    playing = asyncio.create_task(e2e.sim.play("live_call_during_resync", speed=SPEED))
    try:
        # Bob answers 1 s into the call and talks for 9 s (2.25 s at SPEED).
        await until(lambda: "withdrawn" in alice.phases(), what="Bob answered")
        await e2e.settle()
        (connected,) = [p for p in bob.pops() if p["phase"] == "connected"]

        late = await e2e.connect("bob")
        late_alice = await e2e.connect("alice")
        await until(lambda: bool(late.events("screen_pop_snapshot")))
        await until(lambda: bool(late_alice.events("screen_pop_snapshot")))
        (snapshot,) = late.events("screen_pop_snapshot")
        assert snapshot["pops"] == [connected]
        assert snapshot["seq"] >= connected["seq"]
        assert late_alice.events("screen_pop_snapshot") == [{"seq": snapshot["seq"], "pops": []}]

        # A socket.io reconnect is a new connection: the snapshot comes again.
        await late.sio.disconnect()
        again = await e2e.connect("bob")
        await until(lambda: bool(again.events("screen_pop_snapshot")))
        assert again.events("screen_pop_snapshot") == [snapshot]
        assert not playing.done(), "the call ended before the checks: replay too fast"
    finally:
        await playing
    await e2e.settle()

    assert again.phases() == ["ended"]
    assert late_alice.phases() == []
    assert bob.phases() == ["ringing", "connected", "ended"]
    assert alice.phases() == ["ringing", "withdrawn"]
    (call,) = await e2e.calls()
    assert (call.outcome, call.agent_id) == ("answered", e2e.agent_ids["bob"])
    assert_pops_consistent(e2e)


async def test_after_the_desk_logs_in_again_mid_call_it_rebuilds_the_call_from_the_lists(
    e2e: E2E,
) -> None:
    bob, alice = e2e.browsers["bob"], e2e.browsers["alice"]
    link = e2e.link
    playing = asyncio.create_task(e2e.sim.play("live_call_during_resync", speed=SPEED))
    try:
        await until(lambda: bob.phases() == ["ringing"] and alice.phases() == ["ringing"])
        # Off the PBX while Bob answers (0.25 s later at SPEED) and Alice's leg hangs up.
        await link.client.stop()
        resyncs = link.resyncs
        await asyncio.sleep(0.6)
        link.client.start()
        await until(lambda: link.resyncs > resyncs, what="resynced after the new login")
        await e2e.settle()

        assert bob.phases() == ["ringing", "connected"]
        assert alice.phases() == ["ringing", "withdrawn"]
        assert alice.pops()[-1]["reason"] == "hung_up"
        board = await e2e.board()
        assert board["link"]["status"] == "connected"
        assert agent_on(board, "PJSIP/1002")["status"] == "on_call"
        assert agent_on(board, "PJSIP/1001")["status"] == "ready"
        assert queue_of(board, "support")["waiting"] == 0
        (live,) = link.tracker.live_calls()
        assert live.connected == ("PJSIP/1002",)
        assert not playing.done(), "the call ended before the checks: replay too fast"
    finally:
        await playing
    await e2e.settle()

    assert bob.phases() == ["ringing", "connected", "ended"]
    assert link.tracker.live_calls() == ()
    (call,) = await e2e.calls()
    assert (call.outcome, call.agent_id, call.caller_e164) == (
        "answered",
        e2e.agent_ids["bob"],
        "+4930123450001",
    )
    assert_pops_consistent(e2e)
