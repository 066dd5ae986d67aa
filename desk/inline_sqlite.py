"""SQLite writes on the event loop's own thread.

aiosqlite runs every statement on a thread of its own and hands the result back
through the event loop: a transaction of fifteen statements makes fifteen round
trips, each waiting its turn behind whatever else the loop has to do (emitting
pops to hundreds of sockets).  SQLite has one writer, so the write lock is held
for all those round trips and every other writer — the pop that must be claimed
before it goes out — waits behind them.  A statement itself takes microseconds
(WAL, ``synchronous=NORMAL``: no fsync on commit), so the writer connection runs
them inline instead: the lock is held for the work, not for the waiting.

Waiting for the lock must still not block the loop.  The writer connection has
no busy timeout; a statement that finds the database locked (another process
writes: the CLI, a second server) is retried after an asyncio sleep, up to the
same 30 s the threaded driver would have waited.  Readers keep aiosqlite: a long
report must not stall the loop.

Inline statements never wait, so a transaction of many statements (a callback
ticket with its SLA clocks) would hold the loop for its whole length: the writer
gives the loop a turn after each statement.  A pop's claim must not wait behind
those turns, in its own transaction or in the one holding the writer before it,
so while one waits or runs (:func:`urgent_writes`) statements run back to back.

The classes here speak the part of aiosqlite's interface that SQLAlchemy's
aiosqlite dialect uses (``async_creator`` in :func:`desk.db.create_engine`).
docs/decisions/0004-runtime-and-write-path.md has the measurements.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = ["InlineConnection", "connect_inline", "urgent_writes"]

LOCK_WAIT_S = 30.0
_FIRST_RETRY_S = 0.0005
_LONGEST_RETRY_S = 0.02


def _locked(error: sqlite3.OperationalError) -> bool:
    message = str(error)
    return "database is locked" in message or "database table is locked" in message


class InlineCursor:
    """A sqlite3 cursor behind aiosqlite's coroutine interface."""

    __slots__ = ("_connection", "_cursor")

    def __init__(self, connection: InlineConnection) -> None:
        self._connection = connection
        self._cursor = connection._conn.cursor()

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        run = self._cursor.execute
        await self._connection._run(lambda: run(sql, () if parameters is None else parameters))
        return self

    async def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> InlineCursor:
        rows = list(seq)  # a generator cannot be replayed when the lock was busy
        run = self._cursor.executemany
        await self._connection._run(lambda: run(sql, rows))
        return self

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _RunNow:
    """Stands in for aiosqlite's request queue: SQLAlchemy's isolation-level setter
    puts ``(future, function)`` on it; here the function runs at once."""

    __slots__ = ()

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:
            future.set_exception(exc)


class _Urgency:
    """How many pieces of urgent writer work (pop claims) are waiting or running."""

    count = 0


@contextmanager
def urgent_writes() -> Iterator[None]:
    """Marks writer work that must not wait: a pop's claim.

    Between two statements the writer normally gives the loop a turn, so a long
    transaction (a callback ticket with its SLA clocks) does not stall socket.io and
    the AMI reader for its whole length.  While urgent work waits for the writer or
    runs on it, statements run back to back instead: whoever holds the writer
    finishes as fast as it can, and the urgent work itself is not held up by turns.
    There is one event loop per process, so the count is per process.
    """
    _Urgency.count += 1
    try:
        yield
    finally:
        _Urgency.count -= 1


class InlineConnection:
    """One sqlite3 connection used from the event loop's thread only.

    ``gives_turns``: after each statement, let the loop run whatever else is ready
    (see :func:`urgent_writes`), except while urgent work waits or runs.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        lock_wait: float = LOCK_WAIT_S,
        gives_turns: bool = False,
    ) -> None:
        self._conn = conn
        self._lock_wait = lock_wait
        self._gives_turns = gives_turns
        self._connection: sqlite3.Connection | None = conn  # SQLAlchemy: "still open?"
        self._tx = _RunNow()

    async def _run(self, statement: Callable[[], Any], *, turn: bool = True) -> Any:
        deadline: float | None = None
        pause = _FIRST_RETRY_S
        while True:
            try:
                result = statement()
                if turn and self._gives_turns and not _Urgency.count:
                    await asyncio.sleep(0)
                return result
            except sqlite3.OperationalError as exc:
                # Inside a transaction we already hold the write lock (BEGIN IMMEDIATE),
                # so "locked" there is a real error, not something to wait out.
                if not _locked(exc) or self._conn.in_transaction:
                    raise
                now = time.monotonic()
                deadline = deadline if deadline is not None else now + self._lock_wait
                if now >= deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, _LONGEST_RETRY_S)

    def cursor(self) -> InlineCursor:
        return InlineCursor(self)

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        # No turn after the commit: the connection goes back to its pool right away.
        await self._run(self._conn.commit, turn=False)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @property
    def runs_inline(self) -> bool:
        return True


async def connect_inline(
    database: str, *, lock_wait: float = LOCK_WAIT_S, gives_turns: bool = False
) -> InlineConnection:
    # check_same_thread=False only so the pool may close a connection that the
    # garbage collector finalises elsewhere; statements run on the loop's thread.
    conn = sqlite3.connect(database, timeout=0, isolation_level=None, check_same_thread=False)
    return InlineConnection(conn, lock_wait=lock_wait, gives_turns=gives_turns)
