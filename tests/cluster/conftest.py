"""Several desk processes on one PostgreSQL database and one Redis, one PBX simulator.

Each "process" is a ``create_app`` server on its own port in this test process:
its own engines, socket.io server (fanning out through Redis), PBX link holder
and lease connection, exactly as separate ``desk serve`` processes would have.
Browsers are real socket.io clients connected to the process a test chooses.

These tests need PostgreSQL and Redis; without DESK_TEST_POSTGRES_URL and
DESK_TEST_REDIS_URL they fail (rather than skip), so a CI without them shows red.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp.test_utils import TestServer
from sqlalchemy import select, text

from cti.link import PbxLink
from cti.simulator import PbxSimulator
from desk.db import create_engine, session_factory
from desk.demo_data import DEMO_PASSWORD, seed_demo
from desk.events import EventBus
from desk.leases import lease_key
from desk.models import Base, Call
from desk.settings import Settings, load_settings
from tests.conftest import TEST_SECRET, Database
from tests.cti_e2e.conftest import AMI_SECRET, AMI_USER, SYNC, Browser, until
from web.app import NOTIFIER, create_app
from web.state import LINK, SIO, SWITCHBOARD
from web.switchboard import Switchboard

POSTGRES_URL = os.environ.get("DESK_TEST_POSTGRES_URL", "")
REDIS_URL = os.environ.get("DESK_TEST_REDIS_URL", "")
PEOPLE = ("alice", "bob", "carol", "dave", "sam")
PBX_LINK_LEASE = lease_key("pbx-link")
# The promise: a process dies, another holds the link this soon.
TAKEOVER_LIMIT_S = 5.0


@dataclass
class Process:
    """One desk server of the cluster."""

    name: str
    server: TestServer

    @property
    def url(self) -> str:
        return str(self.server.make_url("/"))

    @property
    def link(self) -> PbxLink:
        return self.server.app[LINK]

    @property
    def switchboard(self) -> Switchboard:
        return self.server.app[SWITCHBOARD]

    @property
    def holding(self) -> bool:
        return self.switchboard.holding

    def linked(self) -> bool:
        """Holds the link, logged in to the PBX and resynced since."""
        status = self.link.status()
        return self.holding and status["status"] == "connected" and status["resyncs"] >= 1


@dataclass
class Cluster:
    sim: PbxSimulator
    database: Database
    settings: Settings
    http: aiohttp.ClientSession
    processes: list[Process] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, int] = field(default_factory=dict)
    agent_ids: dict[str, int] = field(default_factory=dict)
    browsers: list[Browser] = field(default_factory=list)
    _sync: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def start(self, name: str) -> Process:
        server = TestServer(create_app(self.settings), host="127.0.0.1", port=0)
        await server.start_server()
        process = Process(name, server)
        self.processes.append(process)
        return process

    async def stop(self, process: Process) -> None:
        self.processes.remove(process)
        await process.server.close()

    def holder(self) -> Process:
        holders = [p for p in self.processes if p.holding]
        assert len(holders) == 1, [p.name for p in holders]
        return holders[0]

    async def sign_in(self) -> None:
        process = self.processes[0]
        for who in PEOPLE:
            async with self.http.post(
                f"{process.url}api/v1/auth/login",
                json={"username": who, "password": DEMO_PASSWORD},
            ) as response:
                assert response.status == 200, await response.text()
                body = await response.json()
            self.tokens[who], self.user_ids[who] = body["token"], body["user"]["id"]
            if body["user"]["agent"] is not None:
                self.agent_ids[who] = body["user"]["agent"]["id"]
        self.http.cookie_jar.clear()

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def connect(self, who: str, process: Process) -> Browser:
        """A browser of ``who`` on ``process``, recording everything it receives."""
        client = socketio.AsyncClient(reconnection=False)
        browser = Browser(who, self.user_ids[who], client)
        client.on("*", lambda event, data: browser.received.append((event, data)))
        await client.connect(
            process.url, auth={"token": self.tokens[who]}, transports=["websocket"], wait_timeout=5
        )
        self.browsers.append(browser)
        return browser

    async def settle(self) -> None:
        """Everything the PBX sent so far is recorded and has reached every browser,
        whichever process it is connected to (see tests/cti_e2e/conftest.py)."""
        holder = self.holder()
        await holder.link.client.send_action("Ping", reply_timeout=2.0)
        async with asyncio.timeout(10):
            await holder.link.recorder.drained()
        n = next(self._sync)
        browsers = [b for b in self.browsers if b.sio.connected]
        rooms = sorted({f"user:{b.user_id}" for b in browsers})
        # From the holder, which emitted the pops: through Redis, in order behind them.
        await holder.server.app[NOTIFIER].emit(SYNC, {"n": n}, rooms=rooms)
        await until(lambda: all(b.synced(n) for b in browsers), what="browsers synced")

    async def play(self, name: str, *, speed: float | None = None) -> None:
        await self.sim.play(name, speed=speed)
        await self.settle()

    async def calls(self) -> list[Call]:
        async with self.database.sessions() as session:
            return list((await session.scalars(select(Call).order_by(Call.id))).all())

    async def wait_for_holder(self, *, limit: float = TAKEOVER_LIMIT_S) -> Process:
        """The one process that holds the link, logged in and resynced, within ``limit``."""
        await until(
            lambda: any(p.linked() for p in self.processes),
            timeout=limit,
            what="a process holds the PBX link, logged in and resynced",
        )
        return self.holder()

    async def request(
        self, method: str, process: Process, path: str, who: str, body: Any = None
    ) -> tuple[int, Any]:
        async with self.http.request(
            method, f"{process.url}{path.lstrip('/')}", json=body, headers=self.auth(who)
        ) as response:
            kind = response.content_type
            answer = await response.json() if kind == "application/json" else await response.text()
            return response.status, answer


def require_cluster_services() -> tuple[str, str]:
    if not POSTGRES_URL or not REDIS_URL:
        pytest.fail(
            "tests/cluster need PostgreSQL and Redis: set DESK_TEST_POSTGRES_URL and "
            "DESK_TEST_REDIS_URL (e.g. postgresql://postgres@127.0.0.1:5432/desk_test and "
            "redis://127.0.0.1:6379/0)"
        )
    return POSTGRES_URL, REDIS_URL


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> str:
    """The migrated test database (the check comes first: it says what is missing)."""
    require_cluster_services()
    url: str = request.getfixturevalue("postgres_migrated")
    return url


@pytest.fixture
async def postgres(postgres_url: str) -> AsyncIterator[Database]:
    url = postgres_url
    engine = create_engine(url)
    async with engine.begin() as conn:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield Database("postgres", url, engine, session_factory(engine))
    await engine.dispose()


@pytest.fixture
async def cluster(postgres: Database) -> AsyncIterator[Cluster]:
    """Seeded demo data, a started PBX simulator, and settings for its processes;
    each test starts the processes it needs (``cluster.start``)."""
    _, redis_url = require_cluster_services()
    await seed_demo(sessions=postgres.sessions, bus=EventBus(), region="DE", now=datetime.now(UTC))
    sim = PbxSimulator(host="127.0.0.1", port=0, username=AMI_USER, secret=AMI_SECRET)
    await sim.start()
    settings = load_settings(
        environ={},
        overrides={
            "mode": "test",
            "secret_key": TEST_SECRET,
            "database_url": postgres.url,
            "redis_url": redis_url,
            "phone_region": "DE",
            "ami_host": sim.host,
            "ami_port": sim.port,
            "ami_username": AMI_USER,
            "ami_secret": AMI_SECRET,
            "ami_ping_interval": 2.0,
            # Every test signs the same people in again: not what these tests are about.
            "rate_limits_enabled": False,
        },
    )
    http = aiohttp.ClientSession()
    cluster = Cluster(sim, postgres, settings, http)
    try:
        yield cluster
    finally:
        for browser in cluster.browsers:
            if browser.sio.connected:
                await browser.sio.disconnect()
        # A server shutting down while a socket it has not yet seen go is still open
        # waits for that socket (engineio), seconds or for ever.
        for process in cluster.processes:
            await until(lambda p=process: not p.server.app[SIO].eio.sockets, what="sockets gone")
        for process in list(cluster.processes):
            await cluster.stop(process)
        await http.close()
        await sim.stop()


def assert_each_pop_once(browsers: list[Browser]) -> None:
    """No browser got one (call, phase) twice, and each agent's ``seq`` strictly rises."""
    for browser in browsers:
        pops = browser.pops()
        twice = [k for k, n in Counter((p["call_id"], p["phase"]) for p in pops).items() if n > 1]
        assert twice == [], f"{browser.who} got pops twice: {twice}"
        seqs = [p["seq"] for p in pops]
        assert seqs == sorted(set(seqs)), f"{browser.who}: seq not rising: {seqs}"


async def terminate_lock_session(database: Database, key: int = PBX_LINK_LEASE) -> int:
    """Kill the PostgreSQL session that holds a lease (the PBX link's), as a crashed
    process or a cut connection would end it; its backend pid."""
    async with database.engine.connect() as conn:
        pid = await conn.scalar(
            text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = :key"
            ),
            {"key": key},
        )
        assert pid is not None, "nobody holds the lease"
        assert await conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    return int(pid)


@contextlib.asynccontextmanager
async def lease_held_elsewhere(database: Database) -> AsyncIterator[None]:
    """The PBX link lease held by a session that runs no desk (a process hung with
    its lock connection still open): nobody answers for the link."""
    async with database.engine.connect() as conn:
        assert await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": PBX_LINK_LEASE})
        try:
            yield
        finally:
            await conn.scalar(text("SELECT pg_advisory_unlock(:key)"), {"key": PBX_LINK_LEASE})
