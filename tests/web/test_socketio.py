"""socket.io: authenticated at connect, rooms chosen by the server only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import socketio

from tests.web.conftest import Desk
from web.app import NOTIFIER


@asynccontextmanager
async def connected(
    desk: Desk, *, auth: object = None, headers: dict[str, str] | None = None
) -> AsyncIterator[tuple[socketio.AsyncClient, list[tuple[str, Any]]]]:
    client = socketio.AsyncClient(reconnection=False)
    received: list[tuple[str, Any]] = []
    client.on("*", lambda event, data: received.append((event, data)))
    await client.connect(
        desk.url, auth=auth, headers=headers or {}, transports=["websocket"], wait_timeout=5
    )
    try:
        yield client, received
    finally:
        await client.disconnect()


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_connection_without_auth_is_refused(desk: Desk) -> None:
    client = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(desk.url, transports=["websocket"], wait_timeout=5)
    assert not client.connected


async def test_a_connection_with_a_forged_token_is_refused(desk: Desk) -> None:
    client = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            desk.url, auth={"token": "forged"}, transports=["websocket"], wait_timeout=5
        )


async def test_an_agent_is_put_in_its_agent_and_team_rooms(desk: Desk) -> None:
    notifier = desk.client.app[NOTIFIER]
    async with connected(desk, auth={"token": desk.tokens["alice"]}) as (_, received):
        await notifier.emit("ping_agent", {"n": 1}, rooms=[f"agent:{desk.ids['alice_agent']}"])
        await notifier.emit("ping_team", {"n": 2}, rooms=[f"team:{desk.ids['team']}"])
        await notifier.emit("ping_other", {"n": 3}, rooms=[f"agent:{desk.ids['bob_agent']}"])
        await notifier.emit("ping_supervisors", {"n": 4}, rooms=["supervisors"])
        await notifier.emit("done", {}, rooms=[f"agent:{desk.ids['alice_agent']}"])
        await until(lambda: any(name == "done" for name, _ in received))
    assert [name for name, _ in received] == ["ping_agent", "ping_team", "done"]


async def test_a_client_cannot_join_a_room_it_was_not_given(desk: Desk) -> None:
    notifier = desk.client.app[NOTIFIER]
    async with connected(desk, auth={"token": desk.tokens["bob"]}) as (client, received):
        for attempt in ("join", "enter_room", "subscribe"):
            await client.emit(attempt, {"room": "supervisors"})
            await client.emit(attempt, "supervisors")
        await asyncio.sleep(0.1)
        await notifier.emit("secret", {"for": "supervisors"}, rooms=["supervisors"])
        await notifier.emit("done", {}, rooms=[f"agent:{desk.ids['bob_agent']}"])
        await until(lambda: any(name == "done" for name, _ in received))
    assert "secret" not in [name for name, _ in received]


async def test_a_browser_connects_with_its_session_cookie(desk: Desk) -> None:
    headers = {"Cookie": f"desk_session={desk.tokens['sam']}"}
    notifier = desk.client.app[NOTIFIER]
    async with connected(desk, headers=headers) as (_, received):
        await notifier.emit("board", {"ok": True}, rooms=["supervisors"])
        await until(lambda: ("board", {"ok": True}) in received)
    # A supervisor also gets the SLA board when connecting; nothing else.
    assert [e for e in received if e[0] != "sla_board"] == [("board", {"ok": True})]


async def test_a_message_to_two_rooms_reaches_a_member_of_both_once(desk: Desk) -> None:
    notifier = desk.client.app[NOTIFIER]
    async with connected(desk, auth={"token": desk.tokens["alice"]}) as (_, received):
        rooms = [f"agent:{desk.ids['alice_agent']}", f"team:{desk.ids['team']}"]
        await notifier.emit("once", {}, rooms=rooms)
        await notifier.emit("done", {}, rooms=rooms[:1])
        await until(lambda: any(name == "done" for name, _ in received))
    assert [name for name, _ in received] == ["once", "done"]


async def test_supervisors_hear_of_a_new_customer_after_it_is_committed(desk: Desk) -> None:
    async with connected(desk, auth={"token": desk.tokens["sam"]}) as (_, received):
        response = await desk.client.post(
            "/api/v1/customers", json={"name": "Live One"}, headers=desk.auth("alice")
        )
        customer_id = (await response.json())["id"]
        await until(lambda: any(name == "customer_created" for name, _ in received))
    name, payload = next(e for e in received if e[0] != "sla_board")
    assert name == "customer_created"
    assert payload["customer_id"] == customer_id
    assert payload["name"] == "Live One"
