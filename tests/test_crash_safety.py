"""Crash safety: `desk serve` killed with SIGKILL in the middle of a burst of ticket
writes loses none that it answered 2xx — on SQLite (WAL) and on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select, text

from desk import migrate
from desk.db import create_engine, session_factory
from desk.models import Role, Ticket
from desk.users import UserDraft, create_user
from tests.conftest import POSTGRES_URL, own_postgres_database

SECRET = "crash-test-secret-0123456789abcdef0123456789"
PASSWORD = "correct horse battery"
WRITERS = 16


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _backends() -> list[str]:
    return ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    url = asyncio.run(own_postgres_database("crash"))
    migrate.downgrade(url, "base")
    return url


async def _seed(url: str) -> None:
    engine = create_engine(url)
    async with session_factory(engine)() as session:
        draft = UserDraft(username="ann", display_name="Ann", password=PASSWORD, role=Role.AGENT)
        await create_user(session, draft, now=datetime.now(UTC))
        await session.commit()
    await engine.dispose()


class Service:
    """`desk serve` in a process of its own, killed without warning when asked."""

    def __init__(self, url: str, workdir: Path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DESK_")},
            "DESK_SECRET_KEY": SECRET,
            "DESK_DATABASE_URL": url,
            "DESK_PORT": str(self.port),
        }
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        desk = Path(sys.executable).parent / "desk"
        with (self.workdir / "serve.log").open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                str(desk), "serve", env=self.env, cwd=self.workdir, stdout=log, stderr=log
            )
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{self.base}/healthz") as response:
                        if response.status == 200:
                            return
                if self.process.returncode is not None:
                    break
                await asyncio.sleep(0.1)
        raise AssertionError((self.workdir / "serve.log").read_text(errors="replace")[-3000:])

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), timeout=20)


@pytest.fixture
async def service(database_url: str, tmp_path: Path) -> AsyncIterator[Service]:
    await asyncio.to_thread(migrate.upgrade, database_url)
    await _seed(database_url)
    running = Service(database_url, tmp_path)
    yield running
    await running.stop()


async def _token(service: Service) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{service.base}/api/v1/auth/login", json={"username": "ann", "password": PASSWORD}
        ) as response,
    ):
        assert response.status == 200, await response.text()
        return str((await response.json())["token"])


async def _write_until_killed(service: Service, token: str) -> list[str]:
    """WRITERS clients open tickets as fast as they can; SIGKILL once some are in;
    the subjects the service answered 201 for."""
    acknowledged: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}

    async def writer(n: int, http: aiohttp.ClientSession) -> None:
        for i in range(10_000):
            subject = f"crash burst {n}-{i}"
            try:
                async with http.post(
                    f"{service.base}/api/v1/tickets", json={"subject": subject}, headers=headers
                ) as response:
                    if response.status == 201:
                        acknowledged.append(subject)
                    else:
                        assert response.status >= 500, await response.text()
            except (TimeoutError, aiohttp.ClientError):
                return  # the service is gone

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        writers = [asyncio.create_task(writer(n, http)) for n in range(WRITERS)]
        while len(acknowledged) < 200:
            await asyncio.sleep(0.01)
        await service.kill()  # in the middle of the burst: requests in flight, commits under way
        await asyncio.gather(*writers)
    return acknowledged


async def _subjects(url: str) -> set[str]:
    engine = create_engine(url)
    async with session_factory(engine)() as session:
        found = set(await session.scalars(select(Ticket.subject)))
    await engine.dispose()
    return found


async def _sqlite_intact(url: str) -> str:
    engine = create_engine(url)
    async with engine.connect() as conn:
        verdict = str(await conn.scalar(text("PRAGMA integrity_check")))
    await engine.dispose()
    return verdict


async def test_every_ticket_answered_201_before_a_sigkill_is_there_after_the_restart(
    service: Service, database_url: str
) -> None:
    await service.start()
    token = await _token(service)

    acknowledged = await _write_until_killed(service, token)
    await service.start()  # recovery is the service's own start-up

    stored = await _subjects(database_url)
    assert len(acknowledged) >= 200
    assert sorted(set(acknowledged) - stored) == []
    if database_url.startswith("sqlite"):
        assert await _sqlite_intact(database_url) == "ok"
    # The restarted service answers and writes again.
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{service.base}/api/v1/tickets",
            json={"subject": "after the crash"},
            headers={"Authorization": f"Bearer {token}"},
        ) as response,
    ):
        assert response.status == 201, await response.text()


async def test_a_crash_leaves_no_ticket_half_written(service: Service, database_url: str) -> None:
    await service.start()
    await _write_until_killed(service, await _token(service))

    engine = create_engine(database_url)
    async with session_factory(engine)() as session:
        # Every ticket has its "opened" change beside it: both go in one transaction.
        orphans = await session.scalar(
            text(
                "SELECT count(*) FROM tickets t WHERE NOT EXISTS "
                "(SELECT 1 FROM ticket_changes c WHERE c.ticket_id = t.id)"
            )
        )
        total = await session.scalar(select(func.count()).select_from(Ticket))
    await engine.dispose()
    assert total and orphans == 0
