from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import pytest

from cti import events as ev
from cti.events import (
    CallAnswered,
    CallEnded,
    CallFact,
    CallHoldChanged,
    CallRinging,
    CallRingStopped,
    CallsListedLive,
    CallStarted,
    CallTransferred,
    Direction,
    OriginateCompleted,
    Outcome,
    RingStop,
)
from cti.tracker import CallTracker, RecentKeys
from tests.cti_logic.conftest import TRUNKS, at, channel

F = TypeVar("F")

CUSTOMER = channel(
    "PJSIP/trunk-00000001",
    "100.1",
    caller_num="+4930123",
    caller_name="Kunde",
    exten="100",
)
ALICE = channel("PJSIP/1001-00000002", "100.2", "100.1", caller_num="1001")
BOB = channel("PJSIP/1002-00000003", "100.3", "100.1", caller_num="1002")


def created(ch: ev.Channel, t: float = 0.0) -> ev.ChannelCreated:
    return ev.ChannelCreated(at=at(t), channel=ch)


def hangup(ch: ev.Channel, t: float) -> ev.ChannelHungUp:
    return ev.ChannelHungUp(at=at(t), channel=ch, cause=16)


def joined(t: float = 0.0, queue: str = "support") -> ev.QueueCallerJoined:
    return ev.QueueCallerJoined(at=at(t), channel=CUSTOMER, queue=queue, position=1, count=1)


def rang(agent: ev.Channel, t: float = 0.0, caller: ev.Channel = CUSTOMER) -> ev.AgentRang:
    return ev.AgentRang(
        at=at(t), caller=caller, dest=agent, queue="support", interface=agent.interface
    )


def dialled(
    caller: ev.Channel | None, dest: ev.Channel, t: float = 0.0, to: str = ""
) -> ev.DialStarted:
    return ev.DialStarted(at=at(t), caller=caller, dest=dest, dial_string=to)


def dial_ended(caller: ev.Channel | None, dest: ev.Channel, status: str, t: float) -> ev.DialEnded:
    return ev.DialEnded(at=at(t), caller=caller, dest=dest, status=status)


def connected(agent: ev.Channel, t: float) -> ev.AgentConnected:
    return ev.AgentConnected(
        at=at(t), caller=CUSTOMER, dest=agent, queue="support", interface=agent.interface
    )


def run(events: Sequence[ev.CallEvent], tracker: CallTracker | None = None) -> list[CallFact]:
    tracker = tracker or CallTracker(trunks=TRUNKS)
    return [fact for event in events for fact in tracker.apply(event)]


def of(kind: type[F], facts: Sequence[CallFact]) -> list[F]:
    return [f for f in facts if isinstance(f, kind)]


RINGALL: list[ev.CallEvent] = [
    created(CUSTOMER),
    joined(0.01),
    created(ALICE, 0.02),
    created(BOB, 0.02),
    rang(ALICE, 0.03),
    dialled(CUSTOMER, ALICE, 0.03),
    rang(BOB, 0.03),
    dialled(CUSTOMER, BOB, 0.03),
]
ANSWERED: list[ev.CallEvent] = [
    *RINGALL,
    dial_ended(CUSTOMER, ALICE, "ANSWER", 2.0),
    dial_ended(CUSTOMER, BOB, "CANCEL", 2.0),
    connected(ALICE, 2.0),
    hangup(BOB, 2.01),
    hangup(CUSTOMER, 6.0),
    hangup(ALICE, 6.0),
]


def test_a_trunk_channel_starts_an_inbound_call_with_the_callers_number() -> None:
    assert run([created(CUSTOMER)]) == [
        CallStarted(
            call_id="100.1",
            at=at(0),
            direction=Direction.INBOUND,
            caller_number_raw="+4930123",
            caller_name="Kunde",
            dialled="100",
            agent_interface="",
        )
    ]


