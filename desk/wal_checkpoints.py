"""SQLite's write-ahead log copied back into the database off the event loop.

SQLite checkpoints by itself when the log passes 1,000 pages, inside whichever
commit crossed the line — and it fsyncs the database file there.  The service's
writer runs on the event loop's thread (desk/inline_sqlite.py), so that commit
would stall every socket for the length of an fsync, tens of milliseconds on a
busy disk.  The service turns the automatic checkpoint off on its writer and
runs them here instead, on aiosqlite's thread: PASSIVE, so it never waits for
the writer or for readers and copies what it can.
"""

from __future__ import annotations

import asyncio
import logging

import aiosqlite

from desk.background import OwnedTask

log = logging.getLogger(__name__)


class WalCheckpointer:
    def __init__(self, database: str, *, every: float = 1.0) -> None:
        self._database, self._every = database, every
        self._task = OwnedTask("wal-checkpoints", self._run)
        self.rounds = 0
        self.pages_copied = 0

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def _run(self) -> None:
        conn: aiosqlite.Connection | None = None
        try:
            while True:
                await asyncio.sleep(self._every)
                if conn is None:
                    conn = await _open(self._database)
                try:
                    await self.checkpoint(conn)
                except aiosqlite.Error:
                    log.exception("WAL checkpoint failed; trying again in %.1f s", self._every)
        finally:
            if conn is not None:
                await conn.close()

    async def checkpoint(self, conn: aiosqlite.Connection) -> None:
        async with conn.execute("PRAGMA wal_checkpoint(PASSIVE)") as cursor:
            row = await cursor.fetchone()
        self.rounds += 1
        if row is not None and row[2] > 0:
            self.pages_copied += row[2]


async def _open(database: str) -> aiosqlite.Connection:
    """Connect; a stop that arrives meanwhile waits for the connection and closes it,
    or aiosqlite's thread would finish later and find the event loop gone."""
    opening = asyncio.ensure_future(aiosqlite.connect(database, isolation_level=None))
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        conn = await opening
        await conn.close()
        raise
