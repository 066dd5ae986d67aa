"""The supervisors' wallboard: queues, agents, SLA risks and the day in pictures.

Rendered on the server from the PBX link's board, the SLA board, today's call
log and today's survey answers; ``static/wallboard.js`` then applies the ``board``
and ``sla_board`` socket.io events, reloads ``/wallboard/day`` (ASA, the charts and
CSAT today) when the queues' counters move or an answer comes in, and the open
low-score follow-ups when one is raised or acknowledged.  "Today" is the call
center's day (``timezone`` setting).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select

from desk.models import Call
from desk.survey_reports import Tally, answered_tally, follow_ups, scores_of
from routing.router import DEFAULT_WEIGHTS
from routing.sla_board import read_board
from web.api.endpoints import SUPERVISORS
from web.api.sla_views import sla_board_payload
from web.api.survey_report_views import follow_up_payload
from web.pages.sign_in import staff_context, staff_page_user
from web.state import CLOCK, LOAD_WEIGHTS, READS, SETTINGS, SWITCHBOARD
from web.switchboard import PbxUnavailable

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# The wall shows the oldest open low scores first; the full list is in the API.
LOW_SCORES_SHOWN = 20
CHART_WIDTH, CHART_HEIGHT = 480, 120


@dataclass(frozen=True, slots=True)
class LoggedCall:
    """What the day's figures need of one call of the log."""

    started_at: datetime
    queue: str | None
    outcome: str | None
    wait_seconds: float | None


@dataclass(frozen=True, slots=True)
class HourFigures:
    hour: int
    answered: int
    abandoned: int
    within_sl: int
    short_abandons: int

    @property
    def service_level_pct(self) -> float | None:
        offered = self.answered + self.abandoned - self.short_abandons
        return None if offered <= 0 else round(100.0 * self.within_sl / offered, 1)


def hour_figures(
    calls: Iterable[LoggedCall],
    *,
    day_start: datetime,
    hours: int,
    service_levels: Mapping[str, float],
    default_service_level: float,
    short_abandon_seconds: float,
) -> list[HourFigures]:
    """Answered / abandoned / within service level per hour from ``day_start`` (inbound
    queue calls only; the wallboard's service level, per hour)."""
    counts = [[0, 0, 0, 0] for _ in range(hours)]
    for call in calls:
        if call.queue is None or call.started_at < day_start:
            continue
        slot = int((call.started_at - day_start) / HOUR)
        if slot >= hours:
            continue
        wait = call.wait_seconds or 0.0
        if call.outcome == "answered":
            counts[slot][0] += 1
            if wait <= service_levels.get(call.queue, default_service_level):
                counts[slot][2] += 1
        elif call.outcome == "abandoned":
            counts[slot][1] += 1
            if wait < short_abandon_seconds:
                counts[slot][3] += 1
    return [HourFigures(hour, *row) for hour, row in enumerate(counts)]


def average_answer_seconds(calls: Iterable[LoggedCall]) -> dict[str, float]:
    """ASA per queue: the mean wait of the answered calls."""
    waits: dict[str, list[float]] = {}
    for call in calls:
        if call.queue is not None and call.outcome == "answered":
            waits.setdefault(call.queue, []).append(call.wait_seconds or 0.0)
    return {queue: round(sum(w) / len(w), 1) for queue, w in sorted(waits.items())}


def local_day_start(now: datetime, zone: ZoneInfo) -> datetime:
    """Midnight of the call center's day that holds ``now`` (aware, in ``zone``)."""
    return now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)


def duration(seconds: float | None) -> str:
    """Seconds as the wallboard shows them: "1h 05m 00s", "4m 12s", "12s" (as wallboard.js)."""
    s = max(0, round(seconds or 0))
    hours, minutes, rest = s // 3600, (s % 3600) // 60, s % 60
    if hours:
        return f"{hours}h {minutes:02d}m {rest:02d}s"
    if minutes:
        return f"{minutes}m {rest:02d}s"
    return f"{rest}s"


