"""/metrics: Prometheus text with the desk's series, moving as the desk works,
labelled by route pattern, and only for whoever holds the token when one is set."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pydantic import SecretStr

from desk.outbox import enqueue_mail
from desk.settings import Settings
from tests.conftest import Database
from tests.cti_e2e.conftest import E2E, running_desk
from tests.routing.sla_support import round_the_clock_settings
from tests.web.conftest import Desk
from web.app import create_app
from web.state import SLA_WATCHER

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)  # FakeClock's start
SERIES = (
    "calldesk_http_request_duration_seconds",
    "calldesk_agents_connected",
    "calldesk_sla_warnings",
    "calldesk_sla_breaches",
    "calldesk_outbox_unsent",
    "process_resident_memory_bytes",
)
AMI_SERIES = (
    "calldesk_ami_link_holder",
    "calldesk_ami_frames",
    "calldesk_ami_reconnects",
    "calldesk_ami_link_up",
    "calldesk_screen_pop_latency_seconds",
)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Test settings with a 24/7 SLA policy, so warnings and breaches are arithmetic."""
    return round_the_clock_settings(database_url)


class Scrape:
    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}

    def samples(self, name: str) -> list[Sample]:
        return [s for f in self.families.values() for s in f.samples if s.name == name]

    def value(self, name: str, **labels: str) -> float:
        found = [s.value for s in self.samples(name) if labels.items() <= s.labels.items()]
        assert len(found) == 1, (name, labels, found)
        return found[0]


async def scrape(client: TestClient, **headers: str) -> Scrape:
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    assert response.content_type == "text/plain"
    return Scrape(await response.text())


@pytest.fixture
async def e2e(settings: Settings, database: Database) -> AsyncIterator[E2E]:
    async with running_desk(settings, database) as desk:
        yield desk


async def test_the_metrics_text_names_the_desks_series(desk: Desk) -> None:
    await desk.client.get("/healthz")
    metrics = await scrape(desk.client)
    for name in SERIES:
        assert name in metrics.families, name
    # No PBX configured: no AMI series that would read as a link that is down.
    for name in AMI_SERIES:
        assert name not in metrics.families, name


async def test_a_request_moves_the_http_latency_histogram_of_its_route(desk: Desk) -> None:
    route = {"method": "GET", "route": "/api/v1/openapi.json", "status": "200"}
    await desk.client.get("/api/v1/openapi.json")
    before = (await scrape(desk.client)).value(
        "calldesk_http_request_duration_seconds_count", **route
    )
    await desk.client.get("/api/v1/openapi.json")
    after = await scrape(desk.client)
    assert after.value("calldesk_http_request_duration_seconds_count", **route) == before + 1
    assert after.value("calldesk_http_request_duration_seconds_sum", **route) > 0


async def test_raw_paths_are_counted_under_their_route_pattern(desk: Desk) -> None:
    for ticket in (101, 202, 303):
        await desk.client.get(f"/api/v1/tickets/{ticket}", headers=desk.auth("alice"))
    await desk.client.get("/no/such/page/4711")
    metrics = await scrape(desk.client)
    routes = {
        s.labels["route"] for s in metrics.samples("calldesk_http_request_duration_seconds_count")
    }
    assert "/api/v1/tickets/{id}" in routes
    assert "unmatched" in routes
    assert not any(("101" in r) or ("4711" in r) for r in routes), routes
    one_pattern = metrics.value(
        "calldesk_http_request_duration_seconds_count",
        route="/api/v1/tickets/{id}",
        status="404",
    )
    assert one_pattern == 3


