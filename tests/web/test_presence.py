"""Ticket presence: two agents on one ticket see each other, live, over socket.io."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import socketio

from tests.web.conftest import Desk
from web.presence import TicketPresence, Viewer

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)


def viewer(user_id: int, minutes: int = 0, composing: bool = False) -> Viewer:
    return Viewer(user_id, f"user {user_id}", T0 + timedelta(minutes=minutes), composing)


# --- the registry ----------------------------------------------------------------------


def test_two_tabs_of_one_user_count_as_one_viewer_since_the_first_look() -> None:
    presence = TicketPresence()
    assert presence.opened("tab1", 7, viewer(1, 0))
    assert not presence.opened("tab2", 7, viewer(1, 5))
    assert presence.viewers(7) == [viewer(1, 0)]


def test_a_user_stays_a_viewer_until_their_last_tab_closes() -> None:
    presence = TicketPresence()
    presence.opened("tab1", 7, viewer(1))
    presence.opened("tab2", 7, viewer(1))
    assert not presence.closed("tab1", 7)
    assert presence.closed("tab2", 7)
    assert presence.viewers(7) == []


def test_viewers_are_listed_in_the_order_they_arrived() -> None:
    presence = TicketPresence()
    presence.opened("b", 7, viewer(2, 3))
    presence.opened("a", 7, viewer(1, 1))
    assert [v.user_id for v in presence.viewers(7)] == [1, 2]


def test_starting_to_type_is_a_change_others_see_but_keeps_the_arrival_time() -> None:
    presence = TicketPresence()
    presence.opened("a", 7, viewer(1, 0))
    assert presence.opened("a", 7, viewer(1, 9, composing=True))
    assert presence.viewers(7) == [viewer(1, 0, composing=True)]


def test_a_disconnect_leaves_every_ticket_that_socket_had_open() -> None:
    presence = TicketPresence()
    presence.opened("a", 7, viewer(1))
    presence.opened("a", 8, viewer(1))
    presence.opened("b", 8, viewer(2))
    assert presence.disconnected("a") == [7, 8]
    assert presence.watching(8) == {2} and presence.watching(7) == set()


def test_closing_a_ticket_never_opened_changes_nothing() -> None:
    assert not TicketPresence().closed("a", 7)


# --- over socket.io --------------------------------------------------------------------


@asynccontextmanager
async def browser(
    desk: Desk, who: str
) -> AsyncIterator[tuple[socketio.AsyncClient, list[dict[str, Any]]]]:
    client = socketio.AsyncClient(reconnection=False)
    seen: list[dict[str, Any]] = []
    client.on("ticket_presence", seen.append)
    await client.connect(
        desk.url, auth={"token": desk.tokens[who]}, transports=["websocket"], wait_timeout=5
    )
    try:
        yield client, seen
    finally:
        if client.connected:
            await client.disconnect()


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def a_ticket(desk: Desk) -> int:
    response = await desk.client.post(
        "/api/v1/tickets", json={"subject": "Router is down"}, headers=desk.auth("alice")
    )
    assert response.status == 201, await response.text()
    ticket_id: int = (await response.json())["id"]
    return ticket_id


def names(update: dict[str, Any]) -> list[int]:
    return [v["user_id"] for v in update["viewers"]]


async def test_two_agents_on_one_ticket_see_each_other_and_see_one_leave(desk: Desk) -> None:
    ticket = await a_ticket(desk)
    alice_id, bob_id = desk.ids["alice"], desk.ids["bob"]
    async with browser(desk, "alice") as (alice, alice_saw):
        assert await alice.call("ticket_open", {"ticket_id": ticket}) == {"ok": True}
        await until(lambda: bool(alice_saw) and names(alice_saw[-1]) == [alice_id])
        async with browser(desk, "bob") as (bob, bob_saw):
            await bob.call("ticket_open", {"ticket_id": ticket, "composing": True})
            await until(lambda: bool(bob_saw) and names(bob_saw[-1]) == [alice_id, bob_id])
            await until(lambda: names(alice_saw[-1]) == [alice_id, bob_id])
            assert alice_saw[-1]["viewers"][1]["composing"] is True
        await until(lambda: names(alice_saw[-1]) == [alice_id])
    assert alice_saw[-1]["ticket_id"] == ticket


async def test_presence_goes_only_to_those_who_have_the_ticket_open(desk: Desk) -> None:
    ticket = await a_ticket(desk)
    async with browser(desk, "sam") as (_, sam_saw), browser(desk, "alice") as (alice, _):
        await alice.call("ticket_open", {"ticket_id": ticket})
        await alice.call("ticket_close", {"ticket_id": ticket})
        await asyncio.sleep(0.2)
    assert sam_saw == []


async def test_opening_a_ticket_that_does_not_exist_is_refused(desk: Desk) -> None:
    async with browser(desk, "alice") as (alice, seen):
        answer = await alice.call("ticket_open", {"ticket_id": 999_999})
    assert answer["error"]["code"] == "not_found" and seen == []


async def test_a_malformed_presence_message_gets_a_clear_error(desk: Desk) -> None:
    async with browser(desk, "alice") as (alice, _):
        for bad in ({"ticket_id": "7"}, {"ticket_id": 0}, {"ticket": 7}, "7", None):
            answer = await alice.call("ticket_open", bad)
            assert answer["error"]["code"] == "invalid", bad
        assert (await alice.call("ticket_close", {"ticket_id": -1}))["error"]["code"] == "invalid"
