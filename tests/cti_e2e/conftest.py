"""The whole desk against the PBX simulator: real TCP, real AMI, real socket.io.

``e2e`` seeds the demo data, starts a :class:`PbxSimulator` on a free port,
serves ``create_app`` (with the real ``SystemClock``: the normaliser stamps
events with the time they arrive) on a real port, signs in alice, bob, carol,
dave and sam over the API and connects one socket.io client ("browser") for
each, recording every ``(event, data)`` it receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import socketio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlalchemy import select

from cti.ami import AmiError
from cti.link import PbxLink
from cti.simulator import PbxSimulator
from desk.demo_data import DEMO_PASSWORD, seed_demo
from desk.events import EventBus
from desk.models import Call, Customer
from desk.settings import Settings
from tests.conftest import Database
from web.app import NOTIFIER, create_app
from web.state import LINK

AMI_USER = "desk"
AMI_SECRET = "e2e-ami-secret"
AGENTS = ("alice", "bob", "carol", "dave")
PEOPLE = (*AGENTS, "sam")
SYNC = "e2e_sync"


async def until(condition: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    """Poll ``condition`` every 10 ms; fail with ``what`` after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"not within {timeout:g}s: {what or condition}") from None


@dataclass
class Browser:
    """One socket.io client and everything it received, in order."""

    who: str
    user_id: int
    sio: socketio.AsyncClient
    received: list[tuple[str, Any]] = field(default_factory=list)

    def events(self, name: str) -> list[Any]:
        return [data for event, data in self.received if event == name]

    def names(self) -> list[str]:
        return [event for event, _ in self.received if event != SYNC]

    def pops(self, call_id: str | None = None) -> list[dict[str, Any]]:
        return [p for p in self.events("screen_pop") if call_id is None or p["call_id"] == call_id]

    def phases(self, call_id: str | None = None) -> list[str]:
        return [p["phase"] for p in self.pops(call_id)]

    def synced(self, n: int) -> bool:
        return any(event == SYNC and data == {"n": n} for event, data in self.received)


@dataclass
class E2E:
    sim: PbxSimulator
    client: TestClient[web.Request, web.Application]
    database: Database
    tokens: dict[str, str]
    user_ids: dict[str, int]
    agent_ids: dict[str, int]
    browsers: dict[str, Browser]
    extra_browsers: list[Browser] = field(default_factory=list)
    _sync: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        return str(self.client.make_url("/"))

    @property
    def link(self) -> PbxLink:
        app: web.Application = self.client.app
        return app[LINK]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def agent_of(self, agent_id: int | None) -> str | None:
        return next((who for who, aid in self.agent_ids.items() if aid == agent_id), None)

    async def healthz(self) -> dict[str, Any]:
        response = await self.client.get("/healthz")
        body: dict[str, Any] = await response.json()
        return body

    async def board(self) -> dict[str, Any]:
        response = await self.client.get("/api/v1/board", headers=self.auth("sam"))
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    async def calls(self) -> list[Call]:
        async with self.database.sessions() as session:
            return list((await session.scalars(select(Call).order_by(Call.id))).all())

    async def customer_id(self, name: str) -> int:
        async with self.database.sessions() as session:
            found = await session.scalar(select(Customer.id).where(Customer.name == name))
        assert found is not None, name
        return found

    async def connect(self, who: str) -> Browser:
        """Another browser of ``who`` (a second tab, or a reconnect)."""
        browser = await _browser(self.url, who, self.tokens[who], self.user_ids[who])
        self.extra_browsers.append(browser)
        return browser

    def all_browsers(self) -> list[Browser]:
        return [*self.browsers.values(), *self.extra_browsers]

    async def settle(self) -> None:
        """Wait until everything the PBX sent so far is recorded and has reached every browser.

        The AMI reply to a Ping comes after every event sent before it on the same
        socket; the recorder then drains; finally a marker emitted to every user
        arrives after all messages emitted to them before it.
        """
        with contextlib.suppress(AmiError):
            await self.link.client.send_action("Ping", reply_timeout=2.0)
        async with asyncio.timeout(10):
            await self.link.recorder.drained()
        n = next(self._sync)
        browsers = [b for b in self.all_browsers() if b.sio.connected]
        rooms = sorted({f"user:{b.user_id}" for b in browsers})
        await self.client.app[NOTIFIER].emit(SYNC, {"n": n}, rooms=rooms)
        await until(lambda: all(b.synced(n) for b in browsers), what="browsers synced")

    async def play(self, name: str, *, speed: float | None = None) -> None:
        await self.sim.play(name, speed=speed)
        await self.settle()


