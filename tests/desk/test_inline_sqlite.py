"""The SQLite writer runs statements on the loop's thread and waits for another
process's write lock in asyncio, so the loop keeps serving while it waits."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from desk.db import create_engine
from desk.inline_sqlite import InlineConnection, connect_inline, urgent_writes


def _engine(path: Path, *, lock_wait: float | None = None) -> AsyncEngine:
    extra = (
        {}
        if lock_wait is None
        else {"async_creator": partial(connect_inline, str(path), lock_wait=lock_wait)}
    )
    return create_engine(f"sqlite+aiosqlite:///{path}", **extra)


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    path = tmp_path / "w.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    return path


async def _max_gap_while(work: asyncio.Task[object]) -> float:
    """The longest the loop went without running a 5 ms ticker while ``work`` ran."""
    gap, last = 0.0, time.monotonic()
    while not work.done():
        await asyncio.sleep(0.005)
        now = time.monotonic()
        gap, last = max(gap, now - last), now
    return gap


async def test_the_writer_engine_runs_its_statements_inline(db_file: Path) -> None:
    engine = _engine(db_file)
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.driver_connection, InlineConnection)
    reader = create_engine(f"sqlite+aiosqlite:///{db_file}", readers=True)
    async with reader.connect() as conn:
        raw = await conn.get_raw_connection()
        assert not isinstance(raw.driver_connection, InlineConnection)
    await engine.dispose()
    await reader.dispose()


async def test_quick_readers_run_inline_and_see_what_the_writer_committed(db_file: Path) -> None:
    engine = _engine(db_file)
    quick = create_engine(f"sqlite+aiosqlite:///{db_file}", readers=True, quick=True)
    async with quick.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.driver_connection, InlineConnection)
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO notes (body) VALUES ('seen')"))
    async with quick.connect() as conn:
        assert (await conn.execute(text("SELECT body FROM notes"))).scalars().all() == ["seen"]
    await engine.dispose()
    await quick.dispose()


async def test_a_write_waits_for_another_process_lock_without_stalling_the_loop(
    db_file: Path,
) -> None:
    other = sqlite3.connect(db_file, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO notes (body) VALUES ('theirs')")
    engine = _engine(db_file)

    async def write() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO notes (body) VALUES ('ours')"))

    loop = asyncio.get_running_loop()
    loop.call_later(0.3, other.commit)
    started = time.monotonic()
    work = asyncio.create_task(write())
    gap = await _max_gap_while(work)
    await work
    assert time.monotonic() - started >= 0.29  # it did wait for the lock
    assert gap < 0.1  # ... and the loop kept running meanwhile
    rows = other.execute("SELECT body FROM notes ORDER BY id").fetchall()
    assert rows == [("theirs",), ("ours",)]
    other.close()
    await engine.dispose()


async def test_a_lock_held_past_the_wait_limit_fails_the_write_with_database_is_locked(
    db_file: Path,
) -> None:
    other = sqlite3.connect(db_file, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    engine = _engine(db_file, lock_wait=0.2)
    with pytest.raises(Exception, match="database is locked"):
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO notes (body) VALUES ('ours')"))
    other.rollback()
    other.close()
    await engine.dispose()


async def test_a_rolled_back_inline_transaction_leaves_nothing(db_file: Path) -> None:
    engine = _engine(db_file)
    with pytest.raises(RuntimeError):
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO notes (body) VALUES ('gone')"))
            raise RuntimeError("changed my mind")
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM notes"))).scalar_one() == 0
    await engine.dispose()


async def _statements_and_turns(engine: AsyncEngine, *, sql: str) -> list[str]:
    """Four statements in one transaction while a ticker counts the loop's turns."""
    marks: list[str] = []

    async def tick() -> None:
        while True:
            marks.append("turn")
            await asyncio.sleep(0)

    async def work() -> None:
        async with engine.begin() as conn:
            for _ in range(4):
                await conn.execute(text(sql))
                marks.append("statement")

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    await work()
    ticker.cancel()
    first = marks.index("statement")
    return marks[first : len(marks) - marks[::-1].index("statement")]


async def test_the_writer_gives_the_loop_a_turn_after_each_statement(db_file: Path) -> None:
    engine = _engine(db_file)
    marks = await _statements_and_turns(engine, sql="INSERT INTO notes (body) VALUES ('x')")
    assert marks.count("statement") == 4
    assert "statement,statement" not in ",".join(marks)  # a turn between every two
    await engine.dispose()


async def test_while_urgent_writes_wait_or_run_the_writer_runs_statements_back_to_back(
    db_file: Path,
) -> None:
    engine = _engine(db_file)
    with urgent_writes():
        marks = await _statements_and_turns(engine, sql="INSERT INTO notes (body) VALUES ('x')")
    assert marks == ["statement"] * 4
    # ... and once they are done, the writer gives turns again.
    marks = await _statements_and_turns(engine, sql="INSERT INTO notes (body) VALUES ('y')")
    assert "turn" in marks
    await engine.dispose()


async def test_a_quick_reader_runs_its_statements_back_to_back(db_file: Path) -> None:
    quick = create_engine(f"sqlite+aiosqlite:///{db_file}", readers=True, quick=True)
    assert await _statements_and_turns(quick, sql="SELECT count(*) FROM notes") == ["statement"] * 4
    await quick.dispose()
