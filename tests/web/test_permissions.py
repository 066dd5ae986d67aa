from __future__ import annotations

import pytest

from tests.web.conftest import Desk

ADMIN_ONLY = [
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("GET", "/api/v1/users/1"),
    ("PATCH", "/api/v1/users/1"),
    ("DELETE", "/api/v1/users/2"),
    ("POST", "/api/v1/teams"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_ONLY)
async def test_an_agent_cannot_call_admin_endpoints(desk: Desk, method: str, path: str) -> None:
    response = await desk.client.request(method, path, headers=desk.auth("alice"), json={})
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "forbidden"


@pytest.mark.parametrize(("method", "path"), ADMIN_ONLY)
async def test_a_supervisor_cannot_call_admin_endpoints(desk: Desk, method: str, path: str) -> None:
    response = await desk.client.request(method, path, headers=desk.auth("sam"), json={})
    assert response.status == 403


async def test_anonymous_callers_are_asked_to_sign_in(desk: Desk) -> None:
    response = await desk.client.get("/api/v1/customers")
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthenticated"


async def test_an_agent_cannot_delete_customers_but_a_supervisor_can(desk: Desk) -> None:
    created = await desk.client.post(
        "/api/v1/customers", json={"name": "Short Lived"}, headers=desk.auth("alice")
    )
    customer_id = (await created.json())["id"]
    refused = await desk.client.delete(
        f"/api/v1/customers/{customer_id}", headers=desk.auth("alice")
    )
    assert refused.status == 403
    allowed = await desk.client.delete(f"/api/v1/customers/{customer_id}", headers=desk.auth("sam"))
    assert allowed.status == 204


async def test_an_admin_creates_an_agent_with_a_pbx_identity(desk: Desk) -> None:
    response = await desk.client.post(
        "/api/v1/users",
        json={
            "username": "carol",
            "display_name": "Carol",
            "password": "s3cret-enough",
            "agent": {"extension": "1003", "skills": [{"name": "Sales", "level": 3}]},
        },
        headers=desk.auth("admin"),
    )
    assert response.status == 201, await response.text()
    agent = (await response.json())["agent"]
    assert agent["interface"] == "PJSIP/1003"
    assert agent["skills"] == [{"name": "sales", "level": 3}]


async def test_an_extension_cannot_belong_to_two_agents(desk: Desk) -> None:
    response = await desk.client.post(
        "/api/v1/users",
        json={
            "username": "clone",
            "display_name": "Clone",
            "password": "s3cret-enough",
            "agent": {"extension": "1001"},
        },
        headers=desk.auth("admin"),
    )
    assert response.status == 409
    assert "agent.extension" in (await response.json())["error"]["fields"]
