"""An owned background task runs once, stops for good, and a crash is logged at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from desk.background import OwnedTask, PokedLoop


async def test_a_second_start_while_running_does_not_start_another_loop() -> None:
    runs: list[int] = []

    async def loop() -> None:
        runs.append(1)
        await asyncio.Event().wait()

    task = OwnedTask("probe", loop)
    task.start()
    task.start()
    await asyncio.sleep(0)
    assert runs == [1] and task.running
    await task.stop()


async def test_stop_cancels_the_loop_and_waits_for_its_cleanup() -> None:
    cleaned = asyncio.Event()

    async def loop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.set()

    task = OwnedTask("probe", loop)
    task.start()
    await asyncio.sleep(0)
    await task.stop()
    assert cleaned.is_set() and not task.running


async def test_a_loop_that_dies_is_logged_when_it_dies(caplog: pytest.LogCaptureFixture) -> None:
    async def loop() -> None:
        raise RuntimeError("broken")

    task = OwnedTask("probe", loop)
    with caplog.at_level(logging.ERROR, logger="desk.background"):
        task.start()
        await asyncio.sleep(0.01)
    assert "background task probe died" in caplog.text
    assert not task.running
    await task.stop()


async def test_a_loop_that_swallows_a_cancellation_is_cancelled_again_and_stops() -> None:
    swallowed = 0

    async def loop() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed > 1:
                    raise
                # As redis-py may do when the cancellation lands mid-command.

    task = OwnedTask("stubborn", loop)
    task.start()
    await asyncio.sleep(0)

    async with asyncio.timeout(5):
        await task.stop(patience=0.05)

    assert swallowed == 2 and not task.running


async def _until(predicate: Callable[[], bool], *, limit: float = 2.0) -> None:
    async with asyncio.timeout(limit):
        while not predicate():
            await asyncio.sleep(0.001)


async def test_a_poke_ends_the_sleep_a_round_asked_for() -> None:
    async def round_() -> float:
        return 3600.0  # nothing due for an hour

    loop = PokedLoop("probe", round_, retry=3600.0)
    loop.start()
    await _until(lambda: loop.rounds == 1)
    loop.poke()
    await _until(lambda: loop.rounds == 2, limit=1.0)
    await loop.stop()
    assert not loop.running


async def test_a_round_that_fails_is_logged_and_the_next_comes_after_the_retry_delay(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes = ["fail", "ok"]

    async def round_() -> float:
        if outcomes.pop(0) == "fail":
            raise ConnectionError("database away")
        return 3600.0

    loop = PokedLoop("probe", round_, retry=0.05)
    with caplog.at_level(logging.ERROR):
        loop.start()
        await _until(lambda: loop.rounds == 2)  # no poke: the retry delay brought it
    assert loop.running
    assert "probe: round failed; retrying in 0.05 s" in caplog.text
    await loop.stop()


async def test_a_poke_during_a_round_brings_another_round_right_after_it() -> None:
    gate = asyncio.Event()

    async def round_() -> float:
        await gate.wait()
        return 3600.0

    loop = PokedLoop("probe", round_, retry=3600.0)
    loop.start()
    await _until(lambda: loop.rounds == 1)
    loop.poke()  # while the round still works
    gate.set()
    await _until(lambda: loop.rounds == 2, limit=1.0)
    await loop.stop()
