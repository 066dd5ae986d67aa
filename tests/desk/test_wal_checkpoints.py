"""The service's SQLite log is copied back into the database off the loop, not in a commit."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from sqlalchemy import text

from desk.db import create_engine, sqlite_database
from desk.wal_checkpoints import WalCheckpointer

ROWS = 600  # rows of ~3 KB: one page each


async def test_the_services_writer_leaves_checkpoints_to_the_checkpointer(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"
    engine = create_engine(url, background_checkpoints=True)
    async with engine.begin() as conn:
        assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one() == 0
    await engine.dispose()
    plain = create_engine(url)
    async with plain.begin() as conn:
        assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one() == 1000
    await plain.dispose()


async def test_the_checkpointer_copies_committed_pages_into_the_database_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "d.db"
    url = f"sqlite+aiosqlite:///{path}"
    engine = create_engine(url, background_checkpoints=True)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
    for _ in range(3):  # ~1,800 pages: past the 1,000 at which SQLite would checkpoint
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO notes (body) VALUES (:b)"), [{"b": "x" * 3000}] * ROWS
            )
    before = path.stat().st_size
    checkpointer = WalCheckpointer(str(path), every=0.05)
    checkpointer.start()
    try:
        for _ in range(100):
            if checkpointer.pages_copied:
                break
            await asyncio.sleep(0.05)
    finally:
        await checkpointer.stop()
    assert before < 100_000  # no commit copied the log back
    assert checkpointer.pages_copied > 1_000
    assert path.stat().st_size > 5_000_000
    await engine.dispose()


def test_only_a_sqlite_file_has_a_database_file() -> None:
    assert sqlite_database("sqlite+aiosqlite:///var/desk.db") == "var/desk.db"
    assert sqlite_database("sqlite+aiosqlite://") is None
    assert sqlite_database("sqlite+aiosqlite:///:memory:") is None
    assert sqlite_database("postgresql+asyncpg://u@h/db") is None


async def test_a_checkpointer_stopped_at_once_leaves_no_thread_behind(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}", background_checkpoints=True)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY)"))
    before = threading.active_count()
    for every in (0.0, 0.001, 0.002):  # stopped before, while and after it connects
        checkpointer = WalCheckpointer(str(path), every=every)
        checkpointer.start()
        await asyncio.sleep(every)
        await checkpointer.stop()
    await asyncio.sleep(0.05)
    assert threading.active_count() == before
    await engine.dispose()