def test_an_agent_called_rings_that_agent_once_even_when_dial_begin_follows() -> None:
    ringing = of(CallRinging, run(RINGALL))
    assert [f.agent_interface for f in ringing] == ["PJSIP/1001", "PJSIP/1002"]
    assert {(f.queue, f.caller_number_raw, f.caller_name) for f in ringing} == {
        ("support", "+4930123", "Kunde")
    }


def test_the_first_answer_connects_that_agent_and_stops_the_other_rings() -> None:
    facts = run([*RINGALL, dial_ended(CUSTOMER, ALICE, "ANSWER", 2.0)])
    answered, stopped = facts[-2], facts[-1]
    assert isinstance(answered, CallAnswered)
    assert (answered.agent_interface, answered.first, answered.wait_s) == ("PJSIP/1001", True, 2.0)
    assert stopped == CallRingStopped(
        call_id="100.1",
        at=at(2.0),
        agent_interface="PJSIP/1002",
        reason=RingStop.ANSWERED_ELSEWHERE,
    )


def test_an_agent_ring_no_answer_stops_only_that_agents_ring() -> None:
    no_answer = ev.AgentRingNoAnswer(
        at=at(4), caller=CUSTOMER, dest=BOB, queue="support", interface="PJSIP/1002"
    )
    facts = run([*RINGALL, no_answer, dial_ended(CUSTOMER, BOB, "NOANSWER", 4)])
    assert of(CallRingStopped, facts) == [
        CallRingStopped(
            call_id="100.1", at=at(4), agent_interface="PJSIP/1002", reason=RingStop.NO_ANSWER
        )
    ]


def test_an_agent_dump_stops_the_ring_as_rejected() -> None:
    dump = ev.AgentDumped(
        at=at(1), caller=CUSTOMER, dest=BOB, queue="support", interface="PJSIP/1002"
    )
    (stopped,) = of(CallRingStopped, run([*RINGALL, dump]))
    assert isinstance(stopped, CallRingStopped) and stopped.reason is RingStop.REJECTED


@pytest.mark.parametrize(
    ("status", "reason"), [("BUSY", RingStop.BUSY), ("CHANUNAVAIL", RingStop.CANCELLED)]
)
def test_a_dial_that_fails_stops_that_ring_with_its_reason(status: str, reason: RingStop) -> None:
    (stopped,) = of(CallRingStopped, run([*RINGALL, dial_ended(CUSTOMER, BOB, status, 1)]))
    assert isinstance(stopped, CallRingStopped) and stopped.reason is reason


def test_a_queue_abandon_ends_the_call_as_abandoned_after_its_wait() -> None:
    abandon = ev.QueueCallerAbandoned(at=at(6), channel=CUSTOMER, queue="support", hold_s=6)
    facts = run(
        [
            *RINGALL,
            dial_ended(CUSTOMER, ALICE, "CANCEL", 6),
            abandon,
            hangup(ALICE, 6.01),
            hangup(CUSTOMER, 6.01),
            hangup(BOB, 6.01),
        ]
    )
    (ended,) = of(CallEnded, facts)
    assert isinstance(ended, CallEnded)
    assert (ended.outcome, ended.wait_s, ended.talk_s, ended.answered_by) == (
        Outcome.ABANDONED,
        6.0,
        0.0,
        None,
    )
    assert [f.agent_interface for f in of(CallRingStopped, facts)] == ["PJSIP/1001", "PJSIP/1002"]


def test_a_queue_call_that_times_out_unanswered_is_missed() -> None:
    left = ev.QueueCallerLeft(at=at(120), channel=CUSTOMER, queue="support")
    (ended,) = of(CallEnded, run([created(CUSTOMER), joined(), left, hangup(CUSTOMER, 121)]))
    assert isinstance(ended, CallEnded)
    assert (ended.outcome, ended.queue, ended.wait_s) == (Outcome.MISSED, "support", 121.0)


