"""SLA set-up through the admin API: checked like the file, stored, used at once,
followed by other processes and kept across a restart."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from desk.models import SlaConfigRevision, TicketClock
from desk.settings import Settings
from routing.sla import ClockKind
from tests.web.conftest import Desk
from web.app import create_app
from web.state import SLA_KEEPER, SLA_SOURCE

# FakeClock starts Monday 5 January 2026, 09:00 UTC (10:00 in Berlin): one business
# hour later is 10:00 UTC; the file's 8 h target would give 17:00 UTC.
ONE_HOUR_LATER = datetime(2026, 1, 5, 10, tzinfo=UTC)


def _file_config(settings: Settings) -> dict[str, Any]:
    return {
        "calendars": copy.deepcopy(settings.sla_calendars),
        "policies": copy.deepcopy(settings.sla_policies),
        "escalation": copy.deepcopy(settings.sla_escalation),
    }


def _standard_first_response(config: dict[str, Any], target: str) -> dict[str, Any]:
    for policy in config["policies"]:
        if policy["name"] == "Standard":
            policy["targets"]["first_response"]["target"] = target
    return config


async def _put(desk: Desk, config: dict[str, Any], who: str = "admin", note: str = "") -> Any:
    return await desk.client.put(
        "/api/v1/sla/config", json={"config": config, "note": note}, headers=desk.auth(who)
    )


async def _revisions(desk: Desk) -> int:
    async with desk.database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(SlaConfigRevision)) or 0)


async def test_supervisors_read_the_set_up_the_file_gives(desk: Desk, settings: Settings) -> None:
    response = await desk.client.get("/api/v1/sla/config", headers=desk.auth("sam"))
    assert response.status == 200
    body = await response.json()
    assert body["revision"] is None and body["in_force"] is True
    assert [p["name"] for p in body["config"]["policies"]] == [
        p["name"] for p in settings.sla_policies
    ]


async def test_only_admins_replace_the_set_up(desk: Desk, settings: Settings) -> None:
    assert (await desk.client.get("/api/v1/sla/config", headers=desk.auth("alice"))).status == 403
    assert (await _put(desk, _file_config(settings), who="sam")).status == 403
    assert (await desk.client.put("/api/v1/sla/config", json={})).status == 401


async def test_a_new_target_applies_to_the_next_ticket_at_once(
    desk: Desk, settings: Settings
) -> None:
    config = _standard_first_response(_file_config(settings), "1h")
    response = await _put(desk, config, note="faster first answers")
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["revision"] == 1 and body["in_force"] and body["note"] == "faster first answers"
    created = await desk.client.post(
        "/api/v1/tickets", json={"subject": "Router is down"}, headers=desk.auth("alice")
    )
    ticket = (await created.json())["id"]
    async with desk.database.sessions() as session:
        due = await session.scalar(
            select(TicketClock.due_at).where(
                TicketClock.ticket_id == ticket, TicketClock.clock == "first_response"
            )
        )
    assert due == ONE_HOUR_LATER


async def test_a_broken_set_up_is_refused_with_its_place_and_nothing_is_saved(
    desk: Desk, settings: Settings
) -> None:
    zero = _standard_first_response(_file_config(settings), "0m")
    no_zone = _file_config(settings)
    no_zone["calendars"]["office"]["time_zone"] = "Mars/Olympus_Mons"
    overlapping = _file_config(settings)
    overlapping["calendars"]["office"]["hours"]["mon"] = ["08:00-12:00", "11:00-18:00"]
    for config in (zero, no_zone, overlapping):
        response = await _put(desk, config)
        assert response.status == 422, await response.text()
        error = (await response.json())["error"]
        assert error["fields"], error
    unknown = {**_file_config(settings), "extras": {}}
    assert (await _put(desk, unknown)).status == 422
    assert await _revisions(desk) == 0
    body = await (await desk.client.get("/api/v1/sla/config", headers=desk.auth("sam"))).json()
    assert body["revision"] is None


async def test_the_history_says_who_changed_what_and_why_newest_first(
    desk: Desk, settings: Settings
) -> None:
    await _put(desk, _standard_first_response(_file_config(settings), "2h"), note="first")
    await _put(desk, _standard_first_response(_file_config(settings), "3h"), note="second")
    response = await desk.client.get("/api/v1/sla/config/history", headers=desk.auth("admin"))
    items = (await response.json())["items"]
    assert [(i["revision"], i["note"], i["in_force"]) for i in items] == [
        (2, "second", True),
        (1, "first", False),
    ]
    assert {i["changed_by"] for i in items} == {desk.ids["admin"]}


async def test_another_process_follows_a_saved_set_up_and_a_restart_keeps_it(
    desk: Desk, settings: Settings
) -> None:
    follower = create_app(
        settings.model_copy(update={"sla_watch_interval": 0.05}), clock=desk.clock
    )
    other = TestClient(TestServer(follower))
    await other.start_server()
    try:
        await _put(desk, _standard_first_response(_file_config(settings), "1h"))
        async with asyncio.timeout(5):
            while follower[SLA_SOURCE].revision != 1:
                await asyncio.sleep(0.02)
        standard = follower[SLA_KEEPER].setup.policy_named("Standard")
        assert standard is not None
        first = standard.target_for(ClockKind.FIRST_RESPONSE)
        assert first is not None and first.target == timedelta(hours=1)
    finally:
        await other.close()
    restarted = create_app(settings, clock=desk.clock)
    again = TestClient(TestServer(restarted))
    await again.start_server()
    try:
        assert restarted[SLA_SOURCE].revision == 1
    finally:
        await again.close()
