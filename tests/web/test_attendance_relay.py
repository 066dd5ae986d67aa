"""The attendance relay on a real Redis: each process's facts under a key of its own
that expires, the others' read and checked (web/attendance_relay.py)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis

from desk.clock import FakeClock
from routing.assignment import Attendance, Availability
from routing.attendance import AttendanceFacts, SharedAttendance
from routing.router import PhoneState, Presence
from tests.cluster.serve_support import RedisServer, free_port
from tests.cti_e2e.conftest import until
from web.attendance_relay import KEY_PREFIX, AttendanceRelay, decode_facts, encode_facts

REDIS_URL = os.environ.get("DESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
INTERVAL, EXPIRY = 0.05, 0.5


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    """A client of the test database, no attendance keys before or after the test
    (other tests' processes share the database)."""
    client = Redis.from_url(REDIS_URL)
    await _forget_attendance(client)
    yield client
    await _forget_attendance(client)
    await client.aclose()


async def _forget_attendance(client: Redis) -> None:
    keys = [key async for key in client.scan_iter(f"{KEY_PREFIX}*")]
    if keys:
        await client.delete(*keys)


class Process:
    """One process's attendance, its shared view and its relay; what its assigner heard."""

    def __init__(self, clock: FakeClock) -> None:
        self.attendance = Attendance()
        self.view = SharedAttendance(self.attendance, clock=clock)
        self.heard: list[int] = []
        self.relay = AttendanceRelay(
            redis=Redis.from_url(REDIS_URL),
            view=self.view,
            on_available=self.heard.append,
            interval=INTERVAL,
            expiry=EXPIRY,
        )
        self.attendance.on_change(self.relay.poke)

    def sees(self, agent_id: int) -> Availability | None:
        return self.view.agent_availability().get(agent_id)


@pytest.fixture
async def processes(redis: Redis, clock: FakeClock) -> AsyncIterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        await process.relay.stop()


async def start(processes: list[Process], clock: FakeClock) -> Process:
    process = Process(clock)
    await process.relay.start()
    processes.append(process)
    return process


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"online": [7]}',
        b'{"phones": {}}',
        b'{"online": ["7"], "phones": {}}',
        b'{"online": [7.5], "phones": {}}',
        b'{"online": [true], "phones": {}}',
        b'{"online": [-3], "phones": {}}',
        b'{"online": [], "phones": {"seven": "ready"}}',
        b'{"online": [], "phones": {"7": "asleep"}}',
        b'{"online": [], "phones": []}',
    ],
)
def test_a_value_that_is_not_attendance_is_refused(raw: bytes) -> None:
    with pytest.raises(ValidationError):
        decode_facts(raw)


def test_attendance_goes_to_redis_and_back_unchanged() -> None:
    facts = AttendanceFacts(online=frozenset({3, 7}), phones={7: PhoneState.PAUSED})
    assert decode_facts(encode_facts(facts)) == facts
    newer = b'{"online": [3], "phones": {}, "since": "a field of a newer version"}'
    assert decode_facts(newer) == AttendanceFacts(online=frozenset({3}))


async def test_a_browser_on_one_process_is_online_for_the_other_and_its_assigner_hears_it(
    processes: list[Process], clock: FakeClock
) -> None:
    first, second = await start(processes, clock), await start(processes, clock)
    second.attendance.connected(7, "tab")

    await until(lambda: first.sees(7) is not None, timeout=2, what="the first sees agent 7")
    assert first.sees(7) == Availability(presence=Presence.ONLINE)
    assert first.heard == [7]
    assert second.heard == []  # its own connect: the web layer tells its assigner itself

    second.attendance.disconnected(7, "tab", now=clock.now())
    await until(
        lambda: first.sees(7) == Availability(offline_since=clock.now()),
        timeout=2,
        what="the first sees agent 7 gone",
    )


async def test_a_process_that_stops_cleanly_withdraws_its_key_at_once(
    redis: Redis, processes: list[Process], clock: FakeClock
) -> None:
    first = await start(processes, clock)
    second = Process(clock)
    await second.relay.start()
    assert await redis.exists(second.relay.key)
    await second.relay.stop()
    assert not await redis.exists(second.relay.key)
    assert await redis.exists(first.relay.key)


