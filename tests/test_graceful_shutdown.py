"""`desk serve` on SIGTERM: it stops accepting, lets the request in flight finish,
sends the browsers away, logs off the PBX and exits 0 — in seconds, not after its
whole shutdown timeout."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sqlite3
import sys
import time
from pathlib import Path

import aiohttp
import pytest
import socketio

from cti.simulator import PbxSimulator
from desk.clock import SystemClock
from desk.db import create_engine, session_factory
from desk.models import Role
from desk.users import AgentIn, UserDraft, create_user
from tests.conftest import TEST_SECRET
from web.notifier import Notifier

AMI_SECRET = "graceful-ami-secret"
PASSWORD = "correct horse battery"
SHUTDOWN_TIMEOUT = 30  # what a websocket left open would hold the exit for


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _add_agent(url: str) -> None:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            await create_user(
                session,
                UserDraft(
                    username="alice",
                    display_name="Alice",
                    password=PASSWORD,
                    role=Role.AGENT,
                    agent=AgentIn(extension="1001"),
                ),
                now=SystemClock().now(),
            )
            await session.commit()
    finally:
        await engine.dispose()


async def _sign_in(base: str, *, request_id: str) -> tuple[int, str | None]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{base}/api/v1/auth/login",
            json={"username": "alice", "password": PASSWORD},
            headers={"X-Request-Id": request_id},
        ) as response,
    ):
        await response.read()
        return response.status, response.headers.get("X-Request-Id")


async def _ready(base: str, process: asyncio.subprocess.Process, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            assert process.returncode is None, "desk serve exited during start-up"
            try:
                async with http.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"desk serve not ready within {limit}s")


async def test_sigterm_finishes_the_request_in_flight_logs_off_the_pbx_and_exits_0(
    sqlite_template: Path, tmp_path: Path
) -> None:
    database = tmp_path / "desk.db"
    shutil.copy(sqlite_template, database)
    url = f"sqlite+aiosqlite:///{database}"
    await _add_agent(url)
    sim = PbxSimulator(host="127.0.0.1", port=0, username="desk", secret=AMI_SECRET)
    await sim.start()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESK_")} | {
        "DESK_SECRET_KEY": TEST_SECRET,
        "DESK_DATABASE_URL": url,
        "DESK_PORT": str(port),
        "DESK_AMI_HOST": "127.0.0.1",
        "DESK_AMI_PORT": str(sim.port),
        "DESK_AMI_USERNAME": "desk",
        "DESK_AMI_SECRET": AMI_SECRET,
        "DESK_LOG_FORMAT": "json",
        "DESK_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT),
    }
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "desk"),
            "serve",
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
    browser = socketio.AsyncClient(reconnection=False)
    sent_away = asyncio.Event()
    browser.on("disconnect", lambda *_: sent_away.set())
    try:
        await _ready(base, process)
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{base}/api/v1/auth/login", json={"username": "alice", "password": PASSWORD}
            ) as response,
        ):
            assert response.status == 200, await response.text()
            token = (await response.json())["token"]
        await browser.connect(base, auth={"token": token}, transports=["websocket"])

        # A sign-in in flight: it waits for the database, whose write lock we hold.
        lock = sqlite3.connect(database, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        sign_in = asyncio.create_task(_sign_in(base, request_id="slow-sign-in"))
        await asyncio.sleep(0.5)
        assert not sign_in.done()

        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        await asyncio.sleep(1.0)
        assert process.returncode is None, "exited with a request in flight"
        try:
            _, refused = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            pass
        else:
            refused.close()
            raise AssertionError("still accepting connections after SIGTERM")

        lock.execute("ROLLBACK")
        lock.close()
        assert await asyncio.wait_for(sign_in, timeout=5) == (200, "slow-sign-in")

        code = await asyncio.wait_for(process.wait(), timeout=15)
        took = time.monotonic() - signalled
        await asyncio.wait_for(sent_away.wait(), timeout=2)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        if browser.connected:
            await browser.disconnect()
        await sim.stop()

    lines = stderr_path.read_text().splitlines()
    assert code == 0, lines[-20:]
    assert took < 6, f"took {took:.1f}s: something held the shutdown"
    assert any((frame.get("Action") or "").lower() == "logoff" for frame in sim.actions_received)
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any("closing 1 socket.io connections" in r["message"] for r in records), records


class _SwallowingServer:
    """An emit that swallows a cancellation landing mid-publish, as redis-py (under
    socket.io's Redis manager) now and then does."""

    async def emit(self, *_: object, **__: object) -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return


async def test_a_cancellation_swallowed_inside_an_emit_still_stops_the_emitting_task() -> None:
    notifier = Notifier(sio=_SwallowingServer())  # type: ignore[arg-type]
    publishing = asyncio.create_task(notifier.emit("sla_board", {}, rooms=["supervisors"]))
    await asyncio.sleep(0.01)
    publishing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(publishing, timeout=1)