def test_wait_runs_from_call_start_to_answer_and_talk_from_answer_to_end() -> None:
    (ended,) = of(CallEnded, run(ANSWERED))
    assert ended == CallEnded(
        call_id="100.1",
        at=at(6),
        started_at=at(0),
        answered_at=at(2),
        outcome=Outcome.ANSWERED,
        direction=Direction.INBOUND,
        queue="support",
        answered_by="PJSIP/1001",
        agents=("PJSIP/1001",),
        caller_number_raw="+4930123",
        caller_name="Kunde",
        wait_s=2.0,
        talk_s=4.0,
        hold_s=0.0,
        adopted=False,
    )


def test_the_call_ends_only_when_its_last_channel_hangs_up() -> None:
    tracker = CallTracker(trunks=TRUNKS)
    facts = run(ANSWERED[:-1], tracker)
    assert not of(CallEnded, facts)
    assert tracker.live_call("100.1") is not None
    assert of(CallEnded, run([ANSWERED[-1]], tracker))
    assert tracker.live_calls() == ()


def test_a_direct_dial_rings_the_agent_without_queue_events() -> None:
    facts = run(
        [
            created(CUSTOMER),
            created(BOB),
            dialled(CUSTOMER, BOB, 0.01, "1002"),
            dial_ended(CUSTOMER, BOB, "ANSWER", 1.5),
            hangup(BOB, 4),
            hangup(CUSTOMER, 4),
        ]
    )
    assert [type(f) for f in facts] == [CallStarted, CallRinging, CallAnswered, CallEnded]
    ringing, ended = facts[1], facts[3]
    assert isinstance(ringing, CallRinging) and isinstance(ended, CallEnded)
    assert (ringing.agent_interface, ringing.queue) == ("PJSIP/1002", None)
    assert (ended.outcome, ended.answered_by, ended.queue) == (Outcome.ANSWERED, "PJSIP/1002", None)


def test_an_unanswered_direct_call_is_missed() -> None:
    facts = run(
        [
            created(CUSTOMER),
            dialled(CUSTOMER, BOB),
            dial_ended(CUSTOMER, BOB, "NOANSWER", 15),
            hangup(BOB, 15),
            hangup(CUSTOMER, 15.1),
        ]
    )
    (ended,) = of(CallEnded, facts)
    assert isinstance(ended, CallEnded) and ended.outcome is Outcome.MISSED


AGENT_OUT = channel("PJSIP/1001-00000010", "300.1", caller_num="1001", exten="+4940987654")
TRUNK_OUT = channel("PJSIP/trunk-00000011", "300.2", "300.1", caller_num="+4940987654")


def test_an_agent_dialling_the_trunk_is_an_outbound_call_to_the_callee() -> None:
    facts = run(
        [
            created(AGENT_OUT),
            created(TRUNK_OUT, 0.1),
            dialled(AGENT_OUT, TRUNK_OUT, 0.1, "+4940987654@trunk"),
            dial_ended(AGENT_OUT, TRUNK_OUT, "ANSWER", 3),
            hangup(TRUNK_OUT, 8),
            hangup(AGENT_OUT, 8),
        ]
    )
    assert facts[0] == CallStarted(
        call_id="300.1",
        at=at(0),
        direction=Direction.OUTBOUND,
        caller_number_raw="+4940987654",
        caller_name="",
        dialled="+4940987654",
        agent_interface="PJSIP/1001",
    )
    (ended,) = of(CallEnded, facts)
    assert isinstance(ended, CallEnded)
    assert (ended.direction, ended.answered_by, ended.talk_s) == (
        Direction.OUTBOUND,
        "PJSIP/1001",
        5.0,
    )
    assert not of(CallRinging, facts)


def test_an_agent_dialling_another_agent_is_an_internal_call() -> None:
    caller = channel(
        "PJSIP/1001-00000020", "400.1", caller_num="1001", caller_name="Alice", exten="1002"
    )
    callee = channel("PJSIP/1002-00000021", "400.2", "400.1")
    facts = run([created(caller), dialled(caller, callee, 0.1, "PJSIP/1002")])
    started, ringing = facts
    assert isinstance(started, CallStarted) and isinstance(ringing, CallRinging)
    assert (started.direction, started.caller_number_raw, started.agent_interface) == (
        Direction.INTERNAL,
        "1001",
        "PJSIP/1001",
    )
    assert ringing.agent_interface == "PJSIP/1002"