async def test_sla_warnings_and_breaches_fired_by_the_watcher_are_counted(desk: Desk) -> None:
    response = await desk.client.post(
        "/api/v1/tickets",
        json={"subject": "No dial tone", "assignee_id": desk.ids["alice"]},
        headers=desk.auth("alice"),
    )
    assert response.status == 201, await response.text()
    desk.clock.set(T0 + timedelta(hours=2, minutes=1))  # first response: warned, then breached
    await desk.client.app[SLA_WATCHER].fire_due()
    metrics = await scrape(desk.client)
    assert metrics.value("calldesk_sla_warnings_total") == 1
    assert metrics.value("calldesk_sla_breaches_total") == 1


async def test_the_outbox_depth_counts_messages_not_yet_sent(desk: Desk) -> None:
    assert (await scrape(desk.client)).value("calldesk_outbox_unsent") == 0
    async with desk.database.sessions() as session:
        for n in range(3):
            await enqueue_mail(
                session,
                dedupe_key=f"metrics-test:{n}",
                to=["tom@example.com"],
                subject="Hello",
                body="Hello",
                now=desk.clock.now(),
            )
        await session.commit()
    assert (await scrape(desk.client)).value("calldesk_outbox_unsent") == 3


async def test_a_replayed_call_moves_the_frame_count_and_the_pop_latency(e2e: E2E) -> None:
    before = await scrape(e2e.client)
    await e2e.play("support_ringall_answered")
    after = await scrape(e2e.client)

    assert after.value("calldesk_ami_frames_total") > before.value("calldesk_ami_frames_total")
    assert after.value("calldesk_ami_link_up") == 1
    assert after.value("calldesk_ami_link_holder") == 1  # the one process holds the link
    assert after.value("calldesk_ami_reconnects_total") == 0
    pops = after.value("calldesk_screen_pop_latency_seconds_count") - before.value(
        "calldesk_screen_pop_latency_seconds_count"
    )
    assert pops == 5  # alice: ringing, connected, ended; bob: ringing, withdrawn
    assert after.value("calldesk_screen_pop_latency_seconds_count") == (
        e2e.link.recorder.recorded_pops
    )
    assert 0 < after.value("calldesk_screen_pop_latency_seconds_sum") < 5 * 5
    # Cumulative buckets: each "le" counts at most as many pops as the next one.
    buckets = [
        s.value
        for s in after.samples("calldesk_screen_pop_latency_seconds_bucket")
        if s.labels["le"] != "+Inf"
    ]
    assert buckets == sorted(buckets)
    assert after.value("calldesk_screen_pop_latency_seconds_bucket", le="+Inf") == (
        after.value("calldesk_screen_pop_latency_seconds_count")
    )


async def test_agents_with_a_browser_connected_are_counted_once(e2e: E2E) -> None:
    assert (await scrape(e2e.client)).value("calldesk_agents_connected") == 4
    await e2e.connect("alice")  # a second tab
    assert (await scrape(e2e.client)).value("calldesk_agents_connected") == 4
    await e2e.browsers["bob"].sio.disconnect()
    async with asyncio.timeout(5):
        while (await scrape(e2e.client)).value("calldesk_agents_connected") != 3:
            await asyncio.sleep(0.02)


@pytest.fixture
def guarded_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"metrics_token": SecretStr("scrape-me-0123456789")})


async def test_with_a_token_set_metrics_are_refused_without_it(
    guarded_settings: Settings, database: Database
) -> None:
    client = TestClient(TestServer(create_app(guarded_settings)))
    await client.start_server()
    try:
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer guess"})
        right = await client.get(
            "/metrics", headers={"Authorization": "Bearer scrape-me-0123456789"}
        )
        assert (missing.status, wrong.status, right.status) == (401, 401, 200)
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        assert "calldesk_agents_connected" in await right.text()
        assert "calldesk" not in await wrong.text()
    finally:
        await client.close()


async def test_metrics_switched_off_are_not_served(settings: Settings, database: Database) -> None:
    client = TestClient(
        TestServer(create_app(settings.model_copy(update={"metrics_enabled": False})))
    )
    await client.start_server()
    try:
        response = await client.get("/metrics")
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "not_found"
    finally:
        await client.close()
