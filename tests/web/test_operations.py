"""Probes and request ids: /healthz answers from memory, /readyz names each check,
and every response carries the request id its log lines name."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import socketio
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from desk.log_context import log_handler
from desk.settings import Settings
from tests.conftest import Database
from tests.cti_e2e.conftest import running_desk, until
from tests.web.conftest import Desk
from web.app import create_app
from web.state import READS

REDIS_URL = os.environ.get("DESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # nothing listens once the probe is closed


@asynccontextmanager
async def every_connection_taken(engine: AsyncEngine) -> AsyncIterator[None]:
    """Check out the engine's connections until the pool has none left: whatever
    needs the database next waits, as it would for a database that is slow."""
    held: list[AsyncConnection] = []
    try:
        while True:
            try:
                held.append(await asyncio.wait_for(engine.connect(), timeout=0.3))
            except TimeoutError:
                break
        yield
    finally:
        for connection in held:
            await connection.close()


@contextmanager
def json_log_lines(logger: str, level: int = logging.DEBUG) -> Iterator[io.StringIO]:
    """What ``logger`` writes meanwhile, as JSON lines, into the yielded buffer."""
    buffer = io.StringIO()
    handler = log_handler("json", stream=buffer)
    target = logging.getLogger(logger)
    old_level = target.level
    target.addHandler(handler)
    target.setLevel(level)
    try:
        yield buffer
    finally:
        target.removeHandler(handler)
        target.setLevel(old_level)


async def test_liveness_answers_at_once_while_the_database_does_not(desk: Desk) -> None:
    engine = desk.client.app[READS].kw["bind"]
    async with every_connection_taken(engine):
        response = await asyncio.wait_for(desk.client.get("/healthz"), timeout=0.5)
        assert response.status == 200
        body = await response.json()
        assert body["status"] == "ok"
        assert body["ami"] == {"status": "disabled", "error": None}

        ready = await asyncio.wait_for(desk.client.get("/readyz"), timeout=3)
        assert ready.status == 503
        check = (await ready.json())["checks"]["database"]
        assert check == {"ok": False, "error": "no answer within 0.8s"}


async def test_readiness_is_ready_with_the_database_up_and_no_redis_or_pbx(desk: Desk) -> None:
    response = await desk.client.get("/readyz")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ready"
    assert body["checks"] == {"database": {"ok": True, "error": None}}


async def test_readiness_is_503_when_redis_is_configured_but_unreachable(
    settings: Settings, database: Database
) -> None:
    away = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{_closed_port()}/5"})
    client = TestClient(TestServer(create_app(away)))
    await client.start_server()
    try:
        response = await client.get("/readyz")
        body = await response.json()
    finally:
        await client.close()
    assert response.status == 503
    assert body["status"] == "not_ready"
    assert body["checks"]["database"] == {"ok": True, "error": None}
    assert body["checks"]["redis"]["ok"] is False
    assert "ConnectionError" in body["checks"]["redis"]["error"]


async def test_readiness_checks_a_reachable_redis(settings: Settings, database: Database) -> None:
    client = TestClient(
        TestServer(create_app(settings.model_copy(update={"redis_url": REDIS_URL})))
    )
    await client.start_server()
    try:
        response = await client.get("/readyz")
        body = await response.json()
    finally:
        await client.close()
    assert response.status == 200, body
    assert body["checks"]["redis"] == {"ok": True, "error": None}


async def test_readiness_names_the_ami_link_error_with_wrong_credentials(
    settings: Settings, database: Database
) -> None:
    async with running_desk(
        settings, database, desk_secret="not-the-secret", wait_connected=False, browsers=()
    ) as desk:
        await until(lambda: desk.link.status()["status"] == "auth_failed", what="auth_failed")
        response = await desk.client.get("/readyz")
        body = await response.json()
        liveness = await desk.client.get("/healthz")
    assert response.status == 503
    assert body["checks"]["ami"] == {"ok": False, "error": "authentication failed"}
    assert body["checks"]["database"]["ok"] is True
    assert liveness.status == 200  # a PBX refusing the desk is no reason to restart it


async def test_readiness_counts_a_logged_in_ami_link_as_ready(
    settings: Settings, database: Database
) -> None:
    async with running_desk(settings, database, browsers=()) as desk:
        response = await desk.client.get("/readyz")
        body = await response.json()
    assert response.status == 200
    assert body["checks"]["ami"] == {"ok": True, "error": None}


async def test_a_request_id_sent_by_the_proxy_is_echoed(desk: Desk) -> None:
    response = await desk.client.get("/healthz", headers={"X-Request-Id": "nginx-4f2a.9_b:1"})
    assert response.headers["X-Request-Id"] == "nginx-4f2a.9_b:1"


async def test_an_invalid_request_id_is_replaced_by_a_fresh_one(desk: Desk) -> None:
    for sent in ("a b", "x" * 65, "id\u00e9", "semi;colon"):
        response = await desk.client.get("/api/v1/openapi.json", headers={"X-Request-Id": sent})
        echoed = response.headers["X-Request-Id"]
        assert echoed != sent
        assert len(echoed) == 32 and all(c in "0123456789abcdef" for c in echoed)


async def test_requests_without_an_id_get_different_ones(desk: Desk) -> None:
    first = await desk.client.get("/healthz")
    second = await desk.client.get("/api/v1/tickets", headers=desk.auth("alice"))
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]


async def test_an_unknown_path_still_carries_a_request_id(desk: Desk) -> None:
    response = await desk.client.get("/no/such/page", headers={"X-Request-Id": "lost-1"})
    assert response.status == 404
    assert response.headers["X-Request-Id"] == "lost-1"


async def test_log_lines_written_for_a_request_are_json_naming_its_request_id(
    desk: Desk,
) -> None:
    browser = socketio.AsyncClient(reconnection=False)
    with json_log_lines("web.realtime") as lines:
        await browser.connect(
            desk.url,
            headers={"X-Request-Id": "socket-req-7"},
            auth={"token": desk.tokens["alice"]},
            transports=["websocket"],
            wait_timeout=5,
        )
        await browser.disconnect()
    records = [json.loads(line) for line in lines.getvalue().splitlines()]
    connected = [r for r in records if "connected as alice" in r["message"]]
    assert len(connected) == 1, records
    assert connected[0]["request_id"] == "socket-req-7"
    assert (connected[0]["level"], connected[0]["logger"]) == ("DEBUG", "web.realtime")
    assert connected[0]["time"].endswith("+00:00")


async def test_log_lines_about_a_call_name_its_call_id(
    settings: Settings, database: Database
) -> None:
    async with running_desk(settings, database, browsers=("alice",)) as desk:
        with json_log_lines("cti.recorder") as lines:
            await desk.play("support_ringall_answered")
        (pop_call,) = {pop["call_id"] for pop in desk.browsers["alice"].pops()}
    records = [json.loads(line) for line in lines.getvalue().splitlines()]
    written = [r for r in records if r["message"].startswith("call log: writing")]
    assert {r["message"] for r in written} >= {
        "call log: writing CallStarted",
        "call log: writing CallEnded",
    }
    assert {r.get("call_id") for r in written} == {pop_call}