def test_a_phone_that_never_dialled_is_not_logged_as_a_call() -> None:
    assert run([created(AGENT_OUT), hangup(AGENT_OUT, 3)]) == []


def test_an_originate_leg_does_not_ring_the_agent_who_clicked() -> None:
    facts = run(
        [
            created(AGENT_OUT),
            dialled(None, AGENT_OUT, 0.0, "1001"),
            dial_ended(None, AGENT_OUT, "ANSWER", 1),
        ]
    )
    assert facts == []


def test_an_originate_response_is_linked_to_the_call_and_its_agent() -> None:
    response = ev.OriginateResult(
        at=at(1),
        action_id="rec-2",
        success=True,
        reason=4,
        channel_name=AGENT_OUT.name,
        interface="PJSIP/1001",
        uniqueid="300.1",
    )
    facts = run([created(AGENT_OUT), response, response])
    assert facts == [
        OriginateCompleted(
            at=at(1),
            action_id="rec-2",
            success=True,
            reason=4,
            call_id="300.1",
            agent_interface="PJSIP/1001",
        )
    ]


ALICE_TALKING: list[ev.CallEvent] = [
    created(CUSTOMER),
    joined(),
    created(ALICE),
    rang(ALICE),
    connected(ALICE, 2),
]


def test_a_blind_transfer_rings_the_target_with_the_original_customer_number() -> None:
    blind = ev.Transferred(
        at=at(10),
        kind=ev.TransferKind.BLIND,
        success=True,
        transferer=ALICE,
        transferee=CUSTOMER,
        extension="1002",
        context="from-agents",
    )
    # The redirected customer dials Bob through a Local channel that shows Alice's number.
    local = channel("Local/1002@from-agents-0000001;2", "100.9", "100.1", caller_num="1001")
    facts = run(
        [
            *ALICE_TALKING,
            blind,
            blind,
            hangup(ALICE, 10.1),
            created(local, 10.1),
            created(BOB, 10.1),
            dialled(local, BOB, 10.2),
            dial_ended(local, BOB, "ANSWER", 12),
            hangup(BOB, 20),
            hangup(local, 20),
            hangup(CUSTOMER, 20),
        ]
    )
    transferred = of(CallTransferred, facts)
    assert transferred == [
        CallTransferred(
            call_id="100.1",
            at=at(10),
            kind=ev.TransferKind.BLIND,
            from_agent="PJSIP/1001",
            to_agent="",
            extension="1002",
        )
    ]
    (ringing,) = [f for f in of(CallRinging, facts) if f.agent_interface == "PJSIP/1002"]
    assert isinstance(ringing, CallRinging) and ringing.caller_number_raw == "+4930123"
    answered = [f for f in of(CallAnswered, facts) if f.agent_interface == "PJSIP/1002"]
    assert [(f.first, f.caller_number_raw) for f in answered] == [(False, "+4930123")]
    (ended,) = of(CallEnded, facts)
    assert isinstance(ended, CallEnded)
    assert (ended.outcome, ended.answered_by, ended.agents) == (
        Outcome.TRANSFERRED,
        "PJSIP/1001",
        ("PJSIP/1001", "PJSIP/1002"),
    )


