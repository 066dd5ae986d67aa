from __future__ import annotations

import pytest

from cti import events as ev
from cti.agent_state import Agent, AgentBoard, AgentStatus, agent_status
from tests.cti_logic.conftest import WRAP_UP_S, at, channel

ALICE = "PJSIP/1001"
CUSTOMER = channel("PJSIP/trunk-00000001", "100.1")
ALICE_LEG = channel("PJSIP/1001-00000002", "100.2", "100.1")


def member(
    status: int = 1, *, queue: str = "support", paused: bool = False, reason: str = ""
) -> ev.QueueMember:
    return ev.QueueMember(
        queue=queue,
        interface=ALICE,
        name="Alice",
        status=status,
        paused=paused,
        paused_reason=reason,
    )


def status_event(
    status: int, t: float, *, queue: str = "support", paused: bool = False, reason: str = ""
) -> ev.QueueMemberStatusChanged:
    return ev.QueueMemberStatusChanged(
        at=at(t), member=member(status, queue=queue, paused=paused, reason=reason)
    )


def pause_event(
    paused: bool, t: float, *, queue: str = "support", reason: str = ""
) -> ev.QueueMemberPaused:
    return ev.QueueMemberPaused(at=at(t), member=member(queue=queue, paused=paused, reason=reason))


def board_with(*events: ev.CallEvent) -> AgentBoard:
    board = AgentBoard(wrap_up_s=WRAP_UP_S)
    for event in events:
        board.apply(event)
    return board


def status_at(board: AgentBoard, t: float) -> tuple[AgentStatus, float]:
    view = board.view(ALICE, at(t))
    assert view is not None
    return view.status, (view.since - at(0)).total_seconds()


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (0, AgentStatus.READY),
        (1, AgentStatus.READY),
        (2, AgentStatus.ON_CALL),
        (3, AgentStatus.ON_CALL),
        (4, AgentStatus.LOGGED_OUT),
        (5, AgentStatus.LOGGED_OUT),
        (6, AgentStatus.RINGING),
        (7, AgentStatus.ON_CALL),
        (8, AgentStatus.ON_CALL),
    ],
)
def test_a_queue_member_status_sets_the_agents_state(code: int, status: AgentStatus) -> None:
    board = board_with(status_event(1, 0), status_event(code, 3))
    assert status_at(board, 5) == (status, 0.0 if code in (0, 1) else 3.0)


def test_a_pause_with_a_reason_shows_paused_then_ready_on_unpause() -> None:
    board = board_with(status_event(1, 0), pause_event(True, 1, reason="Lunch"))
    view = board.view(ALICE, at(2))
    assert view is not None and (view.status, view.pause_reason) == (AgentStatus.PAUSED, "Lunch")
    assert status_at(board, 2) == (AgentStatus.PAUSED, 1.0)
    board.apply(pause_event(False, 7))
    view = board.view(ALICE, at(8))
    assert view is not None and (view.status, view.since, view.pause_reason) == (
        AgentStatus.READY,
        at(7),
        "",
    )


def test_an_agent_paused_in_only_one_of_two_queues_still_takes_calls() -> None:
    board = board_with(
        status_event(1, 0), status_event(1, 0, queue="sales"), pause_event(True, 1, reason="x")
    )
    view = board.view(ALICE, at(2))
    assert view is not None
    assert (view.status, view.paused_queues) == (AgentStatus.READY, frozenset({"support"}))


def completed(t: float, queue: str = "support") -> ev.AgentCompleted:
    return ev.AgentCompleted(
        at=at(t), caller=CUSTOMER, dest=ALICE_LEG, queue=queue, interface=ALICE
    )


def test_agent_complete_starts_wrap_up_for_that_queues_wrap_up_time() -> None:
    board = board_with(status_event(2, 0), completed(10), status_event(1, 10.1))
    assert status_at(board, 11) == (AgentStatus.WRAP_UP, 10.1)
    assert status_at(board, 12.5) == (AgentStatus.READY, 12.0)


def test_a_queue_without_wrap_up_goes_straight_to_ready() -> None:
    board = board_with(
        status_event(2, 0, queue="sales"),
        completed(10, "sales"),
        status_event(1, 10.1, queue="sales"),
    )
    assert status_at(board, 10.5) == (AgentStatus.READY, 10.1)


def test_a_call_beats_wrap_up_and_pause_on_the_board() -> None:
    board = board_with(
        status_event(1, 0), pause_event(True, 1, reason="Lunch"), completed(2), status_event(2, 3)
    )
    assert status_at(board, 3.5) == (AgentStatus.ON_CALL, 3.0)
    board.apply(status_event(1, 5, paused=True, reason="Lunch"))
    assert status_at(board, 5.5) == (AgentStatus.PAUSED, 5.0)


def test_removal_from_every_queue_logs_the_agent_out() -> None:
    board = board_with(status_event(1, 0), ev.QueueMemberRemoved(at=at(4), member=member()))
    assert status_at(board, 5) == (AgentStatus.LOGGED_OUT, 4.0)
    board.apply(ev.QueueMemberAdded(at=at(6), member=member()))
    assert status_at(board, 7) == (AgentStatus.READY, 6.0)


