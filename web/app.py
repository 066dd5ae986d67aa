"""The composition root: ``create_app(settings)`` wires every part once.

Everything that starts and stops lives in ``cleanup_ctx``, so shutdown stops
it in reverse order and nothing runs at import time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from redis.asyncio import Redis

from cti.link import PbxLink
from cti.link_holder import LinkHolder
from cti.notices import AgentStateChanged
from desk.clock import Clock, SystemClock
from desk.db import create_engine, session_factory, sqlite_database
from desk.events import DomainEvent, EventBus
from desk.leases import lease_for
from desk.mail_sender import MailSender, SmtpRelay
from desk.migrate import schema_problem
from desk.models import Role, User
from desk.settings import Settings
from desk.survey_answers import SurveyAnswers
from desk.survey_policy import SurveyPolicy, low_score_rule
from desk.survey_tokens import TokenKey
from desk.surveys import SurveyScheduler
from desk.surveys import attach as attach_surveys
from desk.ticket_changes import TicketChanged
from desk.tickets import TicketOpened
from desk.wal_checkpoints import WalCheckpointer
from kb.options import KbOptions
from kb.suggestions import pop_articles
from routing.assignment import Attendance, AvailabilitySource, TicketAssigner
from routing.attendance import SharedAttendance
from routing.router import PhoneState
from routing.routing_config import RoutingConfigError, load_routing_setup
from routing.sla_admin import SlaSetupSource
from routing.sla_board import SlaBoard, SlaBoardFeed
from routing.sla_config import SlaConfigError, SlaSetup, sla_setup
from routing.sla_keeper import SlaClockKeeper, SlaEvent
from routing.ticket_automation import TicketAutomation
from routing.watcher import SlaWatcher
from web.api import (
    auth_views,
    call_views,
    customer_views,
    kb_views,
    privacy_views,
    sla_policy_views,
    sla_views,
    survey_report_views,
    survey_views,
    ticket_views,
    user_views,
)
from web.api.endpoints import PUBLIC, Endpoint, register
from web.api.errors import error_middleware
from web.api.openapi import build_openapi
from web.attendance_relay import AttendanceRelay
from web.audit import audit_reads_context
from web.headers import header_setter
from web.link_relay import LinkRelay
from web.metrics import METRICS, DeskMetrics
from web.notifier import Notifier
from web.operations import ENDPOINTS as OPERATIONS_ENDPOINTS
from web.operations import (
    app_version,
    operations_context,
    operations_middleware,
    send_browsers_away,
)
from web.pages import (
    agent_desk,
    customer_page,
    desk_tickets,
    help_center,
    public_ticket,
    sign_in,
    survey,
    wallboard,
)
from web.presence import TicketPresence
from web.realtime import (
    create_socket_server,
    install_connection_handlers,
    install_presence_handlers,
)
from web.security import identity_middleware
from web.state import (
    ASSIGNER,
    ATTENDANCE,
    BUS,
    CLOCK,
    ENGINE,
    LINK,
    LOAD_WEIGHTS,
    MAIL_SENDER,
    POP_READS,
    READS,
    SESSIONS,
    SETTINGS,
    SHARED_ATTENDANCE,
    SIO,
    SLA_BOARD_FEED,
    SLA_KEEPER,
    SLA_SOURCE,
    SLA_WATCHER,
    SURVEY_ANSWERS,
    SURVEY_SCHEDULER,
    SURVEY_TOKEN_KEY,
    SWITCHBOARD,
)
from web.switchboard import PbxUnavailable, Switchboard
from web.throttle import public_rate_limits, rate_store_context

log = logging.getLogger(__name__)
NOTIFIER = web.AppKey("notifier", Notifier)
OPENAPI = web.AppKey("openapi", dict)
STATIC_DIR = Path(__file__).parent / "static"


async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


def api_endpoints() -> list[Endpoint]:
    return [
        # /healthz, /readyz, /metrics (docs/deploy.md)
        *OPERATIONS_ENDPOINTS,
        Endpoint(
            "GET", "/api/v1/openapi.json", openapi_document, "This document", "operations", PUBLIC
        ),
        *auth_views.ENDPOINTS,
        *customer_views.ENDPOINTS,
        *privacy_views.ENDPOINTS,
        *user_views.ENDPOINTS,
        *call_views.ENDPOINTS,
        *ticket_views.ENDPOINTS,
        *sla_policy_views.ENDPOINTS,
        *sla_views.ENDPOINTS,
        # Reports before surveys: /surveys/reports must not be taken for /surveys/{id}.
        *survey_report_views.ENDPOINTS,
        *survey_views.ENDPOINTS,
        *kb_views.ENDPOINTS,
    ]


class StartupError(Exception):
    """The service cannot start; ``str()`` is the one line to show the operator."""


async def _database(app: web.Application) -> AsyncIterator[None]:
    problem = await schema_problem(app[SETTINGS].database_url)
    if problem is not None:
        raise StartupError(problem)
    url = app[SETTINGS].database_url
    sqlite_file = sqlite_database(url)
    engine = create_engine(url, background_checkpoints=sqlite_file is not None)
    sqlite = url.startswith("sqlite")
    readers = create_engine(url, readers=True) if sqlite else engine
    quick = create_engine(url, readers=True, quick=True) if sqlite else engine
    app[ENGINE] = engine
    app[SESSIONS] = session_factory(engine)
    app[READS] = session_factory(readers)
    app[POP_READS] = session_factory(quick)
    checkpoints = WalCheckpointer(sqlite_file) if sqlite_file is not None else None
    if checkpoints is not None:
        checkpoints.start()
    yield
    if checkpoints is not None:
        await checkpoints.stop()
    await engine.dispose()
    await readers.dispose()
    await quick.dispose()


async def _realtime(app: web.Application) -> AsyncIterator[None]:
    sio = app[SIO]
    notifier = Notifier(sio=sio)

    async def greet(sid: str, user: User) -> None:
        """A (re)connecting browser first gets the current state, then live updates."""
        if user.agent is not None and app[ATTENDANCE].connected(user.agent.id, sid):
            assigner = app.get(ASSIGNER)
            if assigner is not None:  # a browser online: queued tickets may fit now
                assigner.on_agent_available(user.agent.id)
        feed = app.get(SLA_BOARD_FEED)
        supervisor = Role(user.role) in (Role.SUPERVISOR, Role.ADMIN)
        if supervisor and feed is not None and feed.latest is not None:
            payload = sla_views.sla_board_payload(feed.latest)
            await notifier.emit_to_socket("sla_board", payload, sid=sid)
        pbx = app.get(SWITCHBOARD)
        if pbx is None:
            return
        try:
            # Asked only now, with the socket in its rooms: a pop that is not in the
            # snapshot reaches it live (the process holding the link may be another).
            if user.agent is not None:
                showing = await pbx.showing(user.agent.id)
                await notifier.emit_to_socket("screen_pop_snapshot", showing, sid=sid)
                state = await pbx.agent_state(user.agent.interface)
                if state is not None:
                    await notifier.emit_to_socket("agent_state", state, sid=sid)
            if Role(user.role) in (Role.SUPERVISOR, Role.ADMIN):
                await notifier.emit_to_socket("board", await pbx.board(), sid=sid)
        except PbxUnavailable as exc:  # live updates follow once a process holds the link
            log.warning("a connecting browser gets no PBX snapshot: %s", exc)

    leave_tickets = install_presence_handlers(
        sio, presence=TicketPresence(), reads=app[READS], clock=app[CLOCK], notifier=notifier
    )

    async def farewell(sid: str, session: dict[str, Any]) -> None:
        await leave_tickets(sid)
        agent_id = session.get("agent_id")
        if isinstance(agent_id, int):
            app[ATTENDANCE].disconnected(agent_id, sid, now=app[CLOCK].now())

    install_connection_handlers(
        sio,
        sessions=app[READS],
        clock=app[CLOCK],
        on_connected=greet,
        on_disconnected=farewell,
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
    keeper = app[SLA_KEEPER] = SlaClockKeeper(setup)
    source = app[SLA_SOURCE] = SlaSetupSource(setup=setup, settings=settings)
    watcher = SlaWatcher(
        sessions=app[SESSIONS],
        reads=app[READS],
        bus=app[BUS],
        clock=app[CLOCK],
        setup=setup,
        interval=settings.sla_watch_interval,
        batch=settings.sla_watch_batch,
        mail=app.get(MAIL_SENDER),  # None while e-mail is off: escalations mail nobody
    )

    async def poke(_event: DomainEvent) -> None:
        watcher.poke()  # a committed ticket change may have moved the timers

    app[BUS].subscribe(TicketOpened, poke)
    app[BUS].subscribe(TicketChanged, poke)
    app[SLA_WATCHER] = watcher

    def swap(new: SlaSetup) -> None:
        keeper.setup = new
        watcher.use_setup(new)

    source.on_change(swap)
    # A set-up saved through the admin API wins over the file, in every process.
    async with app[READS]() as session:
        await source.refresh(session)
    following = asyncio.create_task(
        _follow_sla_revisions(app, every=settings.sla_watch_interval), name="sla-revisions"
    )
    watcher.start()
    yield
    following.cancel()
    await asyncio.gather(following, return_exceptions=True)
    await watcher.stop()


async def _follow_sla_revisions(app: web.Application, *, every: float) -> None:
    """Pick up SLA set-ups other processes saved."""
    while True:
        await asyncio.sleep(every)
        try:
            async with app[READS]() as session:
                await app[SLA_SOURCE].refresh(session)
        except Exception:  # the database is away: try again next time
            log.exception("could not look for a new SLA set-up")


async def _mail(app: web.Application) -> AsyncIterator[None]:
    """The outbox's mail sender; only when e-mail is on (smtp_host set)."""
    settings = app[SETTINGS]
    sender = MailSender(
        sessions=app[SESSIONS],
        reads=app[READS],
        clock=app[CLOCK],
        relay=SmtpRelay.from_settings(settings),
        max_attempts=settings.mail_max_attempts,
    )
    app[MAIL_SENDER] = sender
    sender.start()
    yield
    await sender.stop()


