"""Database engine and sessions: SQLite (WAL) embedded, PostgreSQL in production."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import DateTime, event, text
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.types import TypeDecorator

from desk.inline_sqlite import connect_inline


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend.

    SQLite has no time-zone type, so values are stored as naive UTC there and
    made aware again on the way out; naive input is refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def create_engine(
    url: str,
    *,
    readers: bool = False,
    quick: bool = False,
    background_checkpoints: bool = False,
    **kwargs: Any,
) -> AsyncEngine:
    """The engine writes go through, or (``readers=True``) one for read-only work.

    SQLite has one writer at a time, and a connection waiting for the write lock
    sleeps in growing steps (1, 2, 5 … 100 ms) however soon the lock frees.  So the
    writer engine holds a single connection: writers queue for it in asyncio and
    take over the moment it is free; readers get their own engine, whose WAL
    transactions neither wait for nor block the writer.

    On SQLite the writer runs its statements on the loop's thread (see
    desk/inline_sqlite.py); so do ``quick`` readers, for short indexed reads on the
    critical path of a screen pop (the caller card), where each thread round trip
    would add to the time before the agent sees who is calling.
    """
    if not url.startswith("sqlite"):
        return create_async_engine(url, pool_pre_ping=True, **kwargs)
    database = sqlite_database(url)
    if database is not None and (quick or not readers):
        # The writer gives the loop a turn between statements; a quick read is over
        # before that would matter, and it sits on a pop's path.
        kwargs.setdefault(
            "async_creator", partial(connect_inline, database, gives_turns=not readers)
        )
    if not readers:
        kwargs = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 30, **kwargs}
    engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
    # With background checkpoints (desk/wal_checkpoints.py, the service) no commit
    # on the loop's thread stops to copy the log back and fsync.
    pragmas = partial(_sqlite_pragmas, autocheckpoint=not background_checkpoints, reader=readers)
    event.listen(engine.sync_engine, "connect", pragmas)
    event.listen(engine.sync_engine, "begin", _sqlite_deferred if readers else _sqlite_immediate)
    return engine


def sqlite_database(url: str) -> str | None:
    """The database file of a SQLite URL; None for PostgreSQL and in-memory SQLite."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return None if database.startswith("file:") else database


def _sqlite_pragmas(
    dbapi_connection: Any, _record: Any, *, autocheckpoint: bool = True, reader: bool = False
) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers go on while one writer commits; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # The inline writer waits for another process's lock in asyncio, never in SQLite;
    # a WAL reader is busy only for an instant (log recovery), so it may wait briefly.
    inline = getattr(dbapi_connection.driver_connection, "runs_inline", False)
    busy_ms = (20 if reader else 0) if inline else 30000
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    if not autocheckpoint:
        cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()
    # The driver's own transaction handling commits at SAVEPOINT, so a nested
    # transaction would survive its parent's rollback; take over BEGIN ourselves
    # (SQLAlchemy's documented recipe for pysqlite/aiosqlite).
    dbapi_connection.isolation_level = None


def _sqlite_immediate(connection: Any) -> None:
    # IMMEDIATE: take the write lock up front, so a transaction that read first
    # cannot fail with "database is locked" when it writes after another process
    # (the CLI, a second server) committed.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_deferred(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def database_status(engine: AsyncEngine) -> str:
    """'ok' or a short description of why the database cannot be reached."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not ok"; the health check says why
        return f"error: {type(exc).__name__}: {exc}"[:200]
    return "ok"
