"""Alembic environment: runs migrations over the async engine of the configured URL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from desk.db import create_engine
from desk.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _sqlite_foreign_keys(connection: Connection, *, on: bool) -> None:
    """Straight on the driver's connection: SQLAlchemy would open a transaction first,
    and inside one SQLite ignores this pragma."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    cursor.close()


def _foreign_key_problems(connection: Connection) -> list[str]:
    rows = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    return [f"{table} row {rowid} -> {parent}" for table, rowid, parent, _ in rows]


async def _run_async(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # To drop a column SQLite rebuilds the table and drops the old one; with
                # foreign keys on, that drop would delete every row pointing at it (the
                # messages of every ticket).  Off for the migration, checked after it.
                await connection.run_sync(_sqlite_foreign_keys, on=False)
            await connection.run_sync(_run)
            problems = await connection.run_sync(_foreign_key_problems) if sqlite else []
            if problems:
                await connection.rollback()
                raise RuntimeError(f"the migration broke foreign keys: {', '.join(problems[:5])}")
            await connection.commit()
            if sqlite:
                await connection.run_sync(_sqlite_foreign_keys, on=True)
    finally:
        await engine.dispose()


def run() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL given to the migrations")
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_async(url))


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
run()