async def _surveys(app: web.Application) -> AsyncIterator[None]:
    """Survey links are answered always (old e-mails keep working); new surveys are
    triggered only with surveys on and e-mail configured."""
    settings = app[SETTINGS]
    key = app[SURVEY_TOKEN_KEY] = TokenKey.from_secret(settings.secret_key.get_secret_value())
    app[SURVEY_ANSWERS] = SurveyAnswers(
        sessions=app[SESSIONS],
        reads=app[READS],
        bus=app[BUS],
        rule=low_score_rule(settings),
        edit_window=timedelta(minutes=settings.surveys_edit_minutes),
        reopen_ticket=settings.surveys_reopen_ticket,
        sla=app[SLA_KEEPER],
    )
    if settings.surveys_enabled and settings.mail_enabled:
        scheduler = SurveyScheduler(
            policy=SurveyPolicy.from_settings(settings), key=key, delivery=app.get(MAIL_SENDER)
        )
        attach_surveys(app[SESSIONS], scheduler)
        app[SURVEY_SCHEDULER] = scheduler
    app[SURVEY_ANSWERS].start()
    yield
    await app[SURVEY_ANSWERS].stop()


async def _shared_attendance(app: web.Application) -> AsyncIterator[None]:
    """With Redis, the assigner routes among the agents of every process: each
    publishes its browsers (and the link holder its phones) and merges the others'."""
    settings = app[SETTINGS]

    def phones_live() -> bool:
        # A process that let go of the PBX link keeps the phone states it last heard.
        pbx = app.get(SWITCHBOARD)
        return pbx is None or pbx.holding

    def available(agent_id: int) -> None:
        assigner = app.get(ASSIGNER)
        if assigner is not None:  # online through another process: queued tickets may fit
            assigner.on_agent_available(agent_id)

    view = SharedAttendance(app[ATTENDANCE], clock=app[CLOCK], phones_live=phones_live)
    relay = AttendanceRelay(
        redis=Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.attendance_expiry,
            socket_connect_timeout=settings.attendance_expiry,
        ),
        view=view,
        on_available=available,
        interval=settings.attendance_interval,
        expiry=settings.attendance_expiry,
    )
    app[ATTENDANCE].on_change(relay.poke)
    app[SHARED_ATTENDANCE] = view
    await relay.start()
    yield
    await relay.stop()


