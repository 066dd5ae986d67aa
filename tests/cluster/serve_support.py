"""Real `desk serve` processes, a Redis server of their own and a fresh PostgreSQL
database, for tests that kill, restart and proxy whole processes
(tests/cluster/test_chaos.py, tests/cluster/test_behind_nginx.py).

The processes are configured as docs/deploy.md says an operator does it: the
TOML files of config/ copied into a directory of their own (``DESK_CONFIG_DIR``),
edited there, and the secrets and addresses in ``DESK_*`` environment variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from desk import migrate
from desk.db import create_engine, session_factory
from desk.demo_data import seed_demo
from desk.events import EventBus
from desk.settings import default_config_dir
from tests.conftest import POSTGRES_URL, own_postgres_database

HOST = "127.0.0.1"
START_LIMIT = 60.0  # a loaded 2-core CI machine starts `desk serve` in a few seconds


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


async def fresh_database(suffix: str) -> str:
    """``<test database>_<suffix>``, emptied, migrated and seeded with the demo data."""
    if not POSTGRES_URL:
        pytest.fail(
            "this test runs `desk serve` processes on PostgreSQL: set DESK_TEST_POSTGRES_URL "
            "(e.g. postgresql://postgres@127.0.0.1:5432/desk_test)"
        )
    url = await own_postgres_database(suffix)
    # Alembic runs an event loop of its own: off this one.
    await asyncio.to_thread(migrate.downgrade, url, "base")
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_engine(url)
    try:
        await seed_demo(
            sessions=session_factory(engine), bus=EventBus(), region="DE", now=datetime.now(UTC)
        )
    finally:
        await engine.dispose()
    return url


def config_dir(where: Path, *, edit: Callable[[str, str], str] | None = None) -> Path:
    """The shipped config/*.toml copied to ``where`` (as deploy.md's install step does),
    each file's text passed through ``edit(name, text)`` when given."""
    where.mkdir(parents=True, exist_ok=True)
    for path in sorted(default_config_dir().glob("*.toml")):
        target = where / path.name
        shutil.copy(path, target)
        if edit is not None:
            target.write_text(edit(path.name, path.read_text(encoding="utf-8")), encoding="utf-8")
    return where


def base_environment(*, database_url: str, redis_url: str, config: Path) -> dict[str, str]:
    """deploy.md's calldesk.env for a process of the test (no DESK_* of the caller's)."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("DESK_")},
        "DESK_CONFIG_DIR": str(config),
        "DESK_MODE": "production",
        "DESK_SECRET_KEY": secrets.token_urlsafe(48),
        "DESK_DATABASE_URL": database_url,
        "DESK_REDIS_URL": redis_url,
        "DESK_HOST": HOST,
        "DESK_LOG_FORMAT": "json",
    }


class RedisServer:
    """``redis-server`` on a port of its own, without persistence; stopped and started
    again on the same port when asked (a Redis restart)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://{HOST}:{self.port}/0"
        self._log = workdir / f"redis-{self.port}.log"
        self._process: asyncio.subprocess.Process | None = None
        self.restarts = 0

    async def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (Debian: apt-get install redis-server)")
        with self._log.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                binary,
                "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no",
                "--daemonize", "no",
                stdout=log, stderr=log,
            )  # fmt: skip
        client = Redis.from_url(self.url)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    await client.ping()
                    return
                except (RedisError, OSError):
                    if time.monotonic() > deadline or self._process.returncode is not None:
                        raise AssertionError(
                            self._log.read_text(errors="replace")[-2000:]
                        ) from None
                    await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), timeout=10)

    async def restart(self) -> float:
        """Stop and start again on the same port; how long it was away, in seconds."""
        began = time.monotonic()
        await self.stop()
        await self.start()
        self.restarts += 1
        return time.monotonic() - began


class DeskServe:
    """One `desk serve` process on a fixed port; killed without warning when asked."""

    def __init__(self, name: str, env: dict[str, str], *, port: int, workdir: Path) -> None:
        self.name, self.port = name, port
        self.url = f"http://{HOST}:{port}"
        self.env = {**env, "DESK_PORT": str(port)}
        self.log_path = workdir / f"serve-{name}.log"
        self.process: asyncio.subprocess.Process | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        """Start and wait until it answers /healthz."""
        desk = Path(sys.executable).parent / "desk"
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                str(desk), "serve", env=self.env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + START_LIMIT
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.process.returncode is not None:
                    break
                with contextlib.suppress(aiohttp.ClientError, OSError, ValueError):
                    if await self.health(http) is not None:
                        return
                await asyncio.sleep(0.1)
        raise AssertionError(
            f"desk serve {self.name} did not start: "
            + self.log_path.read_text(errors="replace")[-3000:]
        )

    async def health(self, http: aiohttp.ClientSession) -> dict[str, Any] | None:
        """Its /healthz body, or None when it does not answer (yet)."""
        try:
            async with http.get(
                f"{self.url}/healthz", timeout=aiohttp.ClientTimeout(total=2)
            ) as response:
                if response.status != 200:
                    return None
                body: dict[str, Any] = await response.json()
                return body
        except (aiohttp.ClientError, OSError, TimeoutError):
            return None

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no Logoff, transactions in flight cut."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        """SIGTERM, as systemd stops it; SIGKILL if it does not end in time."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=30)
        except TimeoutError:
            process.kill()
            await process.wait()

    def log_lines(self, *needles: str) -> list[str]:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [line for line in text.splitlines() if all(n in line for n in needles)]