def test_an_attended_transfer_connects_the_target_to_the_customers_call() -> None:
    consult = channel("PJSIP/1001-00000030", "200.1", caller_num="1001", exten="1002")
    bob = channel("PJSIP/1002-00000031", "200.2", "200.1")
    attended = ev.Transferred(
        at=at(20),
        kind=ev.TransferKind.ATTENDED,
        success=True,
        transferer=ALICE,
        transferee=CUSTOMER,
        target=bob,
        second_transferer=consult,
    )
    tracker = CallTracker(trunks=TRUNKS)
    before = run(
        [
            *ALICE_TALKING,
            ev.HoldStarted(at=at(10), channel=ALICE),
            created(consult, 11),
            dialled(consult, bob, 11),
            dial_ended(consult, bob, "ANSWER", 13),
        ],
        tracker,
    )
    consult_ringing = [f for f in of(CallRinging, before) if f.call_id == "200.1"]
    assert [(f.agent_interface, f.caller_number_raw) for f in consult_ringing] == [
        ("PJSIP/1002", "1001")
    ]

    facts = run([attended, hangup(ALICE, 20), hangup(consult, 20)], tracker)
    assert facts[:2] == [
        CallTransferred(
            call_id="100.1",
            at=at(20),
            kind=ev.TransferKind.ATTENDED,
            from_agent="PJSIP/1001",
            to_agent="PJSIP/1002",
            extension="",
        ),
        CallAnswered(
            call_id="100.1",
            at=at(20),
            agent_interface="PJSIP/1002",
            direction=Direction.INBOUND,
            queue="support",
            caller_number_raw="+4930123",
            caller_name="Kunde",
            wait_s=2.0,
            first=False,
        ),
    ]
    (consult_ended,) = of(CallEnded, facts)
    assert isinstance(consult_ended, CallEnded) and consult_ended.call_id == "200.1"

    (ended,) = of(
        CallEnded,
        run(
            [ev.HoldEnded(at=at(25), channel=CUSTOMER), hangup(CUSTOMER, 30), hangup(bob, 30)],
            tracker,
        ),
    )
    assert isinstance(ended, CallEnded)
    assert (ended.call_id, ended.outcome, ended.agents, ended.caller_number_raw) == (
        "100.1",
        Outcome.TRANSFERRED,
        ("PJSIP/1001", "PJSIP/1002"),
        "+4930123",
    )


def test_a_failed_transfer_changes_nothing() -> None:
    failed = ev.Transferred(
        at=at(10),
        kind=ev.TransferKind.BLIND,
        success=False,
        transferer=ALICE,
        transferee=CUSTOMER,
        extension="1002",
    )
    tracker = CallTracker(trunks=TRUNKS)
    run(ALICE_TALKING, tracker)
    assert run([failed], tracker) == []


def test_hold_and_unhold_are_reported_once_and_counted_as_hold_time() -> None:
    tracker = CallTracker(trunks=TRUNKS)
    run(ALICE_TALKING, tracker)
    hold, unhold = ev.HoldStarted(at=at(3), channel=ALICE), ev.HoldEnded(at=at(5), channel=ALICE)
    assert run([hold, hold], tracker) == [CallHoldChanged(call_id="100.1", at=at(3), on_hold=True)]
    live = tracker.live_call("100.1")
    assert live is not None and live.on_hold
    assert run([unhold, unhold], tracker) == [
        CallHoldChanged(call_id="100.1", at=at(5), on_hold=False)
    ]
    (ended,) = of(CallEnded, run([hangup(ALICE, 9), hangup(CUSTOMER, 9)], tracker))
    assert isinstance(ended, CallEnded) and ended.hold_s == 2.0


@pytest.mark.parametrize("index", range(len(ANSWERED)))
def test_a_duplicated_event_yields_no_second_fact(index: int) -> None:
    doubled = [*ANSWERED[: index + 1], ANSWERED[index], *ANSWERED[index + 1 :]]
    assert run(doubled) == run(ANSWERED)


def test_replaying_a_finished_call_yields_nothing() -> None:
    tracker = CallTracker(trunks=TRUNKS)
    run(ANSWERED, tracker)
    assert run(ANSWERED, tracker) == []