def test_agent_called_shows_ringing_but_leaves_an_agent_on_a_call_on_the_call() -> None:
    rang = ev.AgentRang(at=at(2), caller=CUSTOMER, dest=ALICE_LEG, queue="support", interface=ALICE)
    assert status_at(board_with(status_event(1, 0), rang), 2) == (AgentStatus.RINGING, 2.0)
    assert status_at(board_with(status_event(2, 0), rang), 2) == (AgentStatus.ON_CALL, 0.0)


def test_agent_connect_puts_the_agent_on_the_call_before_the_status_event() -> None:
    connect = ev.AgentConnected(
        at=at(2), caller=CUSTOMER, dest=ALICE_LEG, queue="support", interface=ALICE
    )
    assert status_at(board_with(status_event(6, 0), connect), 2) == (AgentStatus.ON_CALL, 2.0)


def test_a_ring_no_answer_counts_one_missed_ring_per_ring() -> None:
    def no_answer(leg: str) -> ev.AgentRingNoAnswer:
        dest = channel(f"PJSIP/1001-{leg}", leg, "100.1")
        return ev.AgentRingNoAnswer(
            at=at(4), caller=CUSTOMER, dest=dest, queue="support", interface=ALICE
        )

    board = board_with(
        status_event(1, 0), no_answer("100.2"), no_answer("100.2"), no_answer("100.3")
    )
    view = board.view(ALICE, at(5))
    assert view is not None and view.missed_rings == 2


def test_an_unchanged_status_is_not_reported_as_a_change() -> None:
    board = board_with(status_event(1, 0))
    assert board.apply(status_event(1, 3)) is None
    assert status_at(board, 4) == (AgentStatus.READY, 0.0)


def test_agent_status_is_a_pure_function_of_the_record_and_now() -> None:
    agent = Agent(
        interface=ALICE,
        since=at(0),
        queues=frozenset({"q"}),
        wrap_up_from=at(1),
        wrap_up_until=at(3),
    )
    assert agent_status(agent, at(2)).status is AgentStatus.WRAP_UP
    assert agent_status(agent, at(3)).status is AgentStatus.READY
    assert agent_status(agent, at(2)) == agent_status(agent, at(2))


def snapshot_member(
    name: str, interface: str, status: int, *, paused: bool = False, in_call: bool = False
) -> ev.QueueMemberSnapshot:
    member = ev.QueueMember(
        queue="support",
        interface=interface,
        name=name,
        status=status,
        paused=paused,
        in_call=in_call,
    )
    return ev.QueueMemberSnapshot(at=at(50), member=member)


def test_resync_corrects_pause_and_calls_and_drops_memberships_no_longer_listed() -> None:
    bob = ev.QueueMemberStatusChanged(
        at=at(0), member=ev.QueueMember(queue="support", interface="PJSIP/1002")
    )
    carol = ev.QueueMemberStatusChanged(
        at=at(0), member=ev.QueueMember(queue="support", interface="PJSIP/1003")
    )
    board = board_with(status_event(1, 0), pause_event(True, 1, reason="Lunch"), bob, carol)
    snapshot: list[ev.CallEvent] = [
        ev.QueueParamsSnapshot(at=at(50), queue="support"),
        snapshot_member("Alice", ALICE, 1, paused=False),
        snapshot_member("Bob", "PJSIP/1002", 2, in_call=True),
        ev.SnapshotComplete(at=at(50), list_name="queuestatuscomplete"),
    ]
    changed = board.resync(snapshot, at=at(50))
    assert {agent.interface for agent in changed} == {ALICE, "PJSIP/1002", "PJSIP/1003"}
    views = {i: board.view(i, at(51)) for i in (ALICE, "PJSIP/1002", "PJSIP/1003")}
    assert {i: v.status for i, v in views.items() if v} == {
        ALICE: AgentStatus.READY,
        "PJSIP/1002": AgentStatus.ON_CALL,
        "PJSIP/1003": AgentStatus.LOGGED_OUT,
    }


def test_resync_without_the_end_of_the_list_changes_nothing() -> None:
    board = board_with(status_event(1, 0), pause_event(True, 1, reason="Lunch"))
    assert board.resync([snapshot_member("Alice", ALICE, 1)], at=at(50)) == []
    assert status_at(board, 51)[0] is AgentStatus.PAUSED


def test_resync_keeps_live_state_that_is_newer_than_the_lists_request() -> None:
    # The list was asked for at 50; Alice's phone started ringing at 51, before it arrived.
    board = board_with(status_event(1, 0), status_event(6, 51))
    snapshot: list[ev.CallEvent] = [
        ev.QueueParamsSnapshot(at=at(50), queue="support"),
        snapshot_member("Alice", ALICE, 1),
        ev.SnapshotComplete(at=at(50), list_name="queuestatuscomplete"),
    ]
    board.resync(snapshot, at=at(50))
    assert status_at(board, 52)[0] is AgentStatus.RINGING
