"""The composition root: ``create_app(settings)`` wires every part once.

Everything that starts and stops lives in ``cleanup_ctx``, so shutdown stops
it in reverse order and nothing runs at import time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from importlib.metadata import PackageNotFoundError, version

import aiohttp_jinja2
import jinja2
from aiohttp import web

from cti.link import PbxLink
from desk.clock import Clock, SystemClock
from desk.db import create_engine, database_status, session_factory
from desk.events import DomainEvent, EventBus
from desk.migrate import schema_problem
from desk.models import Role, User
from desk.settings import Settings
from desk.ticket_changes import TicketChanged
from desk.tickets import TicketOpened
from routing.sla_config import SlaConfigError, sla_setup
from routing.sla_keeper import SlaClockKeeper
from routing.watcher import SlaWatcher
from web.api import auth_views, call_views, customer_views, ticket_views, user_views
from web.api.endpoints import PUBLIC, Endpoint, register
from web.api.errors import error_middleware
from web.api.openapi import build_openapi
from web.api.schemas import HealthOut
from web.notifier import Notifier
from web.pages import public_ticket
from web.presence import TicketPresence
from web.realtime import (
    create_socket_server,
    install_connection_handlers,
    install_presence_handlers,
)
from web.security import identity_middleware
from web.state import (
    BUS,
    CLOCK,
    ENGINE,
    LINK,
    READS,
    SESSIONS,
    SETTINGS,
    SIO,
    SLA_KEEPER,
    SLA_WATCHER,
)

log = logging.getLogger(__name__)
NOTIFIER = web.AppKey("notifier", Notifier)
OPENAPI = web.AppKey("openapi", dict)


def app_version() -> str:
    try:
        return version("calldesk")
    except PackageNotFoundError:
        return "0.0.0+unknown"


async def healthz(request: web.Request) -> web.Response:
    database = await database_status(request.app[ENGINE])
    link = request.app.get(LINK)
    out = HealthOut(
        status="ok" if database == "ok" else "degraded",
        database=database,
        version=app_version(),
        ami=link.status() if link is not None else {"status": "disabled", "error": None},
    )
    return web.json_response(out.model_dump(), status=200 if database == "ok" else 503)


async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


def api_endpoints() -> list[Endpoint]:
    return [
        Endpoint(
            "GET",
            "/healthz",
            healthz,
            "Liveness, with the database's state",
            "operations",
            PUBLIC,
            response=HealthOut,
            errors=(503,),
        ),
        Endpoint(
            "GET", "/api/v1/openapi.json", openapi_document, "This document", "operations", PUBLIC
        ),
        *auth_views.ENDPOINTS,
        *customer_views.ENDPOINTS,
        *user_views.ENDPOINTS,
        *call_views.ENDPOINTS,
        *ticket_views.ENDPOINTS,
    ]


class StartupError(Exception):
    """The service cannot start; ``str()`` is the one line to show the operator."""


async def _database(app: web.Application) -> AsyncIterator[None]:
    problem = await schema_problem(app[SETTINGS].database_url)
    if problem is not None:
        raise StartupError(problem)
    url = app[SETTINGS].database_url
    engine = create_engine(url)
    readers = create_engine(url, readers=True) if url.startswith("sqlite") else engine
    app[ENGINE] = engine
    app[SESSIONS] = session_factory(engine)
    app[READS] = session_factory(readers)
    yield
    await engine.dispose()
    await readers.dispose()


async def _realtime(app: web.Application) -> AsyncIterator[None]:
    sio = app[SIO]
    notifier = Notifier(sio=sio)

    async def greet(sid: str, user: User) -> None:
        """A (re)connecting browser first gets the current state, then live updates."""
        link = app.get(LINK)
        if link is None:
            return
        if user.agent is not None:
            showing = link.recorder.showing(user.agent.id)
            await notifier.emit_to_socket("screen_pop_snapshot", showing, sid=sid)
            state = link.agent_state(user.agent.interface)
            if state is not None:
                await notifier.emit_to_socket("agent_state", state, sid=sid)
        if Role(user.role) in (Role.SUPERVISOR, Role.ADMIN):
            await notifier.emit_to_socket("board", link.board(), sid=sid)

    install_connection_handlers(sio, sessions=app[READS], clock=app[CLOCK], on_connected=greet)
    install_presence_handlers(
        sio, presence=TicketPresence(), reads=app[READS], clock=app[CLOCK], notifier=notifier
    )
    app[NOTIFIER] = notifier
    app[BUS].subscribe(DomainEvent, notifier.deliver)
    yield
    await sio.shutdown()


async def _sla(app: web.Application) -> AsyncIterator[None]:
    """SLA clocks for ticket changes, and the watcher that fires their timers."""
    settings = app[SETTINGS]
    try:
        setup = sla_setup(settings)
    except SlaConfigError as exc:
        raise StartupError(str(exc)) from None
    app[SLA_KEEPER] = SlaClockKeeper(setup)
    watcher = SlaWatcher(
        sessions=app[SESSIONS],
        reads=app[READS],
        bus=app[BUS],
        clock=app[CLOCK],
        setup=setup,
        interval=settings.sla_watch_interval,
        batch=settings.sla_watch_batch,
    )

    async def poke(_event: DomainEvent) -> None:
        watcher.poke()  # a committed ticket change may have moved the timers

    app[BUS].subscribe(TicketOpened, poke)
    app[BUS].subscribe(TicketChanged, poke)
    app[SLA_WATCHER] = watcher
    watcher.start()
    yield
    await watcher.stop()


async def _pbx_link(app: web.Application) -> AsyncIterator[None]:
    link = PbxLink(
        settings=app[SETTINGS],
        sessions=app[SESSIONS],
        reads=app[READS],
        bus=app[BUS],
        clock=app[CLOCK],
        # Callback tickets for abandoned calls run SLA clocks like any other ticket.
        sla=app[SLA_KEEPER],
    )
    await link.start()
    app[LINK] = link
    yield
    await link.stop()


def create_app(
    settings: Settings, *, clock: Clock | None = None, bus: EventBus | None = None
) -> web.Application:
    app = web.Application(middlewares=[error_middleware, identity_middleware])
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[BUS] = bus or EventBus()

    endpoints = api_endpoints()
    register(app, endpoints)
    # Customer pages: Jinja2 with autoescape, rendered on the server, no JavaScript.
    aiohttp_jinja2.setup(app, loader=jinja2.PackageLoader("web", "templates"), autoescape=True)
    app.router.add_routes(public_ticket.ROUTES)
    app[OPENAPI] = build_openapi(endpoints, version=app_version())

    # The socket.io route must exist before the router freezes; its handlers
    # need the database, so they are installed once that is up.
    sio = create_socket_server(settings)
    sio.attach(app)
    app[SIO] = sio

    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_realtime)
    app.cleanup_ctx.append(_sla)
    if settings.ami_enabled:
        app.cleanup_ctx.append(_pbx_link)
    return app
