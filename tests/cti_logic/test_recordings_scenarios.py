"""Every recording, fed frame by frame through normalise -> tracker -> pops/agents/queues,
checked against the README's "what the desk must do"."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti.agent_state import AgentStatus
from cti.events import (
    CallAnswered,
    CallsListedLive,
    CallStarted,
    Direction,
    OriginateCompleted,
    Outcome,
    QueueCallerJoined,
    QueueCallerLeft,
)
from cti.normalise import normalise
from cti.pops import PopPhase
from cti.tracker import resync
from desk.phones import read_number
from tests.cti_logic.conftest import Desk, at, recording, snapshot

RINGING, CONNECTED, WITHDRAWN, ENDED = (
    PopPhase.RINGING,
    PopPhase.CONNECTED,
    PopPhase.WITHDRAWN,
    PopPhase.ENDED,
)
ALICE, BOB, CAROL, DAVE = "PJSIP/1001", "PJSIP/1002", "PJSIP/1003", "PJSIP/1004"
RECORDINGS = [
    "support_ringall_answered",
    "support_abandoned",
    "sales_rrmemory_ring_no_answer",
    "direct_call_to_agent",
    "agent_paused",
    "click_to_call",
    "queue_burst",
    "live_call_during_resync",
]
# The second client's login in live_call_during_resync: when its snapshot was taken.
SNAPSHOT_T = 3.5169


def pops(desk: Desk) -> list[tuple[str, PopPhase]]:
    return [(d.agent_interface, d.phase) for d in desk.decisions]


def status(desk: Desk, agent: str, t: float) -> AgentStatus:
    view = desk.agents.view(agent, at(t))
    assert view is not None
    return view.status


def test_support_ringall_answered(desk: Desk) -> None:
    frames = recording("support_ringall_answered")
    desk.feed(frames, until=2.0)
    assert (status(desk, ALICE, 2), status(desk, BOB, 2)) == (
        AgentStatus.RINGING,
        AgentStatus.RINGING,
    )
    assert len(desk.queues.view("support", at(2)).waiting) == 1
    desk.feed(frames, after=2.0)

    assert pops(desk) == [
        (BOB, RINGING),
        (ALICE, RINGING),
        (ALICE, CONNECTED),
        (BOB, WITHDRAWN),
        (ALICE, ENDED),
    ]
    assert {(d.call_id, d.caller_number_raw, d.caller_name, d.queue) for d in desk.decisions} == {
        ("1795464262.10", "+4930123456789", "Erika Mustermann", "support")
    }
    (call,) = desk.ended()
    assert (call.outcome, call.answered_by, call.direction, call.queue) == (
        Outcome.ANSWERED,
        ALICE,
        Direction.INBOUND,
        "support",
    )
    assert call.wait_s == pytest.approx(2.0, abs=0.05)
    assert call.talk_s == pytest.approx(4.0, abs=0.05)
    # AgentComplete at 7.55 + support's 2 s wrap-up.
    assert (status(desk, ALICE, 8.5), status(desk, ALICE, 10), status(desk, BOB, 8.5)) == (
        AgentStatus.WRAP_UP,
        AgentStatus.READY,
        AgentStatus.READY,
    )
    view = desk.queues.view("support", at(10))
    assert (view.answered, view.answered_in_sl, view.abandoned, view.waiting) == (1, 1, 0, ())


def test_support_abandoned(desk: Desk) -> None:
    desk.feed(recording("support_abandoned"))
    assert pops(desk) == [(BOB, RINGING), (ALICE, RINGING), (BOB, WITHDRAWN), (ALICE, WITHDRAWN)]
    (call,) = desk.ended()
    assert (call.outcome, call.answered_by, call.agents, call.caller_number_raw) == (
        Outcome.ABANDONED,
        None,
        (),
        "+4930555000111",
    )
    assert call.wait_s == pytest.approx(6.0, abs=0.05)
    assert call.talk_s == 0.0
    view = desk.queues.view("support", at(8))
    assert (view.abandoned, view.short_abandons, view.answered, view.waiting) == (1, 0, 0, ())
    assert (status(desk, ALICE, 8), status(desk, BOB, 8)) == (AgentStatus.READY, AgentStatus.READY)


def test_sales_rrmemory_ring_no_answer(desk: Desk) -> None:
    desk.feed(recording("sales_rrmemory_ring_no_answer"))
    assert pops(desk) == [
        (CAROL, RINGING),
        (CAROL, WITHDRAWN),
        (DAVE, RINGING),
        (DAVE, CONNECTED),
        (DAVE, ENDED),
    ]
    assert [d.reason for d in desk.decisions if d.agent_interface == CAROL] == [
        "queue",
        "no_answer",
    ]
    assert {d.caller_number_raw for d in desk.decisions} == {"03099887766"}
    # The raw national number is what the customer match needs: it reads as the stored E.164.
    assert read_number("03099887766", "DE").e164 == "+493099887766"
    carol, dave = desk.agents.view(CAROL, at(12)), desk.agents.view(DAVE, at(12))
    assert carol is not None and dave is not None
    assert (carol.missed_rings, dave.missed_rings) == (1, 0)
    (call,) = desk.ended()
    assert (call.outcome, call.answered_by, call.queue) == (Outcome.ANSWERED, DAVE, "sales")
    assert call.wait_s == pytest.approx(6.0, abs=0.05)
    assert call.talk_s == pytest.approx(3.0, abs=0.05)


def test_direct_call_to_agent(desk: Desk) -> None:
    desk.feed(recording("direct_call_to_agent"))
    assert not any(isinstance(e, QueueCallerJoined) for e in desk.events)
    assert pops(desk) == [(BOB, RINGING), (BOB, CONNECTED), (BOB, ENDED)]
    assert {(d.caller_number_raw, d.queue) for d in desk.decisions} == {("+14155550100", None)}
    (call,) = desk.ended()
    assert (call.outcome, call.answered_by, call.queue, call.direction) == (
        Outcome.ANSWERED,
        BOB,
        None,
        Direction.INBOUND,
    )
    assert call.talk_s == pytest.approx(3.0, abs=0.05)


def test_agent_paused(desk: Desk) -> None:
    frames = recording("agent_paused")
    desk.feed(frames, until=1.0)
    alice = desk.agents.view(ALICE, at(1))
    assert alice is not None
    assert (alice.status, alice.pause_reason, alice.since) == (
        AgentStatus.PAUSED,
        "Lunch",
        at(0.5096),
    )
    desk.feed(frames, after=1.0, until=3.0)
    assert (status(desk, ALICE, 3), status(desk, BOB, 3)) == (
        AgentStatus.PAUSED,
        AgentStatus.ON_CALL,
    )
    desk.feed(frames, after=3.0)
    alice = desk.agents.view(ALICE, at(9))
    assert alice is not None
    assert (alice.status, alice.pause_reason, alice.since) == (AgentStatus.READY, "", at(7.5148))
    assert pops(desk) == [(BOB, RINGING), (BOB, CONNECTED), (BOB, ENDED)]


def test_click_to_call(desk: Desk) -> None:
    desk.feed(recording("click_to_call"))
    (started,) = [f for f in desk.facts if isinstance(f, CallStarted)]
    assert (started.direction, started.agent_interface, started.caller_number_raw) == (
        Direction.OUTBOUND,
        ALICE,
        "+4940987654",
    )
    (originated,) = [f for f in desk.facts if isinstance(f, OriginateCompleted)]
    assert (
        originated.action_id,
        originated.success,
        originated.call_id,
        originated.agent_interface,
    ) == ("rec-2", True, started.call_id, ALICE)
    assert pops(desk) == [(ALICE, RINGING), (ALICE, CONNECTED), (ALICE, ENDED)]
    assert {d.caller_number_raw for d in desk.decisions} == {"+4940987654"}
    (call,) = desk.ended()
    assert (call.direction, call.outcome, call.answered_by) == (
        Direction.OUTBOUND,
        Outcome.ANSWERED,
        ALICE,
    )
    assert call.talk_s == pytest.approx(4.0, abs=0.05)


def test_queue_burst(desk: Desk) -> None:
    for t, raw in recording("queue_burst"):
        event = normalise(raw, received_at=at(t))
        if event is None:
            continue
        desk.push(event)
        if isinstance(event, QueueCallerJoined | QueueCallerLeft):
            # The wallboard's depth is Asterisk's own count after every join and leave.
            assert len(desk.queues.view("support", at(t)).waiting) == event.count
        if t == 2.5214:  # the sixth caller joins; the first is already talking
            view = desk.queues.view("support", at(2.6))
            assert [c.caller_name for c in view.waiting] == [
                f"Burst Caller {n}" for n in range(2, 7)
            ]
            assert view.longest_wait_s == pytest.approx(2.6 - 1.1864, abs=0.001)
            assert (status(desk, ALICE, 2.6), status(desk, BOB, 2.6)) == (
                AgentStatus.ON_CALL,
                AgentStatus.RINGING,
            )

    calls = desk.ended()
    assert len(calls) == len({c.call_id for c in calls}) == 6
    assert {(c.outcome, c.answered_by) for c in calls} == {(Outcome.ANSWERED, ALICE)}
    assert [round(c.wait_s) for c in calls] == [1, 2, 3, 4, 5, 6]
    assert (
        desk.phases(ALICE)
        == [RINGING, CONNECTED] * 4
        + [ENDED, RINGING, CONNECTED, ENDED, RINGING, CONNECTED]
        + [ENDED] * 4
    )
    assert desk.phases(BOB) == [RINGING, WITHDRAWN] * 6
    view = desk.queues.view("support", at(13))
    assert (view.answered, view.answered_in_sl, view.abandoned, view.waiting) == (6, 6, 0, ())
    assert (status(desk, ALICE, 13), status(desk, ALICE, 15), status(desk, BOB, 13)) == (
        AgentStatus.WRAP_UP,
        AgentStatus.READY,
        AgentStatus.READY,
    )


def test_live_call_during_resync(desk: Desk) -> None:
    desk.feed(recording("live_call_during_resync"))
    assert pops(desk) == [
        (BOB, RINGING),
        (ALICE, RINGING),
        (BOB, CONNECTED),
        (ALICE, WITHDRAWN),
        (BOB, ENDED),
    ]
    (call,) = desk.ended()
    assert (call.outcome, call.answered_by, call.caller_number_raw) == (
        Outcome.ANSWERED,
        BOB,
        "+4930123450001",
    )
    assert call.talk_s == pytest.approx(9.0, abs=0.05)


def run_resync(desk: Desk, t: float) -> tuple[list[object], list[object]]:
    facts, decisions = resync(
        snapshot(taken_at=at(t)),
        tracker=desk.tracker,
        agents=desk.agents,
        queues=desk.queues,
        pops=desk.pops,
        at=at(t),
    )
    desk.facts.extend(facts)
    desk.decisions.extend(decisions)
    # The last fact names the calls the PBX listed; the corrections come before it.
    *corrections, listed = facts
    assert isinstance(listed, CallsListedLive)
    assert listed.call_ids == {call.call_id for call in desk.tracker.live_calls()}
    return corrections, list(decisions)


def test_a_resync_mid_call_changes_nothing_and_the_call_ends_once(desk: Desk) -> None:
    frames = recording("live_call_during_resync")
    desk.feed(frames, until=SNAPSHOT_T)
    assert run_resync(desk, SNAPSHOT_T) == ([], [])
    assert run_resync(desk, SNAPSHOT_T) == ([], [])
    desk.feed(frames, after=SNAPSHOT_T)
    assert pops(desk) == [
        (BOB, RINGING),
        (ALICE, RINGING),
        (BOB, CONNECTED),
        (ALICE, WITHDRAWN),
        (BOB, ENDED),
    ]
    assert len(desk.ended()) == 1


def test_resync_snapshot_after_reconnect_rebuilds_calls_agents_and_queues(desk: Desk) -> None:
    facts, _ = run_resync(desk, SNAPSHOT_T)
    started, answered = facts
    assert isinstance(started, CallStarted) and isinstance(answered, CallAnswered)
    assert (
        started.call_id,
        started.direction,
        started.caller_number_raw,
        started.caller_name,
        started.adopted,
    ) == ("1795464400.52", Direction.INBOUND, "+4930123450001", "Early Caller", True)
    assert (answered.agent_interface, answered.queue) == (BOB, "support")
    assert pops(desk) == [(BOB, CONNECTED)]
    assert desk.decisions[0].caller_number_raw == "+4930123450001"
    statuses = {a: status(desk, a, 4) for a in (ALICE, BOB, CAROL, DAVE)}
    assert statuses == {
        ALICE: AgentStatus.READY,
        BOB: AgentStatus.ON_CALL,
        CAROL: AgentStatus.READY,
        DAVE: AgentStatus.READY,
    }
    assert desk.queues.view("support", at(4)).waiting == ()
    # The rest of the call, as the reconnected session sees it: no lost call, no second pop.
    desk.feed(recording("live_call_during_resync"), after=SNAPSHOT_T)
    (call,) = desk.ended()
    assert (call.call_id, call.outcome, call.answered_by, call.adopted) == (
        "1795464400.52",
        Outcome.ANSWERED,
        BOB,
        True,
    )
    assert pops(desk) == [(BOB, CONNECTED), (BOB, ENDED)]


def test_a_resync_ends_the_calls_that_ended_while_disconnected(desk: Desk) -> None:
    desk.feed(recording("support_ringall_answered"), until=5.0)
    run_resync(desk, 5.0)
    (ghost,) = desk.ended()
    assert (ghost.call_id, ghost.outcome, ghost.answered_by, ghost.at) == (
        "1795464262.10",
        Outcome.ANSWERED,
        ALICE,
        at(5.0),
    )
    assert pops(desk) == [
        (BOB, RINGING),
        (ALICE, RINGING),
        (ALICE, CONNECTED),
        (BOB, WITHDRAWN),
        (ALICE, ENDED),
        (BOB, CONNECTED),
    ]
    assert desk.tracker.live_call("1795464262.10") is None
    assert desk.tracker.live_call("1795464400.52") is not None


@pytest.mark.parametrize("name", RECORDINGS)
def test_replaying_a_recording_gives_no_extra_pops_or_facts(desk: Desk, name: str) -> None:
    desk.feed(recording(name))
    facts, decisions = len(desk.facts), len(desk.decisions)
    queues = [desk.queues.view(q, at(100)) for q in desk.queues.queues()]
    missed = {a.interface: a.missed_rings for a in desk.agents.agents()}
    desk.feed(recording(name))
    assert (len(desk.facts), len(desk.decisions)) == (facts, decisions)
    assert [desk.queues.view(q, at(100)) for q in desk.queues.queues()] == queues
    assert {a.interface: a.missed_rings for a in desk.agents.agents()} == missed


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(RECORDINGS),
    rnd=st.randoms(use_true_random=False),
    shuffle_window=st.sampled_from([1, 3, 20, 10_000]),
    drop=st.floats(min_value=0.0, max_value=0.5),
    duplicate=st.floats(min_value=0.0, max_value=0.5),
    resync_share=st.none() | st.floats(min_value=0.0, max_value=1.0),
)
def test_reordered_duplicated_or_dropped_frames_never_raise(
    name: str,
    rnd: random.Random,
    shuffle_window: int,
    drop: float,
    duplicate: float,
    resync_share: float | None,
) -> None:
    frames = list(recording(name))
    # Shuffle within windows: small windows jitter the order, the largest one scrambles it.
    for start in range(0, len(frames), shuffle_window):
        window = frames[start : start + shuffle_window]
        rnd.shuffle(window)
        frames[start : start + shuffle_window] = window
    mangled = [
        f
        for f in frames
        if rnd.random() >= drop
        for _ in range(2 if rnd.random() < duplicate else 1)
    ]
    resync_index = None if resync_share is None else int(resync_share * len(mangled))
    desk = Desk()
    for index, (t, raw) in enumerate(mangled):
        event = normalise(raw, received_at=at(t))
        if event is not None:
            desk.push(event)
        if index == resync_index:
            run_resync(desk, t)
    keys = [d.key for d in desk.decisions]
    assert len(keys) == len(set(keys))
    ended = [c.call_id for c in desk.ended()]
    assert len(ended) == len(set(ended))
    for agent in desk.agents.agents():
        desk.agents.view(agent.interface, at(30))
    for queue in desk.queues.queues():
        desk.queues.view(queue, at(30))