def test_an_answer_after_the_call_ended_changes_nothing() -> None:
    abandon = ev.QueueCallerAbandoned(at=at(6), channel=CUSTOMER, queue="support")
    tracker = CallTracker(trunks=TRUNKS)
    run([*RINGALL, abandon, hangup(ALICE, 6), hangup(BOB, 6), hangup(CUSTOMER, 6)], tracker)
    assert run([connected(ALICE, 7), dial_ended(CUSTOMER, ALICE, "ANSWER", 7)], tracker) == []


def test_a_late_agent_complete_after_the_call_ended_changes_nothing() -> None:
    tracker = CallTracker(trunks=TRUNKS)
    run(ANSWERED, tracker)
    complete = ev.AgentCompleted(
        at=at(7), caller=CUSTOMER, dest=ALICE, queue="support", interface="PJSIP/1001", talk_s=4
    )
    assert run([complete], tracker) == []
    assert tracker.live_calls() == ()


def test_an_answer_after_the_agent_leg_hung_up_changes_nothing() -> None:
    tracker = CallTracker(trunks=TRUNKS)
    run([*RINGALL, hangup(ALICE, 1)], tracker)
    assert run([dial_ended(CUSTOMER, ALICE, "ANSWER", 2)], tracker) == []


def test_events_for_unknown_channels_or_agents_do_not_raise() -> None:
    stranger = channel("PJSIP/1009-000000ff", "999.2", "999.1")
    events: list[ev.CallEvent] = [
        hangup(stranger, 1),
        ev.AgentRingNoAnswer(
            at=at(1), caller=stranger, dest=stranger, queue="x", interface="PJSIP/1009"
        ),
        ev.HoldStarted(at=at(1), channel=stranger),
        ev.BridgeEntered(at=at(1), channel=stranger, bridge_id="b"),
        ev.Transferred(at=at(1), kind=ev.TransferKind.ATTENDED, success=True, transferer=None),
        ev.OriginateResult(at=at(1), action_id="x", success=False),
    ]
    facts = run(events)
    assert of(OriginateCompleted, facts) and not of(CallEnded, facts)


def test_a_bridge_enter_connects_a_rung_agent_whose_answer_was_lost() -> None:
    facts = run(
        [*RINGALL, ev.BridgeEntered(at=at(2), channel=BOB, bridge_id="b1", bridge_channels=1)]
    )
    assert [f.agent_interface for f in of(CallAnswered, facts)] == ["PJSIP/1002"]


def test_the_live_view_shows_who_rings_and_who_talks() -> None:
    tracker = CallTracker(trunks=TRUNKS)
    run(RINGALL, tracker)
    live = tracker.live_call("100.1")
    assert live is not None
    assert (live.ringing, live.connected, live.queue) == (
        ("PJSIP/1001", "PJSIP/1002"),
        (),
        "support",
    )
    run([connected(BOB, 3)], tracker)
    live = tracker.live_call("100.1")
    assert live is not None and (live.ringing, live.connected) == ((), ("PJSIP/1002",))


# --- resync -------------------------------------------------------------------


def listing(*snaps: ev.ChannelSnapshot, complete: bool = True) -> list[ev.CallEvent]:
    done = ev.SnapshotComplete(at=at(50), list_name="coreshowchannelscomplete", items=len(snaps))
    return [*snaps, done] if complete else list(snaps)


def snap(
    ch: ev.Channel, *, state: int, bridge: str = "", seconds: int = 0, app: str = ""
) -> ev.ChannelSnapshot:
    return ev.ChannelSnapshot(
        at=at(50),
        channel=ch,
        state=state,
        bridge_id=bridge,
        duration_s=seconds,
        application=app,
        application_data="support,,,,120" if app == "Queue" else "",
    )


def test_a_resync_ends_calls_that_are_no_longer_live() -> None:
    tracker = CallTracker(trunks=TRUNKS)
    run(RINGALL, tracker)
    facts = tracker.resync(listing(), at=at(50))
    (ended,) = of(CallEnded, facts)
    assert isinstance(ended, CallEnded)
    assert (ended.call_id, ended.at, ended.outcome) == ("100.1", at(50), Outcome.MISSED)
    assert {f.agent_interface for f in of(CallRingStopped, facts)} == {"PJSIP/1001", "PJSIP/1002"}
    assert tracker.live_calls() == ()


