"""Bad input gets a clear JSON error and writes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from desk.models import Customer, User
from tests.web.conftest import Desk


async def _customers(desk: Desk) -> int:
    async with desk.database.sessions() as session:
        return await session.scalar(select(func.count()).select_from(Customer)) or 0


async def test_malformed_json_is_a_400_json_error_and_writes_nothing(desk: Desk) -> None:
    response = await desk.client.post(
        "/api/v1/customers",
        data=b'{"name": "Half',
        headers={**desk.auth("alice"), "Content-Type": "application/json"},
    )
    assert response.status == 400
    assert (await response.json())["error"] == {
        "code": "malformed_json",
        "message": "the body is not valid JSON",
        "fields": {},
    }
    assert await _customers(desk) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 42}, "name"),
        ({"name": "Ok", "tier": "diamond"}, "tier"),
        ({"name": "Ok", "phones": "030123456"}, "phones"),
        ({"name": "Ok", "phones": [{"number": 30123456}]}, "phones.0.number"),
        ({"name": "Ok", "emails": [{"address": "not-an-email"}]}, "emails.0.address"),
        ({"name": "Ok", "favourite_colour": "blue"}, "favourite_colour"),
        ({"name": ""}, "name"),
        ({}, "name"),
    ],
)
async def test_wrong_types_and_unknown_fields_are_refused_and_write_nothing(
    desk: Desk, body: dict[str, object], field: str
) -> None:
    response = await desk.client.post("/api/v1/customers", json=body, headers=desk.auth("alice"))
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "invalid_input"
    assert field in error["fields"]
    assert await _customers(desk) == 0


async def test_an_invalid_phone_number_refuses_the_whole_customer(desk: Desk) -> None:
    response = await desk.client.post(
        "/api/v1/customers",
        json={"name": "Half Saved", "phones": [{"number": "+4930123456789"}, {"number": "12"}]},
        headers=desk.auth("alice"),
    )
    assert response.status == 422
    assert "phones.1.number" in (await response.json())["error"]["fields"]
    assert await _customers(desk) == 0


async def test_a_body_that_is_not_json_is_refused_with_415(desk: Desk) -> None:
    response = await desk.client.post(
        "/api/v1/customers", data="name=Form", headers=desk.auth("alice")
    )
    assert response.status == 415
    assert (await response.json())["error"]["code"] == "unsupported_media_type"


async def test_a_json_array_instead_of_an_object_is_refused(desk: Desk) -> None:
    response = await desk.client.post(
        "/api/v1/customers", json=[{"name": "x"}], headers=desk.auth("alice")
    )
    assert response.status == 422


async def test_bad_query_parameters_are_refused(desk: Desk) -> None:
    for query in ("limit=abc", "limit=0", "offset=-1", "colour=red", "tier=diamond"):
        response = await desk.client.get(f"/api/v1/customers?{query}", headers=desk.auth("alice"))
        assert response.status == 422, query
        assert (await response.json())["error"]["code"] == "invalid_input"


async def test_a_user_with_a_bad_field_is_not_half_created(desk: Desk) -> None:
    async with desk.database.sessions() as session:
        before = await session.scalar(select(func.count()).select_from(User))
    response = await desk.client.post(
        "/api/v1/users",
        json={
            "username": "dave",
            "display_name": "Dave",
            "password": "long enough",
            "agent": {"extension": "1004", "team_id": 999},
        },
        headers=desk.auth("admin"),
    )
    assert response.status == 422
    async with desk.database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == before


async def test_an_unknown_route_under_the_api_is_a_json_404(desk: Desk) -> None:
    response = await desk.client.get("/api/v1/nothing-here", headers=desk.auth("alice"))
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


async def test_a_non_numeric_id_is_a_404_not_a_crash(desk: Desk) -> None:
    response = await desk.client.get("/api/v1/customers/abc", headers=desk.auth("alice"))
    assert response.status == 404
