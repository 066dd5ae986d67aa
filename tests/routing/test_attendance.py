"""Attendance merged across processes: who is online and how their phones are, from
this process's facts and those the other live processes published."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from desk.clock import FakeClock
from routing.assignment import Attendance, Availability
from routing.attendance import (
    AttendanceFacts,
    SharedAttendance,
    came_available,
    merge_attendance,
)
from routing.router import PhoneState, Presence

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
EARLIER = NOW - timedelta(minutes=20)
ON, OFF = Presence.ONLINE, Presence.OFFLINE
READY, PAUSED, ON_CALL = PhoneState.READY, PhoneState.PAUSED, PhoneState.ON_CALL
LOGGED_OUT, UNKNOWN = PhoneState.LOGGED_OUT, PhoneState.UNKNOWN
NOBODY = AttendanceFacts()
AGENT = 7


def facts(*online: int, **phones: PhoneState) -> AttendanceFacts:
    """``facts(7, a8=READY)``: agent 7 has a browser here, agent 8's phone is ready."""
    return AttendanceFacts(
        online=frozenset(online),
        phones={int(name.removeprefix("a")): state for name, state in phones.items()},
    )


def seen(
    presence: Presence = OFF, phone: PhoneState = UNKNOWN, since: datetime | None = None
) -> Availability:
    return Availability(presence=presence, phone=phone, offline_since=since)


# (what it shows, this process's facts, the peers', agent 7 in the previous view, agent 7 now)
AGENT_SEVEN = [
    ("a browser on another process: online", NOBODY, [facts(7)], None, seen(ON)),
    ("a browser here: online", facts(7), [NOBODY], None, seen(ON)),
    ("browsers on two processes count once", facts(7), [facts(7)], None, seen(ON)),
    (
        "the holder's phone state reaches every process",
        NOBODY,
        [facts(a7=PAUSED)],
        None,
        seen(OFF, PAUSED),
    ),
    (
        "online on one process, phone from another",
        facts(7),
        [facts(a7=ON_CALL)],
        None,
        seen(ON, ON_CALL),
    ),
    (
        "gone from every process after being online: offline since now",
        NOBODY,
        [NOBODY],
        seen(ON),
        seen(OFF, since=NOW),
    ),
    (
        "a dead process's agents are gone with its facts: offline since now",
        NOBODY,
        [],
        seen(ON, READY),
        seen(OFF, since=NOW),
    ),
    (
        "the phone logged out, no browser anywhere: offline since now",
        NOBODY,
        [facts(a7=LOGGED_OUT)],
        seen(OFF, READY),
        seen(OFF, LOGGED_OUT, since=NOW),
    ),
    (
        "still away: the moment they were first seen gone stays",
        NOBODY,
        [NOBODY],
        seen(OFF, since=EARLIER),
        seen(OFF, since=EARLIER),
    ),
    (
        "back on another process: no longer offline",
        NOBODY,
        [facts(7)],
        seen(OFF, since=EARLIER),
        seen(ON),
    ),
    (
        "back on the phone only: not offline (the phone says they work)",
        NOBODY,
        [facts(a7=READY)],
        seen(OFF, since=EARLIER),
        seen(OFF, READY),
    ),
    (
        "a browser keeps them present though their phone is logged out",
        NOBODY,
        [facts(7, a7=LOGGED_OUT)],
        seen(ON, READY),
        seen(ON, LOGGED_OUT),
    ),
    (
        "first seen away: since when is unknown, so they keep their tickets",
        NOBODY,
        [facts(a7=LOGGED_OUT)],
        None,
        seen(OFF, LOGGED_OUT),
    ),
    (
        "known away since an unknown time: still unknown",
        NOBODY,
        [NOBODY],
        seen(OFF, LOGGED_OUT),
        seen(OFF),
    ),
    (
        "this process's known phone state wins over a peer's (a take-over's moment)",
        facts(a7=READY),
        [facts(a7=PAUSED)],
        None,
        seen(OFF, READY),
    ),
    (
        "an unknown state says nothing: a peer's known one wins",
        facts(a7=UNKNOWN),
        [facts(a7=PAUSED)],
        None,
        seen(OFF, PAUSED),
    ),
    (
        "between peers, the first in the order given wins",
        NOBODY,
        [facts(a7=ON_CALL), facts(a7=READY)],
        None,
        seen(OFF, ON_CALL),
    ),
]


