from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from cti import events as ev
from cti.events import (
    CallAnswered,
    CallEnded,
    CallFact,
    CallRinging,
    CallRingStopped,
    CallStarted,
    CallTransferred,
    Direction,
    Outcome,
    RingStop,
    TransferKind,
)
from cti.pops import PopDecision, PopDesk, PopPhase
from tests.cti_logic.conftest import Desk, at, channel

ALICE, BOB = "PJSIP/1001", "PJSIP/1002"
CALL = "100.1"


def ringing(agent: str, t: float = 0.0) -> CallRinging:
    return CallRinging(
        call_id=CALL,
        at=at(t),
        agent_interface=agent,
        direction=Direction.INBOUND,
        queue="support",
        caller_number_raw="+4930123",
        caller_name="Kunde",
    )


def answered(agent: str, t: float = 2.0, *, first: bool = True) -> CallAnswered:
    return CallAnswered(
        call_id=CALL,
        at=at(t),
        agent_interface=agent,
        direction=Direction.INBOUND,
        queue="support",
        caller_number_raw="+4930123",
        caller_name="Kunde",
        wait_s=t,
        first=first,
    )


def stopped(agent: str, reason: RingStop, t: float = 4.0) -> CallRingStopped:
    return CallRingStopped(call_id=CALL, at=at(t), agent_interface=agent, reason=reason)


def ended(outcome: Outcome, t: float = 6.0, agents: tuple[str, ...] = ()) -> CallEnded:
    return CallEnded(
        call_id=CALL,
        at=at(t),
        started_at=at(0),
        answered_at=at(2) if agents else None,
        outcome=outcome,
        direction=Direction.INBOUND,
        queue="support",
        answered_by=agents[0] if agents else None,
        agents=agents,
        caller_number_raw="+4930123",
        caller_name="Kunde",
        wait_s=2.0,
        talk_s=4.0,
        hold_s=0.0,
        adopted=False,
    )


def decide(
    facts: Sequence[CallFact], desk: PopDesk | None = None
) -> list[tuple[str, PopPhase, str]]:
    desk = desk or PopDesk()
    return [(d.agent_interface, d.phase, d.reason) for f in facts for d in desk.apply(f)]


def test_a_ringing_call_pops_to_every_agent_whose_phone_rings() -> None:
    desk = PopDesk()
    (decision,) = desk.apply(ringing(ALICE))
    assert decision == PopDecision(
        call_id=CALL,
        agent_interface=ALICE,
        phase=PopPhase.RINGING,
        caller_number_raw="+4930123",
        caller_name="Kunde",
        queue="support",
        reason="queue",
        at=at(0),
        direction=Direction.INBOUND,
        call_started_at=at(0),
    )
    assert [d.agent_interface for d in desk.apply(ringing(BOB))] == [BOB]


def test_an_answer_connects_that_agent_and_withdraws_the_others() -> None:
    assert decide(
        [ringing(ALICE), ringing(BOB), answered(ALICE), stopped(BOB, RingStop.ANSWERED_ELSEWHERE)]
    ) == [
        (ALICE, PopPhase.RINGING, "queue"),
        (BOB, PopPhase.RINGING, "queue"),
        (ALICE, PopPhase.CONNECTED, "answered"),
        (BOB, PopPhase.WITHDRAWN, "answered_elsewhere"),
    ]


def test_an_agent_ring_no_answer_withdraws_that_agents_pop() -> None:
    assert decide([ringing(ALICE), ringing(BOB), stopped(BOB, RingStop.NO_ANSWER)])[-1] == (
        BOB,
        PopPhase.WITHDRAWN,
        "no_answer",
    )


def test_an_abandoned_call_withdraws_every_ringing_pop() -> None:
    assert decide([ringing(ALICE), ringing(BOB), ended(Outcome.ABANDONED)])[2:] == [
        (ALICE, PopPhase.WITHDRAWN, "abandoned"),
        (BOB, PopPhase.WITHDRAWN, "abandoned"),
    ]


def test_a_hangup_before_answer_withdraws_the_pop() -> None:
    assert decide([ringing(BOB), stopped(BOB, RingStop.HUNG_UP), ended(Outcome.MISSED)])[1:] == [
        (BOB, PopPhase.WITHDRAWN, "hung_up")
    ]


def test_the_answered_call_hanging_up_ends_the_connected_pop() -> None:
    assert decide([ringing(ALICE), answered(ALICE), ended(Outcome.ANSWERED, agents=(ALICE,))])[
        -1
    ] == (ALICE, PopPhase.ENDED, "answered")