async def _routing(app: web.Application) -> AsyncIterator[None]:
    """Ticket routing: rules from routing.toml and the assigner that applies them."""
    try:
        setup = await load_routing_setup(app[SETTINGS], sessions=app[READS])
    except RoutingConfigError as exc:
        raise StartupError(str(exc)) from None
    attendance, bus = app[ATTENDANCE], app[BUS]
    # Every process's agents with Redis; without it this process is all there is.
    availability: AvailabilitySource = app.get(SHARED_ATTENDANCE, attendance)
    automation = TicketAutomation(
        sessions=app[SESSIONS],
        bus=bus,
        clock=app[CLOCK],
        rules=setup.automation,
        sla=app[SLA_KEEPER],
    )
    assigner = TicketAssigner(
        sessions=app[SESSIONS],
        reads=app[READS],
        bus=bus,
        clock=app[CLOCK],
        rules=setup.rules,
        availability=availability,
        sla=app[SLA_KEEPER],
        sweep_interval=setup.sweep_interval,
        automation=automation,
    )
    bus.subscribe(TicketOpened, assigner.on_ticket_opened)
    bus.subscribe(TicketChanged, assigner.on_ticket_changed)

    async def phone(event: DomainEvent) -> None:
        if not isinstance(event, AgentStateChanged):
            return
        state = PhoneState(event.body["status"])  # the PBX's agent states, same values
        changed = attendance.phone_changed(event.agent_id, state, now=event.occurred_at)
        if changed and state is PhoneState.READY:
            assigner.on_agent_available(event.agent_id)

    bus.subscribe(AgentStateChanged, phone)
    app[ASSIGNER] = assigner
    app[LOAD_WEIGHTS] = dict(setup.rules.weights)
    assigner.start()
    yield
    await assigner.stop()