async def test_the_agents_of_a_process_that_stopped_publishing_are_gone_once_its_key_expires(
    redis: Redis, processes: list[Process], clock: FakeClock
) -> None:
    first = await start(processes, clock)
    # What a process wrote in its last round before it was killed.
    await redis.set(
        f"{KEY_PREFIX}killed", encode_facts(AttendanceFacts(online=frozenset({7}))), px=300
    )
    await until(lambda: first.sees(7) is not None, timeout=2, what="agent 7 seen online")
    assert first.sees(7) == Availability(presence=Presence.ONLINE)

    went = clock.advance(60)
    await until(
        lambda: first.sees(7) == Availability(offline_since=went),
        timeout=2,
        what="agent 7 offline once the key expired",
    )


async def test_a_relay_stops_at_once_whenever_it_is_asked_mid_round_or_between(
    redis: Redis, clock: FakeClock
) -> None:
    for attempt in range(12):
        process = Process(clock)
        await process.relay.start()
        process.attendance.connected(7, "tab")  # a round on its way at once
        for _ in range(attempt):  # the stop lands a step further into the round each time
            await asyncio.sleep(0)
        asked = asyncio.get_running_loop().time()
        await process.relay.stop()
        assert asyncio.get_running_loop().time() - asked < 0.5, f"attempt {attempt}"
        assert not process.relay.running
        assert not await redis.exists(process.relay.key)


async def test_unreadable_values_under_attendance_keys_are_logged_once_and_left_out(
    redis: Redis, processes: list[Process], clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    await redis.set(f"{KEY_PREFIX}garbage", b"\x00not json")
    await redis.set(f"{KEY_PREFIX}old-shape", b'{"agents": [7]}')
    await redis.hset(f"{KEY_PREFIX}a-hash", "online", "[7]")  # not a string value
    await redis.set(f"{KEY_PREFIX}fine", encode_facts(AttendanceFacts(online=frozenset({8}))))
    with caplog.at_level(logging.WARNING, logger="web.attendance_relay"):
        first = await start(processes, clock)
        rounds = first.relay.rounds
        await until(lambda: first.relay.rounds >= rounds + 5, timeout=2, what="five more rounds")

    assert first.relay.rounds > rounds and first.relay.running
    assert first.view.agent_availability() == {8: Availability(presence=Presence.ONLINE)}
    warned = sorted(r.getMessage() for r in caplog.records if "left out" in r.getMessage())
    assert len(warned) == 2, warned  # each bad key once, not every round
    assert "garbage" in warned[0] and "old-shape" in warned[1]


async def test_with_redis_away_start_up_goes_on_and_the_relay_keeps_trying_warning_once(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    attendance = Attendance()
    view = SharedAttendance(attendance, clock=clock)
    relay = AttendanceRelay(
        redis=Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2),
        view=view,
        on_available=lambda agent_id: None,
        interval=INTERVAL,
        expiry=EXPIRY,
    )
    with caplog.at_level(logging.WARNING, logger="web.attendance_relay"):
        await relay.start()
        try:
            attendance.connected(8, "tab")  # this process's own browsers still count
            assert view.agent_availability() == {8: Availability(presence=Presence.ONLINE)}
            await until(lambda: relay.rounds >= 4, timeout=2, what="rounds without Redis")
            assert relay.running
        finally:
            await relay.stop()
    warned = [r for r in caplog.records if "cannot share attendance" in r.getMessage()]
    assert len(warned) == 1


async def test_when_redis_goes_away_the_peers_last_read_count_until_they_would_have_expired(
    tmp_path: Path, clock: FakeClock
) -> None:
    server = RedisServer(tmp_path)
    await server.start()
    view = SharedAttendance(Attendance(), clock=clock)
    relay = AttendanceRelay(
        redis=Redis.from_url(server.url, socket_connect_timeout=0.2, socket_timeout=0.2),
        view=view,
        on_available=lambda agent_id: None,
        interval=INTERVAL,
        expiry=EXPIRY,
    )
    try:
        peer = Redis.from_url(server.url)
        await peer.set(f"{KEY_PREFIX}peer", encode_facts(AttendanceFacts(online=frozenset({7}))))
        await peer.aclose()
        await relay.start()
        assert view.agent_availability() == {7: Availability(presence=Presence.ONLINE)}

        await server.stop()
        away = asyncio.get_running_loop().time()
        went = clock.advance(60)
        await until(
            lambda: view.agent_availability() == {7: Availability(offline_since=went)},
            timeout=3,
            what="agent 7 forgotten",
        )
        assert asyncio.get_running_loop().time() - away >= EXPIRY * 0.9
    finally:
        await relay.stop()
        await server.stop()
