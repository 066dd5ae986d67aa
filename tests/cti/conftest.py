"""Fixtures for the AMI link tests: a real simulator on a free port and clients of it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from cti.ami import AmiClient, LinkState, LinkStatus
from cti.frames import Frame
from cti.simulator import PbxSimulator

SECRET = "change-me"


async def eventually(check: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@dataclass
class Link:
    """A client plus everything it reported."""

    client: AmiClient
    frames: list[Frame] = field(default_factory=list)
    states: list[LinkState] = field(default_factory=list)
    resyncs: int = 0

    def events(self, name: str) -> list[Frame]:
        return [frame for frame in self.frames if frame.event == name]

    def connections(self) -> int:
        return sum(state.status is LinkStatus.CONNECTED for state in self.states)


MakeLink = Callable[..., Awaitable[Link]]


@pytest.fixture
async def sim() -> AsyncIterator[PbxSimulator]:
    simulator = PbxSimulator(secret=SECRET)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def make_link(sim: PbxSimulator) -> AsyncIterator[MakeLink]:
    """Start a client of ``sim`` with test-sized timers; ``wait=False`` skips waiting for login."""
    links: list[Link] = []

    async def make(
        *,
        secret: str = SECRET,
        on_frame: Callable[[Frame], None] | None = None,
        on_connected: Callable[[Link], Awaitable[None]] | None = None,
        wait: bool = True,
        **timers: Any,
    ) -> Link:
        settings: dict[str, Any] = {
            "ping_interval": 5.0,
            "pong_timeout": 1.0,
            "backoff_initial": 0.05,
            "backoff_max": 0.2,
            "connect_timeout": 1.0,
            "action_timeout": 2.0,
        }
        settings.update(timers)
        link: Link

        def record(frame: Frame) -> None:
            link.frames.append(frame)
            if on_frame is not None:
                on_frame(frame)

        async def resync() -> None:
            link.resyncs += 1
            if on_connected is not None:
                await on_connected(link)

        client = AmiClient(
            "127.0.0.1",
            sim.port,
            "desk",
            secret,
            on_frame=record,
            on_state=lambda state: link.states.append(state),
            on_connected=resync,
            **settings,
        )
        link = Link(client)
        links.append(link)
        client.start()
        if wait:
            await eventually(lambda: client.connected)
        return link

    yield make
    for link in links:
        await link.client.stop()