async def _sla_board(app: web.Application) -> AsyncIterator[None]:
    """The supervisors' SLA board, pushed to their room when it may have moved."""
    notifier = app[NOTIFIER]

    async def publish(board: SlaBoard) -> None:
        await notifier.emit("sla_board", sla_views.sla_board_payload(board), rooms=["supervisors"])

    loads: dict[str, float] = app[LOAD_WEIGHTS]
    feed = SlaBoardFeed(
        sessions=app[READS],
        clock=app[CLOCK],
        publish=publish,
        interval=app[SETTINGS].sla_watch_interval,
        weights=loads,
    )

    async def poke(_event: DomainEvent) -> None:
        feed.poke()

    for kind in (TicketOpened, TicketChanged, SlaEvent):
        app[BUS].subscribe(kind, poke)
    app[SLA_BOARD_FEED] = feed
    feed.start()
    yield
    await feed.stop()


async def _pbx_link(app: web.Application) -> AsyncIterator[None]:
    """One process of those sharing the database holds the PBX link (a lease, taken
    over within seconds when its holder dies); the others ask it through Redis."""
    settings = app[SETTINGS]
    link = PbxLink(
        settings=settings,
        sessions=app[SESSIONS],
        reads=app[POP_READS],
        bus=app[BUS],
        clock=app[CLOCK],
        # Callback tickets for abandoned calls run SLA clocks like any other ticket.
        sla=app[SLA_KEEPER],
        # What the knowledge base suggests for the caller's open tickets, in the pop.
        articles=pop_articles,
    )
    holder = LinkHolder(link=link, lease=lease_for(settings.database_url, "pbx-link"))
    relay: LinkRelay | None = None
    if settings.redis_url:
        relay = LinkRelay(
            redis=Redis.from_url(settings.redis_url, decode_responses=True),
            answer=lambda request: switchboard.answer(request),
        )
        await relay.start()
        holder.on_change(relay.serve)
    switchboard = Switchboard(holder=holder, relay=relay)
    app[LINK] = link
    app[SWITCHBOARD] = switchboard
    await holder.start()
    yield
    await holder.stop()
    if relay is not None:
        await relay.stop()


def create_app(
    settings: Settings, *, clock: Clock | None = None, bus: EventBus | None = None
) -> web.Application:
    # Request ids and HTTP latency first: they cover every other middleware.
    app = web.Application(
        middlewares=[
            operations_middleware,
            error_middleware,
            public_rate_limits,
            identity_middleware,
        ]
    )
    app.on_response_prepare.append(header_setter(settings))
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[BUS] = bus or EventBus()
    app[METRICS] = DeskMetrics(app)
    app[METRICS].subscribe(app[BUS])
    app[ATTENDANCE] = Attendance()
    app[kb_views.KB_OPTIONS] = KbOptions()

    endpoints = api_endpoints()
    register(app, endpoints)
    # Customer pages: Jinja2 with autoescape, rendered on the server, no JavaScript.
    aiohttp_jinja2.setup(app, loader=jinja2.PackageLoader("web", "templates"), autoescape=True)
    app.router.add_routes(public_ticket.ROUTES)
    # The help center's routes start with /help/<language>; the form's come first.
    app.router.add_routes(help_center.ROUTES)
    app.router.add_routes(survey.ROUTES)
    # Staff screens: server-rendered, with small scripts and the socket.io client served
    # from web/static (the client is fetched from npm at setup: see the Makefile).
    app.router.add_routes(sign_in.ROUTES)
    app.router.add_routes(agent_desk.ROUTES)
    app.router.add_routes(desk_tickets.ROUTES)
    app.router.add_routes(customer_page.ROUTES)
    app.router.add_routes(wallboard.ROUTES)
    app.router.add_static("/static/", STATIC_DIR, name="static")
    app[OPENAPI] = build_openapi(endpoints, version=app_version())

    # The socket.io route must exist before the router freezes; its handlers
    # need the database, so they are installed once that is up.
    sio = create_socket_server(settings)
    sio.attach(app)
    app[SIO] = sio

    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(rate_store_context)
    app.cleanup_ctx.append(audit_reads_context)
    app.cleanup_ctx.append(operations_context)
    app.on_shutdown.append(send_browsers_away)
    app.cleanup_ctx.append(_realtime)
    if settings.mail_enabled:
        app.cleanup_ctx.append(_mail)
    app.cleanup_ctx.append(_sla)
    app.cleanup_ctx.append(_surveys)
    if settings.redis_url:
        app.cleanup_ctx.append(_shared_attendance)
    app.cleanup_ctx.append(_routing)
    app.cleanup_ctx.append(_sla_board)
    if settings.ami_enabled:
        app.cleanup_ctx.append(_pbx_link)
    return app
