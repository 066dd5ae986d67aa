"""The one place that emits to socket.io: domain events become room messages."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import socketio

from desk.events import DomainEvent, Recipients

log = logging.getLogger(__name__)


def rooms_of(recipients: Recipients) -> list[str]:
    rooms = [f"agent:{agent_id}" for agent_id in recipients.agents]
    rooms += [f"team:{team_id}" for team_id in recipients.teams]
    if recipients.supervisors:
        rooms.append("supervisors")
    rooms += [f"user:{user_id}" for user_id in recipients.users]
    return rooms


class Notifier:
    def __init__(self, *, sio: socketio.AsyncServer) -> None:
        self._sio = sio
        self.emitted = 0

    async def deliver(self, event: DomainEvent) -> None:
        rooms = rooms_of(event.recipients)
        if not rooms:
            return
        await self.emit(event.name, event.payload(), rooms=rooms)

    async def emit(self, name: str, payload: dict[str, Any], *, rooms: list[str]) -> None:
        # One emit to several rooms: a client in two of them gets it once.
        await self._emit(name, payload, room=rooms)
        self.emitted += 1

    async def emit_to_socket(self, name: str, payload: dict[str, Any], *, sid: str) -> None:
        await self._emit(name, payload, to=sid)

    async def _emit(self, name: str, payload: dict[str, Any], **where: Any) -> None:
        task = asyncio.current_task()
        asked = task.cancelling() if task is not None else 0
        await self._sio.emit(name, payload, **where)
        if task is not None and task.cancelling() > asked:
            # redis-py can swallow a cancellation that lands mid-command (socket.io's
            # Redis manager publishes through it); a loop being stopped would run on.
            raise asyncio.CancelledError