async def _browser(url: str, who: str, token: str, user_id: int) -> Browser:
    sio = socketio.AsyncClient(reconnection=False)
    browser = Browser(who, user_id, sio)
    sio.on("*", lambda event, data: browser.received.append((event, data)))
    await sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=5)
    return browser


def desk_settings(
    settings: Settings, sim: PbxSimulator | None, *, secret: str = AMI_SECRET
) -> Settings:
    if sim is None:
        return settings
    return settings.model_copy(
        update={
            "ami_host": sim.host,
            "ami_port": sim.port,
            "ami_username": AMI_USER,
            "ami_secret": SecretStr(secret),
            "ami_ping_interval": 2.0,
        }
    )


@asynccontextmanager
async def running_desk(
    settings: Settings,
    database: Database,
    *,
    sim_secret: str = AMI_SECRET,
    desk_secret: str = AMI_SECRET,
    with_pbx: bool = True,
    wait_connected: bool = True,
    browsers: tuple[str, ...] = PEOPLE,
    port: int = 0,
) -> AsyncIterator[E2E]:
    await seed_demo(sessions=database.sessions, bus=EventBus(), region="DE", now=datetime.now(UTC))
    sim = PbxSimulator(host="127.0.0.1", port=0, username=AMI_USER, secret=sim_secret)
    await sim.start()
    client: TestClient[web.Request, web.Application] | None = None
    desk: E2E | None = None
    try:
        app = create_app(desk_settings(settings, sim if with_pbx else None, secret=desk_secret))
        client = TestClient(TestServer(app, host="127.0.0.1", port=port))
        await client.start_server()
        tokens, user_ids, agent_ids = {}, {}, {}
        for who in PEOPLE:
            response = await client.post(
                "/api/v1/auth/login", json={"username": who, "password": DEMO_PASSWORD}
            )
            assert response.status == 200, await response.text()
            body = await response.json()
            tokens[who], user_ids[who] = body["token"], body["user"]["id"]
            if body["user"]["agent"] is not None:
                agent_ids[who] = body["user"]["agent"]["id"]
        # Sign-ins left cookies behind; requests say who they are with a bearer token.
        client.session.cookie_jar.clear()
        desk = E2E(sim, client, database, tokens, user_ids, agent_ids, {})
        if with_pbx and wait_connected:
            link = desk.link
            await until(
                lambda: link.status()["status"] == "connected" and link.resyncs >= 1,
                what="AMI link connected and resynced",
            )
            assert (await desk.healthz())["ami"]["status"] == "connected"
        for who in browsers:
            desk.browsers[who] = await _browser(desk.url, who, tokens[who], user_ids[who])
        yield desk
    finally:
        if desk is not None:
            for browser in desk.all_browsers():
                if browser.sio.connected:
                    await browser.sio.disconnect()
        if client is not None:
            await client.close()
        await sim.stop()


@pytest.fixture
async def e2e(settings: Settings, database: Database) -> AsyncIterator[E2E]:
    async with running_desk(settings, database) as desk:
        yield desk


# -- invariants every scenario must keep -------------------------------------------------


def assert_pops_consistent(desk: E2E) -> None:
    """No browser gets the same (call, phase) twice; each agent's ``seq`` strictly rises;
    every pop names the agent whose screen it reached."""
    for browser in desk.all_browsers():
        pops = browser.pops()
        keys = Counter((p["call_id"], p["phase"]) for p in pops)
        assert [k for k, n in keys.items() if n > 1] == [], f"duplicate pops for {browser.who}"
        seqs = [p["seq"] for p in pops]
        assert seqs == sorted(set(seqs)), f"seq not strictly increasing for {browser.who}: {seqs}"
        if pops:
            assert {p["agent"]["id"] for p in pops} == {desk.agent_ids[browser.who]}


def pop_summary(desk: E2E) -> dict[str, list[tuple[str, str]]]:
    """(phase, reason) per agent, over every browser of the main set."""
    return {
        who: [(p["phase"], p["reason"]) for p in browser.pops()]
        for who, browser in desk.browsers.items()
    }
