"""Prometheus metrics at ``/metrics`` (docs/decisions/0009-prometheus-metrics.md).

cti, routing and desk keep plain figures (the AMI client's frame count, the
link's reconnects, the recorder's pop-latency tally, the attendance of agents);
a collector here reads them when Prometheus scrapes, so only the web layer
knows prometheus_client and nothing is counted twice.  What the web layer sees
itself (HTTP requests, SLA events on the bus) it counts itself.

Each app has its own registry: tests build many apps in one process, and a
process serves one app.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Iterable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from desk.events import DomainEvent, EventBus
from desk.models import OutboxMessage
from routing.router import Presence
from routing.sla_keeper import SlaBreached, SlaWarned
from web.api.errors import error_response
from web.security import bearer_token
from web.state import ATTENDANCE, LINK, READS, SETTINGS, SWITCHBOARD

log = logging.getLogger(__name__)

# Seconds; API calls take milliseconds, a slow report or export a few seconds.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A scrape must not hang on a slow database: the outbox depth is then left out.
OUTBOX_READ_TIMEOUT = 1.0
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class DeskMetrics:
    """The app's registry and the figures the web layer counts itself."""

    def __init__(self, app: web.Application) -> None:
        self.registry = CollectorRegistry()
        self.http_seconds = Histogram(
            "calldesk_http_request_duration_seconds",
            "Time from a request's arrival to its response, by route (its pattern, "
            "not the raw path), method and status",
            ("method", "route", "status"),
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        self.sla_warnings = 0
        self.sla_breaches = 0
        self.outbox_unsent: int | None = None
        self.registry.register(LiveFigures(app, self))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def subscribe(self, bus: EventBus) -> None:
        bus.subscribe(SlaWarned, self._sla_event)
        bus.subscribe(SlaBreached, self._sla_event)

    async def _sla_event(self, event: DomainEvent) -> None:
        if isinstance(event, SlaBreached):
            self.sla_breaches += 1
        elif isinstance(event, SlaWarned):
            self.sla_warnings += 1

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "OTHER"
        self.http_seconds.labels(method, route, str(status)).observe(seconds)

    async def read_outbox(self, reads: async_sessionmaker[AsyncSession]) -> None:
        """Messages waiting to be sent (due or being sent): sent and failed ones have
        no next attempt.  Every process reads the same table: aggregate with max()."""
        try:
            async with asyncio.timeout(OUTBOX_READ_TIMEOUT), reads() as session:
                count = await session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.next_attempt_at.is_not(None))
                )
        except Exception as exc:  # slow or away: this scrape goes without the figure
            log.warning("metrics: outbox depth not read: %s", type(exc).__name__)
            self.outbox_unsent = None
            return
        self.outbox_unsent = int(count or 0)


class LiveFigures(Collector):
    """Reads the running parts' own counters at scrape time."""

    def __init__(self, app: web.Application, metrics: DeskMetrics) -> None:
        self._app, self._metrics = app, metrics

    def collect(self) -> Iterable[Metric]:
        link, pbx = self._app.get(LINK), self._app.get(SWITCHBOARD)
        if link is not None and pbx is not None:  # AMI enabled
            # One process of a deployment holds the link (cti/link_holder.py); the
            # others stand by with it stopped.  Their counters keep what they
            # counted while they held it.
            yield GaugeMetricFamily(
                "calldesk_ami_link_holder",
                "1 in the process that holds the PBX link, 0 in standbys",
                value=1 if pbx.holding else 0,
            )
            yield CounterMetricFamily(
                "calldesk_ami_frames_total",
                "AMI frames received from the PBX (rate() gives frames per second)",
                value=link.client.frames_received,
            )
            yield CounterMetricFamily(
                "calldesk_ami_reconnects_total",
                "Connection attempts to the PBX after the first one",
                value=link.state.reconnects,
            )
            yield GaugeMetricFamily(
                "calldesk_ami_link_up",
                "1 while this process's AMI link is connected and logged in (max() over "
                "the processes: is the desk linked to the PBX)",
                value=1 if pbx.holding and link.client.connected else 0,
            )
            tally = link.pop_latency
            yield HistogramMetricFamily(
                "calldesk_screen_pop_latency_seconds",
                "From the AMI frame that decided a screen pop to the pop's emit to the browser",
                # repr() of a float is how Prometheus writes "le" (0.005, 1.0).
                buckets=[(repr(bound), n) for bound, n in tally.cumulative()]
                + [("+Inf", tally.count)],
                sum_value=tally.sum,
            )
        attendance = self._app.get(ATTENDANCE)
        if attendance is not None:
            online = sum(
                1
                for availability in attendance.agent_availability().values()
                if availability.presence is Presence.ONLINE
            )
            yield GaugeMetricFamily(
                "calldesk_agents_connected",
                "Agents with at least one desk browser connected to this process",
                value=online,
            )
        yield CounterMetricFamily(
            "calldesk_sla_warnings_total",
            "SLA warnings fired by this process",
            value=self._metrics.sla_warnings,
        )
        yield CounterMetricFamily(
            "calldesk_sla_breaches_total",
            "SLA breaches recorded by this process",
            value=self._metrics.sla_breaches,
        )
        if self._metrics.outbox_unsent is not None:
            yield GaugeMetricFamily(
                "calldesk_outbox_unsent",
                "Outbox messages not yet sent nor given up (the same in every process)",
                value=self._metrics.outbox_unsent,
            )


METRICS = web.AppKey("metrics", DeskMetrics)


async def metrics_view(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if not settings.metrics_enabled:
        return error_response(404, "not_found", "metrics are switched off (metrics_enabled)")
    wanted = settings.metrics_token.get_secret_value()
    if wanted:
        given = bearer_token(request) or ""
        if not hmac.compare_digest(given.encode(), wanted.encode()):
            response = error_response(401, "unauthenticated", "send the metrics bearer token")
            response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    metrics = request.app[METRICS]
    await metrics.read_outbox(request.app[READS])
    return web.Response(
        body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