def test_a_resync_names_the_calls_still_live_last_after_ending_those_gone() -> None:
    tracker = CallTracker(trunks=TRUNKS)
    run([*RINGALL, connected(BOB, 2), hangup(ALICE, 2)], tracker)
    facts = tracker.resync(listing(), at=at(50))
    assert isinstance(facts[-2], CallEnded) and facts[-2].call_id == "100.1"
    assert facts[-1] == CallsListedLive(at=at(50), call_ids=frozenset())


def test_a_resync_adopts_live_calls_it_did_not_know() -> None:
    tracker = CallTracker(trunks=TRUNKS)
    facts = tracker.resync(
        listing(
            snap(CUSTOMER, state=6, bridge="b1", seconds=30, app="Queue"),
            snap(BOB, state=6, bridge="b1"),
        ),
        at=at(50),
    )
    started, answered, listed = facts
    assert listed == CallsListedLive(at=at(50), call_ids=frozenset({"100.1"}))
    assert started == CallStarted(
        call_id="100.1",
        at=at(20),
        direction=Direction.INBOUND,
        caller_number_raw="+4930123",
        caller_name="Kunde",
        dialled="100",
        agent_interface="",
        adopted=True,
    )
    assert isinstance(answered, CallAnswered)
    assert (answered.agent_interface, answered.queue, answered.at) == (
        "PJSIP/1002",
        "support",
        at(50),
    )


def test_a_resync_adopts_a_ringing_agent_as_ringing() -> None:
    facts = CallTracker(trunks=TRUNKS).resync(
        listing(snap(CUSTOMER, state=4, app="Queue"), snap(ALICE, state=5)), at=at(50)
    )
    assert [type(f) for f in facts] == [CallStarted, CallRinging, CallsListedLive]
    assert [f.agent_interface for f in of(CallRinging, facts)] == ["PJSIP/1001"]


def test_a_resync_of_known_state_yields_only_the_list_of_live_calls() -> None:
    tracker = CallTracker(trunks=TRUNKS)
    run([*RINGALL, connected(BOB, 2), hangup(ALICE, 2)], tracker)
    live = listing(
        snap(CUSTOMER, state=6, bridge="b1", app="Queue"), snap(BOB, state=6, bridge="b1")
    )
    assert tracker.resync(live, at=at(50)) == [
        CallsListedLive(at=at(50), call_ids=frozenset({"100.1"}))
    ]


def test_a_resync_connects_an_agent_whose_answer_was_missed() -> None:
    tracker = CallTracker(trunks=TRUNKS)
    run(RINGALL, tracker)
    live = listing(
        snap(CUSTOMER, state=6, bridge="b1", app="Queue"), snap(BOB, state=6, bridge="b1")
    )
    facts = tracker.resync(live, at=at(50))
    assert [type(f) for f in facts] == [CallRingStopped, CallAnswered, CallsListedLive]
    assert [f.agent_interface for f in of(CallRingStopped, facts)] == ["PJSIP/1001"]
    assert [f.agent_interface for f in of(CallAnswered, facts)] == ["PJSIP/1002"]


def test_an_incomplete_channel_list_changes_nothing() -> None:
    tracker = CallTracker(trunks=TRUNKS)
    run(RINGALL, tracker)
    assert tracker.resync(listing(complete=False), at=at(50)) == []
    assert tracker.live_call("100.1") is not None


def test_recent_keys_forget_the_oldest_beyond_capacity() -> None:
    keys: RecentKeys[str] = RecentKeys(2)
    assert keys.add("a") and keys.add("b") and not keys.add("a")
    assert keys.add("c")
    assert "a" not in keys and "b" in keys and "c" in keys and len(keys) == 2
