from __future__ import annotations

from cti import events as ev
from cti.queue_state import QueueBoard
from tests.cti_logic.conftest import SERVICE_LEVEL_S, at, channel


def caller(n: int) -> ev.Channel:
    return channel(f"PJSIP/trunk-0000000{n}", f"10{n}.1", caller_num=f"+49301{n}")


def join(n: int, t: float, position: int) -> ev.QueueCallerJoined:
    return ev.QueueCallerJoined(
        at=at(t), channel=caller(n), queue="support", position=position, count=position
    )


def leave(n: int, t: float) -> ev.QueueCallerLeft:
    return ev.QueueCallerLeft(at=at(t), channel=caller(n), queue="support")


def connect(n: int, t: float, hold_s: int = 0) -> ev.AgentConnected:
    agent = channel("PJSIP/1001-000000aa", f"10{n}.2", f"10{n}.1")
    return ev.AgentConnected(
        at=at(t),
        caller=caller(n),
        dest=agent,
        queue="support",
        interface="PJSIP/1001",
        hold_s=hold_s,
    )


def abandon(n: int, t: float, hold_s: int = 0) -> ev.QueueCallerAbandoned:
    return ev.QueueCallerAbandoned(at=at(t), channel=caller(n), queue="support", hold_s=hold_s)


def board_with(*events: ev.CallEvent) -> QueueBoard:
    board = QueueBoard(service_level_s=SERVICE_LEVEL_S, short_abandon_s=5.0)
    for event in events:
        board.apply(event)
    return board


def waiting(board: QueueBoard, t: float) -> list[str]:
    return [c.caller_number_raw for c in board.view("support", at(t)).waiting]


def test_positions_follow_joins_and_leaves() -> None:
    board = board_with(join(1, 0, 1), join(2, 1, 2), join(3, 2, 3), leave(1, 3))
    assert waiting(board, 4) == ["+493012", "+493013"]


def test_a_caller_joining_ahead_takes_the_position_asterisk_reports() -> None:
    board = board_with(join(1, 0, 1), join(2, 1, 2), join(3, 2, 1))
    assert waiting(board, 3) == ["+493013", "+493011", "+493012"]


def test_longest_wait_is_the_oldest_waiting_caller_at_now() -> None:
    board = board_with(join(1, 0, 1), join(2, 1, 2), leave(1, 3))
    assert board.view("support", at(10)).longest_wait_s == 9.0
    assert board_with().view("support", at(10)).longest_wait_s == 0.0


def test_answers_count_once_and_within_service_level_by_their_wait() -> None:
    board = board_with(
        join(1, 0, 1),
        join(2, 0, 2),
        leave(1, 3),
        connect(1, 3),
        connect(1, 3),
        leave(2, 25),
        connect(2, 25),
    )
    view = board.view("support", at(30))
    assert (view.answered, view.answered_in_sl, view.waiting) == (2, 1, ())
    assert view.service_level_pct == 50.0


def test_an_answer_without_a_seen_join_uses_the_pbx_hold_time() -> None:
    view = board_with(connect(1, 3, hold_s=25)).view("support", at(4))
    assert (view.answered, view.answered_in_sl) == (1, 0)


def test_abandons_count_once_and_short_ones_separately() -> None:
    board = board_with(join(1, 0, 1), join(2, 0, 2), abandon(1, 3), abandon(1, 3), abandon(2, 9))
    view = board.view("support", at(10))
    assert (view.abandoned, view.short_abandons, view.waiting) == (2, 1, ())
    assert view.service_level_pct == 0.0


def test_a_caller_hanging_up_without_a_leave_stops_waiting() -> None:
    board = board_with(join(1, 0, 1), ev.ChannelHungUp(at=at(2), channel=caller(1)))
    assert waiting(board, 3) == []


def test_a_duplicated_join_does_not_queue_the_caller_twice() -> None:
    assert waiting(board_with(join(1, 0, 1), join(1, 0, 1)), 1) == ["+493011"]


def test_resync_replaces_the_waiting_list_of_the_listed_queues() -> None:
    board = board_with(join(1, 0, 1), join(2, 1, 2))
    snapshot: list[ev.CallEvent] = [
        ev.QueueParamsSnapshot(at=at(30), queue="support", service_level_s=20),
        ev.QueueEntrySnapshot(
            at=at(30), queue="support", position=2, uniqueid="103.1", caller_num="+493013", wait_s=5
        ),
        ev.QueueEntrySnapshot(
            at=at(30),
            queue="support",
            position=1,
            uniqueid="102.1",
            caller_num="+493012",
            wait_s=29,
        ),
        ev.SnapshotComplete(at=at(30), list_name="queuestatuscomplete"),
    ]
    assert board.resync(snapshot, at=at(30)) == ["support"]
    view = board.view("support", at(30))
    assert [c.caller_number_raw for c in view.waiting] == ["+493012", "+493013"]
    assert view.waiting[0].joined_at == at(1)  # known callers keep their precise join time
    assert view.waiting[1].joined_at == at(25)
    board.apply(leave(2, 31))
    assert waiting(board, 31) == ["+493013"]


def test_the_service_level_comes_from_config_or_the_pbx() -> None:
    board = QueueBoard(service_level_s={"support": 20.0}, default_service_level_s=15.0)
    board.resync(
        [
            ev.QueueParamsSnapshot(at=at(0), queue="sales", service_level_s=30),
            ev.SnapshotComplete(at=at(0), list_name="queuestatuscomplete"),
        ],
        at=at(0),
    )
    assert (
        board.service_level_s("support"),
        board.service_level_s("sales"),
        board.service_level_s("x"),
    ) == (20.0, 30.0, 15.0)


def test_resync_keeps_a_caller_who_joined_after_the_list_was_requested() -> None:
    # The list was asked for at 30 and shows caller 1; caller 2 joined at 31, while it travelled.
    board = board_with(join(1, 0, 1), join(2, 31, 2))
    snapshot: list[ev.CallEvent] = [
        ev.QueueParamsSnapshot(at=at(30), queue="support"),
        ev.QueueEntrySnapshot(
            at=at(30),
            queue="support",
            position=1,
            uniqueid="101.1",
            linkedid="101.1",
            caller_num="+493011",
            caller_name="",
            wait_s=30,
        ),
        ev.SnapshotComplete(at=at(30), list_name="queuestatuscomplete"),
    ]
    board.resync(snapshot, at=at(30))
    assert waiting(board, 32) == ["+493011", "+493012"]
