"""The SLA API: the board and the reports, for supervisors and admins only, with
the query checked before anything is read."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from desk.events import DomainEvent
from desk.settings import Settings
from routing.sla_board import SlaBoardFeed
from routing.sla_keeper import SlaBreached, SlaWarned
from tests.routing.sla_support import round_the_clock_settings
from tests.web.conftest import Desk
from web import app as web_app
from web.api import sla_views
from web.state import READS, SLA_WATCHER

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)  # FakeClock's start, a Monday
MINUTE = timedelta(minutes=1)
BOARD, REPORTS = "/api/v1/sla/board", "/api/v1/sla/reports"
DAY_ONE = {"from": "2026-01-05T00:00:00Z", "to": "2026-01-06T00:00:00Z"}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The test settings with a 24/7 policy, so due times are plain arithmetic."""
    return round_the_clock_settings(database_url)


@pytest.fixture(autouse=True)
def sla_routes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Serve the SLA endpoints even before web/app.py lists them in its route table."""
    listed = web_app.api_endpoints
    if not any(endpoint.path == BOARD for endpoint in listed()):
        monkeypatch.setattr(web_app, "api_endpoints", lambda: [*listed(), *sla_views.ENDPOINTS])
    yield


class Api:
    """Drives tickets through the API, as agents and the app's own watcher would."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.client: TestClient = desk.client
        self.events: list[DomainEvent] = []

        async def keep(event: DomainEvent) -> None:
            self.events.append(event)

        desk.bus.subscribe(DomainEvent, keep)

    async def customer(self, tier: str) -> int:
        response = await self.client.post(
            "/api/v1/customers", json={"name": f"A {tier} customer", "tier": tier}, **self.alice
        )
        assert response.status == 201, await response.text()
        return int((await response.json())["id"])

    @property
    def alice(self) -> dict[str, Any]:
        return {"headers": self.desk.auth("alice")}

    async def open(self, **fields: Any) -> int:
        body = {"subject": "No dial tone", "assignee_id": self.desk.ids["alice"], **fields}
        response = await self.client.post("/api/v1/tickets", json=body, **self.alice)
        assert response.status == 201, await response.text()
        return int((await response.json())["id"])

    async def reply(self, ticket: int) -> None:
        response = await self.client.post(
            f"/api/v1/tickets/{ticket}/messages",
            json={"kind": "public_reply", "body": "On it."},
            **self.alice,
        )
        assert response.status == 201, await response.text()

    async def solve(self, ticket: int) -> None:
        read = await (await self.client.get(f"/api/v1/tickets/{ticket}", **self.alice)).json()
        response = await self.client.patch(
            f"/api/v1/tickets/{ticket}",
            json={"version": read["version"], "status": "solved"},
            **self.alice,
        )
        assert response.status == 200, await response.text()

    async def at(self, moment: datetime) -> None:
        """Move the clock and let the app's SLA watcher fire what fell due."""
        self.desk.clock.set(moment)
        await self.client.app[SLA_WATCHER].fire_due()


# --- who may look --------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "query"), [(BOARD, {}), (REPORTS, DAY_ONE)])
async def test_an_agent_may_not_see_sla_data(desk: Desk, path: str, query: dict[str, str]) -> None:
    response = await desk.client.get(path, params=query, headers=desk.auth("alice"))
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "forbidden"


@pytest.mark.parametrize(("path", "query"), [(BOARD, {}), (REPORTS, DAY_ONE)])
async def test_anonymous_callers_are_asked_to_sign_in_for_sla_data(
    desk: Desk, path: str, query: dict[str, str]
) -> None:
    response = await desk.client.get(path, params=query)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize("who", ["sam", "admin"])
async def test_supervisors_and_admins_see_the_board_and_the_reports(desk: Desk, who: str) -> None:
    board = await desk.client.get(BOARD, headers=desk.auth(who))
    assert board.status == 200
    reports = await desk.client.get(REPORTS, params=DAY_ONE, headers=desk.auth(who))
    assert reports.status == 200


# --- the query -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-01-06T00:00:00Z", "to": "2026-01-05T00:00:00Z"}, "to"),
        ({"from": "2026-01-05T00:00:00Z", "to": "2026-01-05T00:00:00Z"}, "to"),
        ({"from": "2025-01-01T00:00:00Z", "to": "2026-01-03T00:00:00Z"}, "to"),
        ({"from": "2026-01-05T00:00:00", "to": "2026-01-06T00:00:00Z"}, "from"),
        ({"from": "yesterday", "to": "2026-01-06T00:00:00Z"}, "from"),
        ({"to": "2026-01-06T00:00:00Z"}, "from"),
        ({**DAY_ONE, "by": "weather"}, "by"),
        ({**DAY_ONE, "colour": "red"}, "colour"),
    ],
)
async def test_a_bad_report_query_is_refused_naming_the_parameter(
    desk: Desk, query: dict[str, str], field: str
) -> None:
    response = await desk.client.get(REPORTS, params=query, headers=desk.auth("sam"))
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "invalid_input"
    assert field in error["fields"], error


