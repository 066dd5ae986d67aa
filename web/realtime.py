"""socket.io: clients authenticate when they connect, and the server alone decides
their rooms (``agent:<id>``, ``team:<id>``, ``supervisors``, ``user:<id>``).

There is deliberately no event that lets a client join or leave a room.
Ticket presence (``ticket_open`` / ``ticket_close``) reaches the other viewers
through their own ``user:<id>`` rooms.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http.cookies import CookieError, SimpleCookie
from typing import Any

import socketio
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from desk.auth import user_for_token
from desk.clock import Clock
from desk.models import Role, Ticket, User
from desk.settings import Settings
from web.notifier import Notifier
from web.presence import TicketPresence, Viewer
from web.security import SESSION_COOKIE

log = logging.getLogger(__name__)


def rooms_for(user: User) -> list[str]:
    rooms = [f"user:{user.id}"]
    if user.agent is not None:
        rooms.append(f"agent:{user.agent.id}")
        if user.agent.team_id is not None:
            rooms.append(f"team:{user.agent.team_id}")
    if Role(user.role) in (Role.SUPERVISOR, Role.ADMIN):
        rooms.append("supervisors")
    return rooms


def _token_from(environ: dict[str, Any], auth: object) -> str | None:
    if isinstance(auth, dict):
        token = auth.get("token")
        if isinstance(token, str) and token:
            return token
    cookie_header = environ.get("HTTP_COOKIE", "")
    if cookie_header:
        try:
            cookies: SimpleCookie = SimpleCookie(cookie_header)
        except CookieError:
            return None
        if SESSION_COOKIE in cookies:
            return cookies[SESSION_COOKIE].value
    return None


def create_socket_server(settings: Settings) -> socketio.AsyncServer:
    manager = socketio.AsyncRedisManager(settings.redis_url) if settings.redis_url else None
    return socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=manager,
        # Same-origin only: the desk's pages are served by this app.  None is engine.io's
        # same-origin check ([] would switch the Origin check off: any site's page could
        # then open a socket with a signed-in agent's session cookie).
        cors_allowed_origins=None,
        logger=False,
        engineio_logger=False,
    )


def install_connection_handlers(
    sio: socketio.AsyncServer,
    *,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    on_connected: Callable[[str, User], Any] | None = None,
    on_disconnected: Callable[[str, dict[str, Any]], Any] | None = None,
) -> None:
    async def connect(sid: str, environ: dict[str, Any], auth: object = None) -> None:
        token = _token_from(environ, auth)
        user = None
        if token is not None:
            async with sessions() as session:
                user = await user_for_token(session, token, now=clock.now())
        if user is None:
            raise socketio.exceptions.ConnectionRefusedError("authentication failed")
        await sio.save_session(
            sid,
            {
                "user_id": user.id,
                "role": user.role,
                "name": user.display_name,
                "agent_id": user.agent.id if user.agent is not None else None,
            },
        )
        for room in rooms_for(user):
            await sio.enter_room(sid, room)
        log.debug("socket %s connected as %s in %s", sid, user.username, rooms_for(user))
        if on_connected is not None:
            await on_connected(sid, user)

    async def disconnect(sid: str, *_: object) -> None:
        if on_disconnected is not None:
            await on_disconnected(sid, await sio.get_session(sid))

    sio.on("connect", connect)
    sio.on("disconnect", disconnect)


class TicketShown(BaseModel):
    """What a browser says when it opens (or types into) a ticket."""

    model_config = ConfigDict(extra="forbid", strict=True)

    # lt: ids are INTEGER columns; PostgreSQL refuses a larger number with an error.
    ticket_id: int = Field(gt=0, lt=2**31)
    composing: bool = False


class TicketHidden(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    ticket_id: int = Field(gt=0, lt=2**31)


def install_presence_handlers(
    sio: socketio.AsyncServer,
    *,
    presence: TicketPresence,
    reads: async_sessionmaker[AsyncSession],
    clock: Clock,
    notifier: Notifier,
) -> Callable[[str], Awaitable[None]]:
    """``ticket_open`` / ``ticket_close`` from browsers; ``ticket_presence`` to everyone
    who has that ticket open, in their own ``user:<id>`` rooms (no room per ticket:
    the server alone decides rooms)."""

    async def tell_watchers(ticket_id: int, *, also: int | None = None) -> None:
        users = presence.watching(ticket_id) | ({also} if also is not None else set())
        if users:
            rooms = [f"user:{user_id}" for user_id in sorted(users)]
            await notifier.emit("ticket_presence", presence.payload(ticket_id), rooms=rooms)

    async def ticket_open(sid: str, data: object = None) -> dict[str, Any]:
        try:
            shown = TicketShown.model_validate(data)
        except ValidationError as exc:
            return _refused("invalid", _first_error(exc))
        async with reads() as session:
            found = await session.get(Ticket, shown.ticket_id)
        if found is None:
            return _refused("not_found", f"ticket {shown.ticket_id} not found")
        who = await sio.get_session(sid)
        viewer = Viewer(who["user_id"], who["name"], clock.now(), shown.composing)
        if presence.opened(sid, shown.ticket_id, viewer):
            await tell_watchers(shown.ticket_id)
        else:  # a second tab: it still needs to know who else is there
            await notifier.emit_to_socket(
                "ticket_presence", presence.payload(shown.ticket_id), sid=sid
            )
        return {"ok": True}

    async def ticket_close(sid: str, data: object = None) -> dict[str, Any]:
        try:
            hidden = TicketHidden.model_validate(data)
        except ValidationError as exc:
            return _refused("invalid", _first_error(exc))
        if presence.closed(sid, hidden.ticket_id):
            await tell_watchers(hidden.ticket_id)
        return {"ok": True}

    async def gone(sid: str) -> None:
        for ticket_id in presence.disconnected(sid):
            await tell_watchers(ticket_id)

    sio.on("ticket_open", ticket_open)
    sio.on("ticket_close", ticket_close)
    return gone  # for the disconnect handler


def _refused(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "data"
    return f"{where}: {error['msg']}"