def test_a_transfer_ends_the_transferers_pop_and_pops_the_target_with_the_original_customer() -> (
    None
):
    desk = PopDesk()
    decide([ringing(ALICE), answered(ALICE)], desk)
    transfer = CallTransferred(
        call_id=CALL,
        at=at(5),
        kind=TransferKind.ATTENDED,
        from_agent=ALICE,
        to_agent=BOB,
        extension="",
    )
    decisions = [d for f in (transfer, answered(BOB, 5, first=False)) for d in desk.apply(f)]
    assert [(d.agent_interface, d.phase, d.reason, d.caller_number_raw) for d in decisions] == [
        (ALICE, PopPhase.ENDED, "transferred", "+4930123"),
        (BOB, PopPhase.CONNECTED, "transferred", "+4930123"),
    ]
    assert decide([ended(Outcome.TRANSFERRED, agents=(ALICE, BOB))], desk) == [
        (BOB, PopPhase.ENDED, "transferred")
    ]


def test_an_outbound_call_pops_the_callee_to_the_agent_who_placed_it() -> None:
    started = CallStarted(
        call_id=CALL,
        at=at(0),
        direction=Direction.OUTBOUND,
        caller_number_raw="+4940987654",
        caller_name="",
        dialled="+4940987654",
        agent_interface=ALICE,
    )
    desk = PopDesk()
    (decision,) = desk.apply(started)
    assert (
        decision.agent_interface,
        decision.phase,
        decision.caller_number_raw,
        decision.reason,
    ) == (ALICE, PopPhase.RINGING, "+4940987654", "outbound")


def test_an_outbound_call_nobody_answers_withdraws_the_pop() -> None:
    started = CallStarted(
        call_id=CALL,
        at=at(0),
        direction=Direction.OUTBOUND,
        caller_number_raw="+49",
        caller_name="",
        dialled="+49",
        agent_interface=ALICE,
    )
    assert decide([started, ended(Outcome.MISSED)])[-1] == (ALICE, PopPhase.WITHDRAWN, "missed")


def test_the_caller_of_an_internal_call_gets_no_pop() -> None:
    started = CallStarted(
        call_id=CALL,
        at=at(0),
        direction=Direction.INTERNAL,
        caller_number_raw="1001",
        caller_name="Alice",
        dialled="1002",
        agent_interface=ALICE,
    )
    assert decide([started]) == []


def test_each_call_agent_and_phase_pops_exactly_once() -> None:
    facts: list[CallFact] = [
        ringing(ALICE),
        ringing(ALICE),
        answered(ALICE),
        answered(ALICE),
        ended(Outcome.ANSWERED, agents=(ALICE,)),
        ended(Outcome.ANSWERED, agents=(ALICE,)),
    ]
    desk = PopDesk()
    first = decide(facts, desk)
    assert [phase for _, phase, _ in first] == [
        PopPhase.RINGING,
        PopPhase.CONNECTED,
        PopPhase.ENDED,
    ]
    assert decide(facts, desk) == []


def test_a_withdrawal_needs_a_ringing_pop_first() -> None:
    assert decide([stopped(BOB, RingStop.NO_ANSWER), ended(Outcome.MISSED)]) == []


def test_a_connected_agent_is_not_popped_as_ringing_again() -> None:
    assert decide([answered(ALICE), ringing(ALICE)]) == [(ALICE, PopPhase.CONNECTED, "answered")]


def test_a_transferred_call_pops_the_target_with_the_original_customer(desk: Desk) -> None:
    customer = channel("PJSIP/trunk-00000001", "100.1", caller_num="+4930123", caller_name="Kunde")
    alice = channel("PJSIP/1001-00000002", "100.2", "100.1", caller_num="1001")
    bob = channel("PJSIP/1002-00000003", "100.3", "100.1", caller_num="1002")
    # After a blind transfer Asterisk may show the transferer's number on the redirected leg.
    redirected = replace(customer, caller_num="1001", caller_name="Agent 1001")
    events: list[ev.CallEvent] = [
        ev.ChannelCreated(at=at(0), channel=customer),
        ev.QueueCallerJoined(at=at(0), channel=customer, queue="support", position=1, count=1),
        ev.AgentRang(at=at(0), caller=customer, dest=alice, queue="support", interface=ALICE),
        ev.AgentConnected(at=at(2), caller=customer, dest=alice, queue="support", interface=ALICE),
        ev.Transferred(
            at=at(9),
            kind=TransferKind.BLIND,
            success=True,
            transferer=alice,
            transferee=customer,
            extension="1002",
        ),
        ev.ChannelHungUp(at=at(9), channel=alice),
        ev.DialStarted(at=at(9), caller=redirected, dest=bob, dial_string="PJSIP/1002"),
        ev.DialEnded(at=at(11), caller=redirected, dest=bob, status="ANSWER"),
        ev.ChannelHungUp(at=at(20), channel=bob),
        ev.ChannelHungUp(at=at(20), channel=customer),
    ]
    for event in events:
        desk.push(event)
    assert [(d.agent_interface, d.phase, d.caller_number_raw) for d in desk.decisions] == [
        (ALICE, PopPhase.RINGING, "+4930123"),
        (ALICE, PopPhase.CONNECTED, "+4930123"),
        (ALICE, PopPhase.ENDED, "+4930123"),
        (BOB, PopPhase.RINGING, "+4930123"),
        (BOB, PopPhase.CONNECTED, "+4930123"),
        (BOB, PopPhase.ENDED, "+4930123"),
    ]
