"""Rate limits: sign-ins per client address and per name, the public forms and
searches per address; 429 with Retry-After, shared by processes through Redis."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from desk.settings import RateLimit, Settings, load_settings
from tests.conftest import TEST_SECRET
from tests.web.conftest import PASSWORD, Desk
from web.app import create_app
from web.pages.sign_in import sign_in_token
from web.rate_limits import RedisRateStore, decide
from web.request_origin import client_address, proxy_networks

REDIS_URL = os.environ.get("DESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PROXIES = proxy_networks(("10.0.0.0/8", "192.168.1.1"))
SMALL = {"count": 3, "seconds": 60}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        environ={},
        overrides={
            "mode": "test",
            "secret_key": TEST_SECRET,
            "database_url": database_url,
            "security_trusted_proxies": ["127.0.0.1"],
            "rate_limits_login_address": {"count": 6, "seconds": 60},
            "rate_limits_login_account": {"count": 3, "seconds": 60},
            "rate_limits_survey_answer": {"count": 2, "seconds": 600},
            "rate_limits_help_search": SMALL,
        },
    )


@pytest.fixture
async def clean_redis() -> AsyncIterator[str]:
    """The shared buckets start empty (the fake clock repeats its times every run)."""
    redis = Redis.from_url(REDIS_URL)
    keys = [key async for key in redis.scan_iter("calldesk:rate:*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()
    yield REDIS_URL


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def _login(desk: Desk, username: str, address: str, password: str = "wrong") -> int:
    response = await desk.client.post(
        "/api/v1/auth/login",
        json={"username": username, "password": password},
        headers=_from(address),
    )
    return response.status


@pytest.mark.parametrize(
    ("full_at", "now", "allowed", "retry_after"),
    [
        (None, 100.0, True, 0.0),  # an empty bucket
        (102.0, 100.0, True, 0.0),  # two taken of three: one left
        (103.0, 100.0, False, 1.0),  # three taken: the next one a second later
        (103.0, 101.0, True, 0.0),  # a second later one has come back
        (50.0, 100.0, True, 0.0),  # full again long ago
    ],
)
def test_a_bucket_allows_its_count_at_once_then_refills_evenly(
    full_at: float | None, now: float, allowed: bool, retry_after: float
) -> None:
    # Three in three seconds: each request moves "full again" a second on, up to 3 s ahead.
    limit = RateLimit(count=3, seconds=3)
    decision = decide(full_at, now, limit)
    assert (decision.allowed, decision.retry_after) == (allowed, retry_after)


def test_a_refused_request_leaves_the_bucket_as_it_was() -> None:
    limit = RateLimit(count=1, seconds=60)
    taken = decide(None, 0.0, limit)
    refused = decide(taken.full_at, 10.0, limit)
    assert (refused.allowed, refused.full_at, refused.retry_after_seconds) == (False, 60.0, 50)


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.7", [], "203.0.113.7"),
        # Not a trusted proxy: whatever it claims is ignored.
        ("203.0.113.7", ["198.51.100.1"], "203.0.113.7"),
        ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
        # The client's own claim sits on the left; our proxies append on the right.
        ("10.0.0.2", ["1.2.3.4, 198.51.100.1, 192.168.1.1"], "198.51.100.1"),
        ("10.0.0.2", ["1.2.3.4", "198.51.100.1"], "198.51.100.1"),
        ("10.0.0.2", ["10.0.0.3, 10.0.0.4"], "10.0.0.3"),  # only proxies: the first of them
        ("10.0.0.2", ["not-an-address"], "10.0.0.2"),
        ("10.0.0.2", ["2001:db8::1"], "2001:db8::1"),
    ],
)
def test_the_client_address_believes_x_forwarded_for_only_from_trusted_proxies(
    peer: str, forwarded: list[str], client: str
) -> None:
    assert client_address(peer, forwarded, PROXIES) == client


async def test_failed_sign_ins_from_one_address_are_refused_with_429_after_the_limit(
    desk: Desk,
) -> None:
    names = ["a", "b", "c", "d", "e", "f"]
    assert [await _login(desk, name, "198.51.100.1") for name in names] == [401] * 6
    refused = await desk.client.post(
        "/api/v1/auth/login",
        json={"username": "alice", "password": PASSWORD},
        headers=_from("198.51.100.1"),
    )
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "10"
    assert (await refused.json())["error"]["code"] == "too_many_requests"
    assert await _login(desk, "alice", "198.51.100.2", PASSWORD) == 200


async def test_successful_sign_ins_do_not_use_up_an_offices_address(desk: Desk) -> None:
    # Four people behind one address sign in twice each: more than its six failures.
    for name in ["admin", "sam", "alice", "bob"] * 2:
        assert await _login(desk, name, "198.51.100.5", PASSWORD) == 200
    assert [await _login(desk, f"x{n}", "198.51.100.5") for n in range(7)] == [401] * 6 + [429]


async def test_sign_ins_under_one_name_are_limited_whatever_the_address(desk: Desk) -> None:
    # A name nobody has: limited all the same, so the limit tells nothing either.
    statuses = [await _login(desk, "carol", f"198.51.100.{n}") for n in range(1, 5)]
    assert statuses == [401, 401, 401, 429]
    assert await _login(desk, "bob", "198.51.100.3") == 401


async def test_a_client_cannot_dodge_the_limit_by_claiming_other_addresses(
    desk: Desk, settings: Settings
) -> None:
    direct = settings.model_copy(update={"security_trusted_proxies": []})
    server = TestServer(create_app(direct, clock=desk.clock))
    await server.start_server()
    statuses = []
    try:
        for n in range(4):
            response = await desk.client.session.get(
                server.make_url("/api/v1/kb/public/search?q=x"), headers=_from(f"198.51.100.{n}")
            )
            statuses.append(response.status)
    finally:
        await server.close()
    assert statuses == [200, 200, 200, 429]


async def test_the_sign_in_page_over_the_limit_says_when_to_come_back(desk: Desk) -> None:
    for address in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
        await _login(desk, "carol", address)
    token = sign_in_token(TEST_SECRET, desk.clock.now())
    page = await desk.client.post(
        "/desk/sign-in",
        data={"username": "carol", "password": "wrong", "form_token": token},
        headers=_from("198.51.100.9"),
    )
    assert page.status == 429
    assert page.headers["Retry-After"] == "20"
    assert "Too many sign-in attempts. Please try again in 1 min." in await page.text()


async def test_the_contact_form_over_the_limit_gets_a_friendly_page(desk: Desk) -> None:
    statuses = []
    for _ in range(6):
        response = await desk.client.post("/help/tickets", data={"name": "x"})
        statuses.append(response.status)
    assert statuses == [400] * 5 + [429]
    page = await response.text()
    assert response.headers["Retry-After"] == "120"
    assert "<h1>Please wait a moment</h1>" in page and "try again in 2 min" in page


async def test_survey_face_links_are_limited_and_plain_visits_are_not(desk: Desk) -> None:
    faces = [(await desk.client.get("/s/forged?csat=5")).status for _ in range(3)]
    visits = [(await desk.client.get("/s/forged")).status for _ in range(3)]
    post = (await desk.client.post("/s/forged", data={})).status
    assert faces == [404, 404, 429]
    assert visits == [404, 404, 404]
    assert post == 429  # the same bucket: one address answering surveys


async def test_a_limit_refills_as_time_passes(desk: Desk) -> None:
    search = "/help/en/search?q=printer"
    statuses = [(await desk.client.get(search)).status for _ in range(4)]
    desk.clock.advance(timedelta(seconds=20))
    statuses.append((await desk.client.get(search)).status)
    statuses.append((await desk.client.get(search)).status)
    assert statuses == [200, 200, 200, 429, 200, 429]


async def test_two_processes_share_their_limits_through_redis(
    desk: Desk, settings: Settings, clean_redis: str
) -> None:
    shared = settings.model_copy(update={"redis_url": clean_redis})
    first = TestServer(create_app(shared, clock=desk.clock))
    second = TestServer(create_app(shared, clock=desk.clock))
    await first.start_server()
    await second.start_server()
    try:
        statuses = []
        for server in (first, second, first, second):
            response = await desk.client.session.get(
                server.make_url("/api/v1/kb/public/search?q=x"), headers=_from("198.51.100.7")
            )
            statuses.append(response.status)
            if response.status == 429:
                assert response.headers["Retry-After"] == "20"
    finally:
        await first.close()
        await second.close()
    assert statuses == [200, 200, 200, 429]


async def test_concurrent_requests_through_redis_never_get_more_than_the_limit(
    clean_redis: str,
) -> None:
    prefix = f"calldesk:rate:test:{uuid.uuid4().hex}:"
    stores = [RedisRateStore.from_url(clean_redis, prefix=prefix) for _ in range(2)]
    limit = RateLimit(count=10, seconds=60)
    try:
        decisions = await asyncio.gather(
            *(stores[n % 2].take("one-key", limit, 1000.0) for n in range(30))
        )
    finally:
        for store in stores:
            await store.close()
    assert sum(d.allowed for d in decisions) == 10


async def test_without_redis_the_limits_let_requests_through() -> None:
    store = RedisRateStore.from_url("redis://127.0.0.1:1/0")
    try:
        decision = await store.take("any", RateLimit(count=1, seconds=60), 0.0)
    finally:
        await store.close()
    assert decision.allowed