@pytest.mark.parametrize(
    ("local", "peers", "before", "expected"),
    [case[1:] for case in AGENT_SEVEN],
    ids=[case[0] for case in AGENT_SEVEN],
)
def test_the_merge_says_where_an_agent_is_across_the_processes(
    local: AttendanceFacts,
    peers: list[AttendanceFacts],
    before: Availability | None,
    expected: Availability,
) -> None:
    previous = {} if before is None else {AGENT: before}
    assert merge_attendance(local, peers, previous=previous, now=NOW)[AGENT] == expected


def test_the_merge_knows_every_agent_seen_now_or_before_and_no_one_else() -> None:
    merged = merge_attendance(
        facts(1, a2=READY),
        [facts(3), facts(a4=PAUSED)],
        previous={5: seen(ON)},
        now=NOW,
    )
    assert merged == {
        1: seen(ON),
        2: seen(OFF, READY),
        3: seen(ON),
        4: seen(OFF, PAUSED),
        5: seen(OFF, since=NOW),
    }
    assert merge_attendance(NOBODY, [], previous={}, now=NOW) == {}


# (what it shows, agent 7 before, agent 7 after, whether they came available)
CAME = [
    ("came online", None, seen(ON), True),
    ("came online after being away", seen(OFF, since=EARLIER), seen(ON), True),
    ("the phone turned ready", seen(ON, PAUSED), seen(ON, READY), True),
    ("the phone is ready for the first time", None, seen(OFF, READY), True),
    ("still online", seen(ON), seen(ON), False),
    ("still ready", seen(OFF, READY), seen(OFF, READY), False),
    ("went offline", seen(ON), seen(OFF, since=NOW), False),
    ("paused", seen(OFF, READY), seen(OFF, PAUSED), False),
    ("on a call", seen(ON, READY), seen(ON, ON_CALL), False),
]


@pytest.mark.parametrize(
    ("before", "after", "came"), [case[1:] for case in CAME], ids=[case[0] for case in CAME]
)
def test_an_agent_is_news_for_the_assigner_when_they_come_online_or_their_phone_turns_ready(
    before: Availability | None, after: Availability, came: bool
) -> None:
    previous = {} if before is None else {AGENT: before}
    assert came_available(previous, {AGENT: after}) == ([AGENT] if came else [])


def test_the_shared_view_sees_a_browser_connecting_here_at_once(clock: FakeClock) -> None:
    attendance = Attendance()
    shared = SharedAttendance(attendance, clock=clock)
    attendance.connected(AGENT, "tab")
    assert shared.agent_availability()[AGENT] == seen(ON)
    assert shared.local_facts() == facts(7)

    left = clock.advance(30)
    attendance.disconnected(AGENT, "tab", now=left)
    assert shared.agent_availability()[AGENT] == seen(OFF, since=left)


def test_the_shared_view_names_the_agents_who_came_available_through_other_processes(
    clock: FakeClock,
) -> None:
    shared = SharedAttendance(Attendance(), clock=clock)
    assert shared.peers_seen([facts(7, a8=PAUSED)]) == [7]
    assert shared.peers_seen([facts(7, a8=READY)]) == [8]
    assert shared.peers_seen([facts(7, a8=READY)]) == []

    gone = clock.advance(5)
    assert shared.peers_seen([]) == []  # their process's key expired
    assert shared.agent_availability() == {7: seen(since=gone), 8: seen(since=gone)}


def test_a_browser_connecting_here_is_not_news_from_the_other_processes(
    clock: FakeClock,
) -> None:
    attendance = Attendance()
    shared = SharedAttendance(attendance, clock=clock)
    attendance.connected(7, "tab")  # the web layer tells the assigner of this one itself
    assert shared.peers_seen([facts(8)]) == [8]
    assert shared.agent_availability() == {7: seen(ON), 8: seen(ON)}


def test_phone_states_of_a_process_that_let_go_of_the_pbx_link_are_not_published(
    clock: FakeClock,
) -> None:
    attendance = Attendance()
    holding = True
    shared = SharedAttendance(attendance, clock=clock, phones_live=lambda: holding)
    attendance.phone_changed(AGENT, READY, now=clock.now())
    assert shared.local_facts() == facts(a7=READY)

    holding = False  # another process holds the link now: its states count
    assert shared.local_facts() == facts()
    shared.peers_seen([facts(a7=PAUSED)])
    assert shared.agent_availability()[AGENT] == seen(OFF, PAUSED)
