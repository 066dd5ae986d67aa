"""Leases: at most one process of a deployment does a thing (holds the PBX link).

On PostgreSQL a lease is a session-level advisory lock, held on a connection of
its own.  PostgreSQL releases it the moment that session ends: the process died,
its connection was cut (``pg_terminate_backend``), or it let go.  The holder
notices a lost session at once (the driver reports the closed socket) and also
asks a cheap question every ``every`` seconds, so a link that went quiet without
closing (a half-open TCP connection) counts as lost too: the holder gives up
before PostgreSQL frees the lock for someone else, never after.

On SQLite there is one process per database file, and that process simply holds
every lease (docs/decisions/0010-pbx-link-lease.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Protocol

import asyncpg  # type: ignore[import-untyped]  # no type hints published
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)
# A lock question answers within this, or the database counts as unreachable.
QUESTION_TIMEOUT = 2.0
# What a lost, refused or silent database connection raises.
DATABASE_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class Lease(Protocol):
    async def take(self) -> bool:
        """Try once, without waiting for another holder: True when this process holds it."""
        ...

    async def watch(self, *, every: float) -> None:
        """Return when the lease held is lost (checked at least every ``every`` seconds)."""
        ...

    async def release(self) -> None:
        """Let go (a waiting process may take it at once); also when not held."""
        ...


def lease_key(name: str) -> int:
    """The advisory lock key of a lease name: a stable signed 64-bit number."""
    digest = hashlib.blake2b(f"calldesk:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lease_for(database_url: str, name: str) -> Lease:
    """The lease called ``name`` among the processes sharing this database."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return AdvisoryLease(dsn, name=name)
    return ProcessLease()


class ProcessLease:
    """SQLite: the only process on the database file holds the lease from the start."""

    def __init__(self) -> None:
        self._released = asyncio.Event()

    async def take(self) -> bool:
        self._released.clear()
        return True

    async def watch(self, *, every: float) -> None:
        await self._released.wait()

    async def release(self) -> None:
        self._released.set()


class AdvisoryLease:
    """A PostgreSQL session-level advisory lock on a dedicated connection."""

    def __init__(self, dsn: str, *, name: str) -> None:
        self._dsn, self.name, self.key = dsn, name, lease_key(name)
        self._conn: asyncpg.Connection | None = None
        self._closed = asyncio.Event()
        self._unreachable = False  # said once in the log, not every second

    async def take(self) -> bool:
        try:
            conn = await self._connection()
            taken = await conn.fetchval(
                "SELECT pg_try_advisory_lock($1)", self.key, timeout=QUESTION_TIMEOUT
            )
        except DATABASE_ERRORS as exc:
            if not self._unreachable:
                log.warning("lease %s: the database is not reachable: %s", self.name, exc)
            self._unreachable = True
            self._drop()
            return False
        if self._unreachable:
            log.info("lease %s: the database is reachable again", self.name)
        self._unreachable = False
        return bool(taken)

    async def watch(self, *, every: float) -> None:
        while True:
            conn = self._conn
            if conn is None or conn.is_closed():
                return
            try:
                await asyncio.wait_for(self._closed.wait(), every)
            except TimeoutError:
                pass  # still open: ask it something, in case it went quiet instead
            else:
                log.warning("lease %s: its database session ended", self.name)
                self._drop()
                return
            try:
                await conn.fetchval("SELECT 1", timeout=min(every, QUESTION_TIMEOUT))
            except DATABASE_ERRORS as exc:
                log.warning("lease %s: its database session does not answer: %s", self.name, exc)
                self._drop()
                return

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None or conn.is_closed():
            return
        try:
            # Ending the session releases every lock it holds.
            await conn.close(timeout=QUESTION_TIMEOUT)
        except DATABASE_ERRORS:
            conn.terminate()

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        conn = await asyncpg.connect(self._dsn, timeout=QUESTION_TIMEOUT)
        closed = self._closed = asyncio.Event()
        conn.add_termination_listener(lambda _conn: closed.set())
        self._conn = conn
        return conn

    def _drop(self) -> None:
        """Forget a connection that failed; abort it, so PostgreSQL ends its session."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()
