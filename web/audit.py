"""The web side of the customer audit log: who is asking (the signed-in user, the
client's address, the request's id as logged) and the read buffer's place in the app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from desk.customer_audit import Actor, AuditAction, ReadAudit
from desk.log_context import REQUEST_ID
from desk.models import User
from web.api.endpoints import USER_KEY
from web.request_origin import address_of
from web.state import CLOCK, SESSIONS

AUDIT_READS = web.AppKey("audit_reads", ReadAudit)


def actor_of(request: web.Request, user: User | None = None) -> Actor:
    """The signed-in user of ``request`` (or ``user``), with where the request came from."""
    who: User | None = user or request.get(USER_KEY)
    return Actor(
        user_id=who.id if who is not None else None,
        username=who.username if who is not None else "",
        role=who.role if who is not None else "",
        request_id=REQUEST_ID.get() or "",
        address=address_of(request),
    )


def note_read(
    request: web.Request,
    customer_id: int,
    action: AuditAction = AuditAction.READ,
    *,
    user: User | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Audit a read without waiting for the database (``ReadAudit``)."""
    request.app[AUDIT_READS].note(
        customer_id,
        action,
        actor=actor_of(request, user),
        now=request.app[CLOCK].now(),
        detail=detail,
    )


async def audit_reads_context(app: web.Application) -> AsyncIterator[None]:
    reads = ReadAudit(sessions=app[SESSIONS])
    app[AUDIT_READS] = reads
    reads.start()
    yield
    await reads.stop()
