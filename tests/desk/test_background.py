"""An owned background task runs once, stops for good, and a crash is logged at once."""

from __future__ import annotations

import asyncio
import logging

import pytest

from desk.background import OwnedTask


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
