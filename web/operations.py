"""What operators and their tools ask of a running desk: liveness, readiness,
metrics, request ids in the logs, and a clean way out on SIGTERM (docs/deploy.md).

* ``/healthz`` (liveness) answers from memory: a slow or away database must not
  get a healthy process restarted.
* ``/readyz`` (readiness) asks the database, Redis (when socket.io fans out
  through it) and the AMI link (when there is a PBX) and names each check.
* The probes and ``/metrics`` are answered ahead of the sign-in lookup and the
  other middlewares, so a scrape with a bearer token never waits for the
  sessions table.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import redis.asyncio as redis
from aiohttp import web
from sqlalchemy import text

from cti.ami import LinkStatus
from desk.log_context import REQUEST_ID
from web.api.endpoints import PUBLIC, Endpoint
from web.api.schemas import CheckOut, HealthOut, ReadyOut
from web.metrics import METRICS, metrics_view
from web.state import LINK, READS, SETTINGS, SIO, SWITCHBOARD

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
# What a proxy or client may send as a request id: short, and safe in a log line.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Each readiness check answers within this, or counts as failed (probe timeouts
# are usually a second or more).
CHECK_TIMEOUT = 0.8
HEALTH_PATH, READY_PATH, METRICS_PATH = "/healthz", "/readyz", "/metrics"
OPERATIONS_PATHS = frozenset({HEALTH_PATH, READY_PATH, METRICS_PATH})
# socket.io requests last as long as a long poll or a whole websocket session:
# they would drown the latency of everything else.
UNTIMED_PREFIX = "/socket.io"
REDIS_PROBE = web.AppKey("redis_probe", redis.Redis)
# Closing the browsers' websockets at shutdown may take this long, not longer.
BROWSERS_CLOSE_TIMEOUT = 3.0


@cache  # read from the installed package's metadata once, not at every probe
def app_version() -> str:
    try:
        return version("calldesk")
    except PackageNotFoundError:
        return "0.0.0+unknown"


def request_id_from(header: str | None) -> str:
    """The caller's id when it is short and safe to log; a fresh one otherwise."""
    if header is not None and _REQUEST_ID.fullmatch(header):
        return header
    return secrets.token_hex(16)


def route_label(request: web.Request) -> str:
    """The route's pattern (``/api/v1/tickets/{id}``), never the raw path: one
    series per route however many ids and typos arrive."""
    resource = request.match_info.route.resource
    return "unmatched" if resource is None else resource.canonical


@web.middleware
async def operations_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    started = time.perf_counter()
    request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
    token = REQUEST_ID.set(request_id)
    status = 500
    try:
        if route_label(request) in OPERATIONS_PATHS:
            response = await request.match_info.handler(request)
        else:
            response = await handler(request)
        status = response.status
        if not response.prepared:
            response.headers[REQUEST_ID_HEADER] = request_id
        return response
    except web.HTTPException as exc:
        status = exc.status
        exc.headers[REQUEST_ID_HEADER] = request_id
        raise
    finally:
        REQUEST_ID.reset(token)
        if not request.path.startswith(UNTIMED_PREFIX):
            request.app[METRICS].observe_request(
                request.method, route_label(request), status, time.perf_counter() - started
            )


async def healthz(request: web.Request) -> web.Response:
    pbx = request.app.get(SWITCHBOARD)
    out = HealthOut(
        status="ok",
        version=app_version(),
        ami=pbx.status() if pbx is not None else {"status": "disabled", "error": None},
    )
    return web.json_response(out.model_dump())


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    checks: dict[str, Awaitable[str | None]] = {"database": _database_problem(app)}
    probe = app.get(REDIS_PROBE)
    if probe is not None:
        checks["redis"] = _redis_problem(probe)
    problems = await asyncio.gather(*checks.values())
    results = {
        name: CheckOut(ok=problem is None, error=problem)
        for name, problem in zip(checks, problems, strict=True)
    }
    if app[SETTINGS].ami_enabled:
        results["ami"] = _link_check(app)
    ready = all(check.ok for check in results.values())
    out = ReadyOut(status="ready" if ready else "not_ready", version=app_version(), checks=results)
    return web.json_response(out.model_dump(), status=200 if ready else 503)


async def _database_problem(app: web.Application) -> str | None:
    # The readers' engine: on SQLite the writer's single connection may be busy
    # with a long write, which says nothing about whether the file can be read.
    try:
        async with asyncio.timeout(CHECK_TIMEOUT), app[READS]() as session:
            await session.execute(text("SELECT 1"))
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT:g}s"
    except Exception as exc:  # any driver error means "not ready"; say which
        return _short(exc)
    return None


async def _redis_problem(probe: redis.Redis) -> str | None:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await probe.ping()
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT:g}s"
    except Exception as exc:  # refused, reset, auth: not ready, and why
        return _short(exc)
    return None


def _link_check(app: web.Application) -> CheckOut:
    link = app.get(LINK)
    if link is None:
        return CheckOut(ok=False, error="the PBX link has not started")
    pbx = app.get(SWITCHBOARD)
    if pbx is not None and not pbx.holding:
        return CheckOut(ok=True)  # a standby: the process holding the link answers for it
    state = link.state
    if state.status is LinkStatus.CONNECTED:
        return CheckOut(ok=True)
    return CheckOut(ok=False, error=state.last_error or state.status.value)


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


async def operations_context(app: web.Application) -> AsyncIterator[None]:
    """The Redis client readiness pings (socket.io's own is not ours to use)."""
    url = app[SETTINGS].redis_url
    if not url:
        yield
        return
    probe = redis.Redis.from_url(
        url, socket_connect_timeout=CHECK_TIMEOUT, socket_timeout=CHECK_TIMEOUT
    )
    app[REDIS_PROBE] = probe
    yield
    await probe.aclose()


async def send_browsers_away(app: web.Application) -> None:
    """On shutdown, before in-flight requests are waited for: close this process's
    socket.io connections, which would otherwise hold the shutdown for its whole
    timeout.  Browsers reconnect, through the proxy, to a process that is up."""
    eio: Any = app[SIO].eio
    if eio.sockets:
        log.info("shutting down: closing %d socket.io connections", len(eio.sockets))
        try:
            async with asyncio.timeout(BROWSERS_CLOSE_TIMEOUT):
                await eio.disconnect()
        except TimeoutError:  # a peer that does not answer the close: cut at shutdown
            log.warning("shutting down: socket.io connections did not close in time")


ENDPOINTS = [
    Endpoint(
        "GET",
        HEALTH_PATH,
        healthz,
        "Liveness: the process answers (never waits for the database); the AMI link's state",
        "operations",
        PUBLIC,
        response=HealthOut,
    ),
    Endpoint(
        "GET",
        READY_PATH,
        readyz,
        "Readiness: database, Redis and AMI link checks by name; 503 with the same body "
        "when one fails",
        "operations",
        PUBLIC,
        response=ReadyOut,
    ),
    Endpoint(
        "GET",
        METRICS_PATH,
        metrics_view,
        "Prometheus metrics (text exposition format); a bearer token when metrics_token is set",
        "operations",
        PUBLIC,
        errors=(401, 404),
    ),
]
