"""socket.io: clients authenticate when they connect, and the server alone decides
their rooms (``agent:<id>``, ``team:<id>``, ``supervisors``, ``user:<id>``).

There is deliberately no event that lets a client join or leave a room.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from typing import Any

import socketio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from desk.auth import user_for_token
from desk.clock import Clock
from desk.models import Role, User
from desk.settings import Settings
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
        # Same-origin only: the desk's pages are served by this app.
        cors_allowed_origins=[],
        logger=False,
        engineio_logger=False,
    )


def install_connection_handlers(
    sio: socketio.AsyncServer,
    *,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    on_connected: Callable[[str, User], Any] | None = None,
) -> None:
    async def connect(sid: str, environ: dict[str, Any], auth: object = None) -> None:
        token = _token_from(environ, auth)
        user = None
        if token is not None:
            async with sessions() as session:
                user = await user_for_token(session, token, now=clock.now())
        if user is None:
            raise socketio.exceptions.ConnectionRefusedError("authentication failed")
        await sio.save_session(sid, {"user_id": user.id, "role": user.role})
        for room in rooms_for(user):
            await sio.enter_room(sid, room)
        log.debug("socket %s connected as %s in %s", sid, user.username, rooms_for(user))
        if on_connected is not None:
            await on_connected(sid, user)

    sio.on("connect", connect)
