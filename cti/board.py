"""The wallboard's picture of queues and agents at a moment: a pure function."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from cti.agent_state import AgentView
from cti.directory import AgentRef
from cti.queue_state import QueueView


def queue_body(view: QueueView) -> dict[str, Any]:
    offered = view.answered + view.abandoned - view.short_abandons
    handled = view.answered + view.abandoned
    return {
        "queue": view.queue,
        "waiting": len(view.waiting),
        "callers": [
            {
                "position": position,
                "call_id": caller.call_id,
                "number": caller.caller_number_raw,
                "name": caller.caller_name,
                "joined_at": caller.joined_at.isoformat(),
            }
            for position, caller in enumerate(view.waiting, start=1)
        ],
        "longest_wait_seconds": round(view.longest_wait_s, 1),
        "answered": view.answered,
        "answered_within_sl": view.answered_in_sl,
        "abandoned": view.abandoned,
        "short_abandons": view.short_abandons,
        "service_level_seconds": view.service_level_s,
        "service_level_pct": None
        if view.service_level_pct is None
        else round(view.service_level_pct, 1),
        # Shown beside the percentage so a supervisor can tell 100 % of 1 from 100 % of 90.
        "service_level_denominator": offered,
        "abandon_rate_pct": None if handled == 0 else round(100.0 * view.abandoned / handled, 1),
    }


def agent_body(view: AgentView, ref: AgentRef | None, now: datetime) -> dict[str, Any]:
    return {
        "interface": view.interface,
        "agent_id": ref.id if ref else None,
        "name": ref.name if ref else view.name,
        "extension": ref.extension if ref else None,
        "status": view.status.value,
        "since": view.since.isoformat(),
        "seconds_in_state": max(0, round((now - view.since).total_seconds())),
        "pause_reason": view.pause_reason,
        "missed_rings": view.missed_rings,
        "queues": sorted(view.queues),
    }


def board_body(
    *,
    queues: Iterable[QueueView],
    agents: Iterable[tuple[AgentView, AgentRef | None]],
    link: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    return {
        "at": now.isoformat(),
        "link": link,
        "queues": [queue_body(q) for q in sorted(queues, key=lambda q: q.queue)],
        "agents": [
            agent_body(view, ref, now) for view, ref in sorted(agents, key=lambda a: a[0].interface)
        ],
    }
