"""The customer audit log: who read or changed which customer, when, how, from where.

A change is audited in its own transaction (``record_change``): the entry
commits with the change or not at all.  A read writes nothing while the
screen waits: ``ReadAudit`` keeps it in memory and writes what gathered once a
second in one insert, so an agent opening a customer never queues behind
SQLite's single writer.  A crash loses at most that second of reads, never a
change.  The screen pop (cti) is not audited: it is the phone system showing
the agent who calls, not somebody looking a customer up.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from desk.background import OwnedTask
from desk.models import CustomerAuditEntry

log = logging.getLogger(__name__)


class AuditAction(StrEnum):
    READ = "read"  # the customer's record (API or page)
    TIMELINE = "timeline"  # their interactions
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    EXPORT = "export"  # everything about them, as one document
    ERASE = "erase"  # their personal data anonymised


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts and from where; copied into each entry (users may be deleted later)."""

    user_id: int | None
    username: str
    role: str
    request_id: str = ""
    address: str = ""


def entry_values(
    customer_id: int,
    action: AuditAction,
    *,
    actor: Actor,
    at: datetime,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "at": at,
        "user_id": actor.user_id,
        "username": actor.username[:64],
        "role": actor.role[:20],
        "action": action.value,
        "detail": dict(detail or {}),
        "request_id": actor.request_id[:64],
        "address": actor.address[:64],
    }


def record_change(
    session: AsyncSession,
    customer_id: int,
    action: AuditAction,
    *,
    actor: Actor,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    """Audit a change in the transaction that makes it."""
    session.add(
        CustomerAuditEntry(**entry_values(customer_id, action, actor=actor, at=now, detail=detail))
    )


async def audit_trail(
    session: AsyncSession, customer_id: int, *, limit: int = 100, offset: int = 0
) -> tuple[list[CustomerAuditEntry], int]:
    """The customer's entries, newest first, and how many there are."""
    query = select(CustomerAuditEntry).where(CustomerAuditEntry.customer_id == customer_id)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.scalars(
        query.order_by(CustomerAuditEntry.at.desc(), CustomerAuditEntry.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), total


class ReadAudit:
    """Reads noted now, written together a moment later (see the module's doc)."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        interval: float = 1.0,
        max_pending: int = 50_000,
    ) -> None:
        self._sessions = sessions
        self._interval = interval
        self._max_pending = max_pending
        self._pending: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._writing = asyncio.Lock()
        self._dropped = 0
        self._task = OwnedTask("customer-read-audit", self._run)

    def note(
        self,
        customer_id: int,
        action: AuditAction,
        *,
        actor: Actor,
        now: datetime,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Remember a read; it is written within ``interval`` seconds."""
        if len(self._pending) >= self._max_pending:
            # The database has been away for long; memory is not the place to wait.
            self._dropped += 1
            if self._dropped == 1:
                log.error("customer read audit: database unreachable, dropping reads")
            return
        self._pending.append(entry_values(customer_id, action, actor=actor, at=now, detail=detail))
        self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> int:
        """Write every read noted so far; how many were written."""
        async with self._writing:
            rows, self._pending = self._pending, []
            if not rows:
                return 0
            try:
                async with self._sessions() as session:
                    await session.execute(insert(CustomerAuditEntry), rows)
                    await session.commit()
            except BaseException:
                self._pending = rows + self._pending  # kept for the next try
                raise
            if self._dropped:
                log.error("customer read audit: %d reads were dropped", self._dropped)
                self._dropped = 0
            return len(rows)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self._interval)  # let the reads of this moment gather
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("customer read audit: could not write; trying again")
            if self._pending:
                self._wake.set()

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
        try:
            await self.flush()
        except Exception:
            log.exception("customer read audit: %d reads lost at shutdown", len(self._pending))