async def test_a_board_horizon_beyond_a_day_is_refused(desk: Desk) -> None:
    response = await desk.client.get(
        BOARD, params={"horizon_minutes": "1441"}, headers=desk.auth("sam")
    )
    assert response.status == 422
    assert "horizon_minutes" in (await response.json())["error"]["fields"]


# --- what they show ------------------------------------------------------------------------


async def test_the_board_shows_at_risk_and_breached_tickets_at_the_apps_time(desk: Desk) -> None:
    api = Api(desk)
    late = await api.open()
    await api.at(T0 + 30 * MINUTE)
    soon = await api.open()
    await api.at(T0 + 130 * MINUTE)
    board = await (await desk.client.get(BOARD, headers=desk.auth("sam"))).json()
    assert board["at"] == "2026-01-05T11:10:00Z"
    assert [(r["ticket_id"], r["clock"], r["seconds_left"]) for r in board["at_risk"]] == [
        (soon, "first_response", 1200.0)
    ]
    assert [(b["ticket_id"], b["breached_at"]) for b in board["breached"]] == [
        (late, "2026-01-05T11:00:00Z")
    ]
    assert [(e["ticket_id"], e["level"]) for e in board["escalations"]] == [(late, 1)]
    (alice,) = [a for a in board["agents"] if a["user_id"] == desk.ids["alice"]]
    assert (alice["open_tickets"], alice["load"]) == (2, 2.0)


async def test_the_reports_count_tickets_driven_through_warning_and_breach(desk: Desk) -> None:
    api = Api(desk)
    gold = await api.customer("gold")
    quick = await api.open(customer_id=gold)
    slow = await api.open()
    await api.at(T0 + 30 * MINUTE)
    await api.reply(quick)
    await api.at(T0 + 100 * MINUTE)
    await api.at(T0 + 130 * MINUTE)
    assert [e.ticket_id for e in api.events if isinstance(e, SlaWarned)] == [slow]
    assert [e.ticket_id for e in api.events if isinstance(e, SlaBreached)] == [slow]
    await api.reply(slow)
    await api.at(T0 + 180 * MINUTE)
    await api.solve(quick)
    await api.solve(slow)

    response = await desk.client.get(
        REPORTS, params={**DAY_ONE, "by": "tier"}, headers=desk.auth("sam")
    )
    assert response.status == 200, await response.text()
    report = await response.json()
    assert (report["from"], report["to"], report["by"]) == (
        "2026-01-05T00:00:00Z",
        "2026-01-06T00:00:00Z",
        "tier",
    )
    assert report["time_basis"] == "business"
    table = {
        (group["key"], clock["clock"]): (
            clock["met"],
            clock["denominator"],
            clock["compliance_percent"],
            clock["median_seconds"],
        )
        for group in report["groups"]
        for clock in group["clocks"]
    }
    assert table == {
        ("gold", "first_response"): (1, 1, 100.0, 1800.0),
        ("gold", "resolution"): (1, 1, 100.0, 10800.0),
        ("standard", "first_response"): (0, 1, 0.0, 7800.0),
        ("standard", "resolution"): (1, 1, 100.0, 10800.0),
    }
    first = next(c for c in report["total"]["clocks"] if c["clock"] == "first_response")
    assert (first["compliance_percent"], first["denominator"]) == (50.0, 2)
    assert first["p90_seconds"] == pytest.approx(1800 + 0.9 * 6000)


async def test_the_live_board_payload_is_what_the_board_endpoint_returns(desk: Desk) -> None:
    api = Api(desk)
    await api.open()
    await api.at(T0 + 100 * MINUTE)
    pushed: list[dict[str, Any]] = []

    async def publish(board: Any) -> None:
        pushed.append(sla_views.sla_board_payload(board))

    feed = SlaBoardFeed(
        sessions=desk.client.app[READS], clock=desk.clock, publish=publish, interval=3600
    )
    await feed.refresh()
    served = await (await desk.client.get(BOARD, headers=desk.auth("sam"))).json()
    assert pushed == [served]
    assert served["at_risk"][0]["warned"] is True


async def test_the_sla_endpoints_are_documented_with_their_query_parameters(desk: Desk) -> None:
    document = await (await desk.client.get("/api/v1/openapi.json")).json()
    reports = document["paths"][REPORTS]["get"]
    assert reports["x-roles"] == ["admin", "supervisor"]
    assert {p["name"] for p in reports["parameters"]} == {"from", "to", "by"}
    assert {"401", "403", "422"} <= set(reports["responses"])
