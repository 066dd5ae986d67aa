"""Alembic owns the schema: it builds an empty database, steps back, and matches the models."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

import kb.records  # noqa: F401  (the knowledge base's tables are on desk's metadata)
from desk import migrate
from desk.db import create_engine
from desk.models import Base
from tests.conftest import POSTGRES_URL, own_postgres_database

# The knowledge base's search index, made by migration 0011 in SQL the models
# cannot express (kb.index writes it): FTS5 tables with their shadow tables on
# SQLite; two tsvector columns, their GIN indexes and a pg_trgm index on PostgreSQL.
_FTS5_SHADOWS = ("", "_data", "_idx", "_content", "_docsize", "_config")
SEARCH_INDEX = {
    *(
        ("table", f"{name}{shadow}")
        for name in ("kb_search", "kb_search_grams")
        for shadow in _FTS5_SHADOWS
    ),
    ("column", "kb_articles.search_vector"),
    ("column", "kb_articles.title_vector"),
    ("index", "ix_kb_articles_search"),
    ("index", "ix_kb_articles_title_search"),
    ("index", "ix_kb_articles_title_trgm"),
}


def _not_search_index(name: str | None, type_: str, parents: dict[str, Any]) -> bool:
    if type_ == "column":
        name = f"{parents.get('table_name')}.{name}"
    return (type_, name) not in SEARCH_INDEX


async def _tables(url: str) -> set[str]:
    return {name.partition(".")[0] for name in await _columns(url)}


async def _columns(url: str) -> set[str]:
    """Every ``table.column`` and ``table.index:name`` the database has."""
    engine = create_engine(url)
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: _schema_names(inspect(c)))
    await engine.dispose()
    return names


def _schema_names(inspector: Any) -> set[str]:
    names = set()
    for table in inspector.get_table_names():
        names |= {f"{table}.{column['name']}" for column in inspector.get_columns(table)}
        names |= {f"{table}.index:{index['name']}" for index in inspector.get_indexes(table)}
    return names


async def _diff(url: str) -> list[object]:
    engine = create_engine(url)
    async with engine.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(
                MigrationContext.configure(
                    c, opts={"compare_type": True, "include_name": _not_search_index}
                ),
                Base.metadata,
            )
        )
    await engine.dispose()
    return list(diff)


def _urls(tmp_path: Path) -> list[str]:
    urls = [f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"]
    if POSTGRES_URL:
        urls.append(asyncio.run(own_postgres_database("migrations")))
    return urls


def test_migrations_upgrade_an_empty_database_and_downgrade_one_step(tmp_path: Path) -> None:
    for url in _urls(tmp_path):
        migrate.downgrade(url, "base")
        migrate.upgrade(url)
        at_head = asyncio.run(_columns(url))
        assert set(Base.metadata.tables) <= asyncio.run(_tables(url))
        assert asyncio.run(migrate.current_revision(url)) == migrate.head_revision()
        migrate.downgrade(url, "-1")
        one_back = asyncio.run(_columns(url))
        assert one_back < at_head  # the last step added tables or columns; now gone
        assert asyncio.run(migrate.current_revision(url)) != migrate.head_revision()
        migrate.upgrade(url)
        assert asyncio.run(_columns(url)) == at_head
        migrate.downgrade(url, "base")


def test_the_migrated_schema_matches_the_models(tmp_path: Path) -> None:
    for url in _urls(tmp_path):
        migrate.upgrade(url)
        assert asyncio.run(_diff(url)) == []
        migrate.downgrade(url, "base")


async def _count(url: str, table: str) -> int:
    engine = create_engine(url)
    async with engine.connect() as conn:
        found = int(await conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
    await engine.dispose()
    return found


async def _a_ticket_with_a_message(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO tickets (id, subject, description, status, priority, channel, "
                "version, created_at, updated_at) VALUES (1, 'Invoice', '', 'open', 'normal', "
                "'email', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO ticket_messages (ticket_id, kind, body, created_at) "
                "VALUES (1, 'public_reply', 'Hello', CURRENT_TIMESTAMP)"
            )
        )
    await engine.dispose()


def test_a_downgrade_that_rebuilds_a_table_on_sqlite_keeps_the_rows_that_point_at_it(
    tmp_path: Path,
) -> None:
    # SQLite rebuilds a table to drop a column (0008 drops tickets.tags); with foreign
    # keys on, dropping the old table would cascade and delete every ticket's messages.
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url)
    asyncio.run(_a_ticket_with_a_message(url))

    migrate.downgrade(url, "0007")

    assert asyncio.run(_count(url, "tickets")) == 1
    assert asyncio.run(_count(url, "ticket_messages")) == 1
