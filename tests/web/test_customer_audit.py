"""The customer audit log: reads and changes through the API and the customer page,
with who, when and from where; export and erasure for admins, audited too."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from desk.customer_audit import Actor, AuditAction, ReadAudit
from desk.models import CustomerAuditEntry
from tests.conftest import Database
from tests.web.conftest import Desk


async def _customer(desk: Desk, **fields: Any) -> dict[str, Any]:
    response = await desk.client.post(
        "/api/v1/customers",
        json={"name": "Erika Mustermann", "phones": [{"number": "+49301234567"}], **fields},
        headers=desk.auth("alice"),
    )
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def _trail(desk: Desk, customer_id: int) -> list[dict[str, Any]]:
    response = await desk.client.get(
        f"/api/v1/customers/{customer_id}/audit", headers=desk.auth("sam")
    )
    assert response.status == 200, await response.text()
    items: list[dict[str, Any]] = (await response.json())["items"]
    return items


async def test_reading_a_customer_is_audited_with_who_when_and_from_where(desk: Desk) -> None:
    customer = await _customer(desk)
    read = await desk.client.get(
        f"/api/v1/customers/{customer['id']}",
        headers={**desk.auth("alice"), "X-Request-Id": "req-42"},
    )
    assert read.status == 200
    newest = (await _trail(desk, customer["id"]))[0]
    assert {k: newest[k] for k in ("action", "username", "role", "address", "request_id")} == {
        "action": "read",
        "username": "alice",
        "role": "agent",
        "address": "127.0.0.1",
        "request_id": "req-42",
    }
    assert newest["user_id"] == desk.ids["alice"]
    assert datetime.fromisoformat(newest["at"]) == desk.clock.now()


async def test_a_change_is_audited_with_its_fields_and_a_refused_change_is_not(
    desk: Desk,
) -> None:
    customer = await _customer(desk)
    path = f"/api/v1/customers/{customer['id']}"
    changed = await desk.client.patch(
        path, json={"version": 1, "name": "Erika M.", "notes": "x"}, headers=desk.auth("bob")
    )
    stale = await desk.client.patch(
        path, json={"version": 1, "name": "Old"}, headers=desk.auth("bob")
    )
    assert (changed.status, stale.status) == (200, 409)
    trail = await _trail(desk, customer["id"])
    assert [(e["action"], e["username"], e["detail"]) for e in trail] == [
        ("update", "bob", {"fields": ["name", "notes"]}),
        ("create", "alice", {}),
    ]


async def test_the_timeline_and_the_customer_page_are_audited_as_reads(desk: Desk) -> None:
    customer = await _customer(desk)
    await desk.client.get(
        f"/api/v1/customers/{customer['id']}/timeline", headers=desk.auth("alice")
    )
    page = await desk.client.get(f"/desk/customers/{customer['id']}", headers=desk.auth("bob"))
    assert page.status == 200
    trail = await _trail(desk, customer["id"])
    assert [(e["action"], e["username"], e["detail"]) for e in trail[:2]] == [
        ("timeline", "bob", {"via": "page"}),
        ("timeline", "alice", {}),
    ]


async def test_a_deleted_customers_trail_says_who_deleted_them(desk: Desk) -> None:
    customer = await _customer(desk)
    deleted = await desk.client.delete(
        f"/api/v1/customers/{customer['id']}", headers=desk.auth("sam")
    )
    assert deleted.status == 204
    trail = await _trail(desk, customer["id"])
    assert [(e["action"], e["username"]) for e in trail] == [("delete", "sam"), ("create", "alice")]


async def test_agents_may_not_read_the_audit_log(desk: Desk) -> None:
    customer = await _customer(desk)
    refused = await desk.client.get(
        f"/api/v1/customers/{customer['id']}/audit", headers=desk.auth("alice")
    )
    assert refused.status == 403


async def test_reads_wait_in_memory_and_reach_the_database_together(database: Database) -> None:
    reads = ReadAudit(sessions=database.sessions, interval=0.05)
    actor = Actor(user_id=None, username="alice", role="agent")
    now = datetime(2026, 3, 1, tzinfo=UTC)

    async def stored() -> int:
        async with database.sessions() as session:
            return int(await session.scalar(select(func.count(CustomerAuditEntry.id))) or 0)

    for customer_id in (1, 2, 3):
        reads.note(customer_id, AuditAction.READ, actor=actor, now=now)
    assert (reads.pending, await stored()) == (3, 0)
    assert await reads.flush() == 3
    reads.start()
    reads.note(4, AuditAction.READ, actor=actor, now=now)
    for _ in range(100):
        if await stored() == 4:
            break
        await asyncio.sleep(0.02)
    reads.note(5, AuditAction.READ, actor=actor, now=now)
    await reads.stop()  # what is still waiting is written on the way out
    assert (reads.pending, await stored()) == (0, 5)


async def test_an_admin_exports_everything_about_a_customer_and_the_export_is_audited(
    desk: Desk,
) -> None:
    customer = await _customer(desk, emails=[{"address": "erika@example.org"}])
    await desk.client.post(
        "/api/v1/tickets",
        json={"subject": "Invoice twice", "customer_id": customer["id"]},
        headers=desk.auth("alice"),
    )
    path = f"/api/v1/customers/{customer['id']}/export"
    assert (await desk.client.get(path, headers=desk.auth("sam"))).status == 403
    response = await desk.client.get(path, headers=desk.auth("admin"))
    assert response.status == 200
    assert response.headers["Content-Disposition"].endswith(f'"customer-{customer["id"]}.json"')
    export = await response.json()
    assert export["customer"]["emails"] == [{"address": "erika@example.org", "label": ""}]
    assert [t["subject"] for t in export["tickets"]] == ["Invoice twice"]
    assert [e["action"] for e in export["audit"]] == ["create", "export"]
    assert (await _trail(desk, customer["id"]))[0]["username"] == "admin"


async def test_an_admin_erases_a_customer_once_and_asking_again_changes_nothing(
    desk: Desk,
) -> None:
    customer = await _customer(desk, notes="Moving to Hamburg")
    path = f"/api/v1/customers/{customer['id']}/erase"
    assert (await desk.client.post(path, headers=desk.auth("sam"))).status == 403
    first = await (await desk.client.post(path, headers=desk.auth("admin"))).json()
    second = await (await desk.client.post(path, headers=desk.auth("admin"))).json()
    assert (first["already_erased"], second["already_erased"]) == (False, True)
    assert first["erased_at"] == second["erased_at"]
    record = await (
        await desk.client.get(f"/api/v1/customers/{customer['id']}", headers=desk.auth("alice"))
    ).json()
    assert (record["name"], record["notes"], record["phones"]) == (
        f"Erased customer {customer['id']}",
        "",
        [],
    )
    found = await desk.client.get("/api/v1/customers?phone=030 1234567", headers=desk.auth("alice"))
    assert (await found.json())["total"] == 0
    actions = [e["action"] for e in await _trail(desk, customer["id"])]
    assert actions[:3] == ["read", "erase", "erase"]
