from __future__ import annotations

from typing import Any

from tests.web.conftest import Desk


async def _open(desk: Desk, **fields: Any) -> dict[str, Any]:
    response = await desk.client.post(
        "/api/v1/tickets", json={"subject": "Router is down", **fields}, headers=desk.auth("alice")
    )
    assert response.status == 201, await response.text()
    result: dict[str, Any] = await response.json()
    return result


async def _patch(desk: Desk, ticket: dict[str, Any], who: str = "alice", **fields: Any) -> Any:
    return await desk.client.patch(
        f"/api/v1/tickets/{ticket['id']}",
        json={"version": ticket["version"], **fields},
        headers=desk.auth(who),
    )


async def test_a_new_ticket_starts_new_with_its_creation_on_the_audit_trail(desk: Desk) -> None:
    ticket = await _open(desk, priority="high")
    assert (ticket["status"], ticket["priority"], ticket["version"]) == ("new", "high", 1)
    history = await (
        await desk.client.get(f"/api/v1/tickets/{ticket['id']}/history", headers=desk.auth("sam"))
    ).json()
    rows = [(h["field"], h["old"], h["new"]) for h in history["items"]]
    # SLA clock entries ("sla:<clock>") are specified in tests/routing.
    assert [row for row in rows if not row[0].startswith("sla:")] == [("status", None, "new")]


async def test_a_public_reply_opens_a_new_ticket_and_a_note_does_not(desk: Desk) -> None:
    ticket = await _open(desk)
    path = f"/api/v1/tickets/{ticket['id']}"
    note = await desk.client.post(
        f"{path}/messages",
        json={"kind": "internal_note", "body": "checking"},
        headers=desk.auth("alice"),
    )
    assert note.status == 201
    assert (await (await desk.client.get(path, headers=desk.auth("alice"))).json())[
        "status"
    ] == "new"
    reply = await desk.client.post(
        f"{path}/messages",
        json={"kind": "public_reply", "body": "We are on it"},
        headers=desk.auth("alice"),
    )
    assert reply.status == 201
    assert (await (await desk.client.get(path, headers=desk.auth("alice"))).json())[
        "status"
    ] == "open"
    kinds = [
        m["kind"]
        for m in (
            await (await desk.client.get(f"{path}/messages", headers=desk.auth("alice"))).json()
        )["items"]
    ]
    assert kinds == ["internal_note", "public_reply"]


async def test_every_field_change_is_audited_with_who_and_old_and_new(desk: Desk) -> None:
    ticket = await _open(desk)
    response = await _patch(
        desk, ticket, status="open", priority="urgent", assignee_id=desk.ids["bob"]
    )
    assert response.status == 200, await response.text()
    changed = await response.json()
    assert changed["version"] == 2
    history = await (
        await desk.client.get(f"/api/v1/tickets/{ticket['id']}/history", headers=desk.auth("sam"))
    ).json()
    rows = [
        (h["field"], h["old"], h["new"], h["actor_id"])
        for h in history["items"]
        if not h["field"].startswith("sla:")
    ][1:]
    alice = desk.ids["alice"]
    assert sorted(rows) == sorted(
        [
            ("assignee_id", None, str(desk.ids["bob"]), alice),
            ("priority", "normal", "urgent", alice),
            ("status", "new", "open", alice),
        ]
    )


async def test_a_stale_ticket_write_is_refused(desk: Desk) -> None:
    ticket = await _open(desk)
    assert (await _patch(desk, ticket, priority="high")).status == 200
    stale = await _patch(desk, ticket, "bob", priority="low")
    assert stale.status == 409
    assert (await stale.json())["error"]["code"] == "stale_write"


async def test_a_forbidden_status_change_is_refused_and_nothing_is_saved(desk: Desk) -> None:
    ticket = await _open(desk)
    opened = await (await _patch(desk, ticket, status="open")).json()
    refused = await _patch(desk, opened, status="closed", priority="urgent")
    assert refused.status == 422
    body = await refused.json()
    assert body["error"]["code"] == "invalid_transition"
    current = await (
        await desk.client.get(f"/api/v1/tickets/{ticket['id']}", headers=desk.auth("alice"))
    ).json()
    assert (current["status"], current["priority"], current["version"]) == ("open", "normal", 2)


async def test_unknown_fields_and_bad_values_are_refused(desk: Desk) -> None:
    ticket = await _open(desk)
    for fields in (
        {"colour": "red"},
        {"status": "archived"},
        {"priority": 3},
        {"assignee_id": 999},
    ):
        response = await _patch(desk, ticket, **fields)
        assert response.status == 422, fields
    bad_version = await desk.client.patch(
        f"/api/v1/tickets/{ticket['id']}", json={"version": "1"}, headers=desk.auth("alice")
    )
    assert bad_version.status == 422


async def test_a_solved_ticket_reopens_and_a_closed_one_takes_no_more_messages(desk: Desk) -> None:
    ticket = await _open(desk)
    ticket = await (await _patch(desk, ticket, status="open")).json()
    ticket = await (await _patch(desk, ticket, status="solved")).json()
    reopened = await (await _patch(desk, ticket, status="open")).json()
    assert reopened["status"] == "open"
    solved = await (await _patch(desk, reopened, status="solved")).json()
    closed = await (await _patch(desk, solved, status="closed")).json()
    assert closed["status"] == "closed"
    response = await desk.client.post(
        f"/api/v1/tickets/{ticket['id']}/messages",
        json={"kind": "public_reply", "body": "late"},
        headers=desk.auth("alice"),
    )
    assert response.status == 422
