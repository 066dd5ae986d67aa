"""Shared fixtures: a migrated database on SQLite always, and on PostgreSQL when
DESK_TEST_POSTGRES_URL is set; a fake clock; settings for tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import kb.records  # noqa: F401  (its tables are on Base.metadata, truncated below)
from desk import migrate
from desk.auth import use_cheap_hashing_for_tests
from desk.clock import FakeClock
from desk.db import create_engine, session_factory
from desk.events import EventBus
from desk.models import Base
from desk.settings import Settings, load_settings

POSTGRES_URL = os.environ.get("DESK_TEST_POSTGRES_URL", "")
TEST_SECRET = "test-secret-key-0123456789abcdef0123456789"
BACKENDS = ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]


def _asyncpg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> None:
    use_cheap_hashing_for_tests()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once; each test gets a copy of the file, which is much faster."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_migrated() -> str:
    url = _asyncpg(POSTGRES_URL)
    migrate.downgrade(url, "base")
    migrate.upgrade(url)
    return url


async def own_postgres_database(suffix: str) -> str:
    """A database of its own beside the test one (``<test>_<suffix>``, created when
    missing), for tests that start their own server or migrate from nothing, so
    parallel runs on other databases stay apart."""
    server, _, name = _asyncpg(POSTGRES_URL).rpartition("/")
    own = f"{name}_{suffix}"
    engine = create_engine(f"{server}/postgres")
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        exists = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": own})
        if not exists:
            await conn.execute(text(f'CREATE DATABASE "{own}"'))
    await engine.dispose()
    return f"{server}/{own}"


@dataclass
class Database:
    backend: str
    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "desk.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
    else:
        yield request.getfixturevalue("postgres_migrated")


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    engine = create_engine(database_url)
    if database_url.startswith("postgresql"):
        async with engine.begin() as conn:
            tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    backend = "postgres" if database_url.startswith("postgresql") else "sqlite"
    yield Database(backend, database_url, engine, session_factory(engine))
    await engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        environ={},
        overrides={
            "mode": "test",
            "secret_key": TEST_SECRET,
            "database_url": database_url,
            "phone_region": "DE",
        },
    )