def bars(values: list[float], *, top: float | None = None) -> list[dict[str, float]]:
    """Bar geometry in a CHART_WIDTH x CHART_HEIGHT box (SVG y grows downwards)."""
    if not values:
        return []
    highest = top if top is not None else max(max(values), 1.0)
    step = CHART_WIDTH / len(values)
    out = []
    for i, value in enumerate(values):
        height = 0.0 if highest <= 0 else CHART_HEIGHT * min(value, highest) / highest
        out.append(
            {
                "x": round(i * step + 1, 1),
                "y": round(CHART_HEIGHT - height, 1),
                "width": round(max(step - 2, 1), 1),
                "height": round(height, 1),
                "value": value,
            }
        )
    return out


def csat_payload(tally: Tally) -> dict[str, Any]:
    """CSAT today as the wallboard shows it: the share of satisfied answers (4 or 5)
    with its denominator, the average, and NPS when anyone answered that question."""
    scores = scores_of(tally)
    return {
        "answers": scores.csat_answers,
        "satisfied": tally.csat_good,
        "percent": scores.csat_percent,
        "average": scores.csat_average,
        "nps": scores.nps,
        "nps_answers": scores.nps_answers,
    }


def day_payload(
    figures: list[HourFigures], asa: dict[str, float], *, csat: Tally
) -> dict[str, Any]:
    """The JSON of ``/wallboard/day``: ASA per queue, the two charts' bars, CSAT today."""
    totals = [float(f.answered + f.abandoned) for f in figures]
    levels = [f.service_level_pct for f in figures]
    return {
        "asa": asa,
        "hours": [f.hour for f in figures],
        "calls": {
            "answered": bars([float(f.answered) for f in figures], top=max([*totals, 1.0])),
            "total": bars(totals),
        },
        "service_level": bars([v or 0.0 for v in levels], top=100.0),
        "service_level_known": [v is not None for v in levels],
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "csat": csat_payload(csat),
    }


async def _day(request: web.Request) -> dict[str, Any]:
    settings, now = request.app[SETTINGS], request.app[CLOCK].now()
    day_start = local_day_start(now, settings.zone)
    async with request.app[READS]() as session:
        rows = await session.execute(
            select(Call.started_at, Call.queue, Call.outcome, Call.wait_seconds).where(
                Call.started_at >= day_start
            )
        )
        calls = [LoggedCall(*row) for row in rows]
        csat = await answered_tally(session, start=day_start, end=day_start + DAY)
    figures = hour_figures(
        calls,
        day_start=day_start,
        hours=24,
        service_levels={q: s.service_level_seconds for q, s in settings.cti_queues.items()},
        default_service_level=20.0,
        short_abandon_seconds=settings.cti_short_abandon_seconds,
    )
    return day_payload(figures, average_answer_seconds(calls), csat=csat)


async def day(request: web.Request) -> web.Response:
    staff_page_user(request, SUPERVISORS)
    return web.json_response(await _day(request))


async def wallboard_page(request: web.Request) -> web.Response:
    user = staff_page_user(request, SUPERVISORS)
    pbx = request.app.get(SWITCHBOARD)
    board = None
    if pbx is not None:
        # No process holding the link just now: the board arrives with the next update.
        with contextlib.suppress(PbxUnavailable):
            board = await pbx.board()
    weights = request.app.get(LOAD_WEIGHTS)
    async with request.app[READS]() as session:
        sla = sla_board_payload(
            await read_board(
                session,
                now=request.app[CLOCK].now(),
                horizon=HOUR,
                weights=weights if weights is not None else DEFAULT_WEIGHTS,
            )
        )
        low_scores = [
            follow_up_payload(item)
            for item in await follow_ups(session, open_only=True, limit=LOW_SCORES_SHOWN)
        ]
    context = staff_context(request, user)
    day_figures = await _day(request)
    dark = request.query.get("theme") == "dark"
    context |= {
        "live": True,
        "board": board,
        "sla": sla,
        "day": day_figures,
        "dark": dark,
        "duration": duration,
        "low_scores": low_scores,
        "config": {
            "words": context["t"],
            "board": board,
            "sla": sla,
            "day": day_figures,
            "low_scores_shown": LOW_SCORES_SHOWN,
        },
    }
    return aiohttp_jinja2.render_template("wallboard/wallboard.html", request, context)


ROUTES = [
    web.get("/wallboard", wallboard_page),
    web.get("/wallboard/day", day),
]
