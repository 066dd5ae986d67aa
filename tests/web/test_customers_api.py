from __future__ import annotations

import pytest

from tests.web.conftest import Desk

ERIKA = {
    "name": "Erika Mustermann",
    "tier": "platinum",
    "phones": [{"number": "030 1234-56789", "label": "office"}],
    "emails": [{"address": "Erika@Example.DE"}],
    "tags": ["VIP", "berlin"],
}


async def _create(desk: Desk, body: dict[str, object]) -> dict[str, object]:
    response = await desk.client.post("/api/v1/customers", json=body, headers=desk.auth("alice"))
    assert response.status == 201, await response.text()
    result: dict[str, object] = await response.json()
    return result


async def test_a_created_customer_has_its_numbers_in_e164(desk: Desk) -> None:
    customer = await _create(desk, ERIKA)
    assert customer["phones"] == [
        {"number_e164": "+4930123456789", "number_raw": "030 1234-56789", "label": "office"}
    ]
    assert customer["emails"] == [{"address": "erika@example.de", "label": ""}]
    assert customer["tags"] == ["berlin", "vip"]
    assert customer["version"] == 1


@pytest.mark.parametrize(
    "phone", ["+4930123456789", "004930123456789", "030123456789", "(030) 123 456-789"]
)
async def test_search_by_phone_finds_the_customer_in_any_format(desk: Desk, phone: str) -> None:
    await _create(desk, ERIKA)
    response = await desk.client.get(
        "/api/v1/customers", params={"phone": phone}, headers=desk.auth("alice")
    )
    body = await response.json()
    assert [c["name"] for c in body["items"]] == ["Erika Mustermann"]


async def test_search_by_name_is_case_insensitive_and_paginated(desk: Desk) -> None:
    for index in range(3):
        await _create(desk, {"name": f"Müller {index}"})
    await _create(desk, {"name": "Schmidt"})
    response = await desk.client.get(
        "/api/v1/customers", params={"q": "MÜLLER", "limit": "2"}, headers=desk.auth("alice")
    )
    body = await response.json()
    assert body["total"] == 3
    assert len(body["items"]) == 2


async def test_search_by_email_finds_the_customer(desk: Desk) -> None:
    await _create(desk, ERIKA)
    response = await desk.client.get(
        "/api/v1/customers", params={"q": "erika@example"}, headers=desk.auth("alice")
    )
    assert (await response.json())["total"] == 1


async def test_a_stale_write_is_refused_not_silently_overwritten(desk: Desk) -> None:
    customer = await _create(desk, ERIKA)
    path = f"/api/v1/customers/{customer['id']}"
    first = await desk.client.patch(
        path, json={"version": 1, "tier": "gold"}, headers=desk.auth("alice")
    )
    assert first.status == 200
    assert (await first.json())["version"] == 2
    second = await desk.client.patch(
        path, json={"version": 1, "notes": "from Bob"}, headers=desk.auth("bob")
    )
    assert second.status == 409
    assert (await second.json())["error"]["code"] == "stale_write"
    current = await (await desk.client.get(path, headers=desk.auth("alice"))).json()
    assert current["tier"] == "gold"
    assert current["notes"] == ""


async def test_a_patch_replaces_phone_numbers(desk: Desk) -> None:
    customer = await _create(desk, ERIKA)
    response = await desk.client.patch(
        f"/api/v1/customers/{customer['id']}",
        json={"version": 1, "phones": [{"number": "+1 415 555 0100"}]},
        headers=desk.auth("alice"),
    )
    assert [p["number_e164"] for p in (await response.json())["phones"]] == ["+14155550100"]


async def test_a_missing_customer_is_a_404(desk: Desk) -> None:
    response = await desk.client.get("/api/v1/customers/9999", headers=desk.auth("alice"))
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


async def test_a_person_can_belong_to_an_organisation_but_not_to_a_person(desk: Desk) -> None:
    org = await _create(desk, {"name": "ACME GmbH", "kind": "organisation"})
    person = await _create(desk, {"name": "Max", "organisation_id": org["id"]})
    assert person["organisation_id"] == org["id"]
    response = await desk.client.post(
        "/api/v1/customers",
        json={"name": "Nobody", "organisation_id": person["id"]},
        headers=desk.auth("alice"),
    )
    assert response.status == 422
    assert "organisation_id" in (await response.json())["error"]["fields"]


async def test_a_new_customer_starts_with_an_empty_timeline(desk: Desk) -> None:
    customer = await _create(desk, ERIKA)
    response = await desk.client.get(
        f"/api/v1/customers/{customer['id']}/timeline", headers=desk.auth("alice")
    )
    assert (await response.json()) == {"items": []}
