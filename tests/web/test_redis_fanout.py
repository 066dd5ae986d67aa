"""With DESK_REDIS_URL set, an emit from one process reaches a socket on another."""

from __future__ import annotations

import os

import socketio
from aiohttp.test_utils import TestServer

from desk.settings import Settings
from tests.web.conftest import Desk
from tests.web.test_socketio import until
from web.app import NOTIFIER, create_app

REDIS_URL = os.environ.get("DESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


async def test_an_emit_in_one_process_reaches_a_client_of_another(
    desk: Desk, settings: Settings
) -> None:
    clustered = settings.model_copy(update={"redis_url": REDIS_URL})
    first = TestServer(create_app(clustered, clock=desk.clock))
    second = TestServer(create_app(clustered, clock=desk.clock))
    await first.start_server()
    await second.start_server()
    client = socketio.AsyncClient(reconnection=False)
    received: list[str] = []
    client.on("*", lambda event, data: received.append(event))
    try:
        await client.connect(
            str(second.make_url("/")),
            auth={"token": desk.tokens["sam"]},
            transports=["websocket"],
            wait_timeout=5,
        )
        await first.app[NOTIFIER].emit("from_first", {}, rooms=["supervisors"])
        await until(lambda: "from_first" in received, timeout=5)
    finally:
        await client.disconnect()
        await first.close()
        await second.close()
    # Once, though both processes publish to the room (the SLA board feeds too).
    assert [event for event in received if event != "sla_board"] == ["from_first"]
