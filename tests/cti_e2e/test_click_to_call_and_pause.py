"""The desk acting on the PBX: click-to-call (Originate) and pause (QueuePause)."""

from __future__ import annotations

from typing import Any

from cti.frames import Frame
from desk.settings import Settings
from tests.conftest import Database
from tests.cti_e2e.conftest import E2E, assert_pops_consistent, running_desk, until


def actions(desk: E2E, name: str) -> list[Frame]:
    return [f for f in desk.sim.actions_received if f.get("Action") == name]


def latest_state(desk: E2E, who: str) -> tuple[str, str] | None:
    states = desk.browsers[who].events("agent_state")
    return (states[-1]["status"], states[-1]["pause_reason"]) if states else None


async def test_click_to_call_originates_from_alices_phone_and_reports_back_to_her(
    e2e: E2E,
) -> None:
    e2e.sim.originate_speed = 20.0
    alice = e2e.browsers["alice"]
    response = await e2e.client.post(
        "/api/v1/calls", json={"number": "040 987654"}, headers=e2e.auth("alice")
    )
    assert response.status == 202, await response.text()
    body = await response.json()
    assert body["number_e164"] == "+4940987654"
    assert (body["agent_id"], body["status"]) == (e2e.agent_ids["alice"], "queued")

    (originate,) = actions(e2e, "Originate")
    assert (originate["Channel"], originate["Exten"], originate["Context"]) == (
        "PJSIP/1001",
        "+4940987654",
        "from-agents",
    )
    assert originate.action_id == body["action_id"]

    await until(lambda: "connected" in alice.phases(), what="Alice connected to the callee")
    await e2e.settle()
    (result,) = alice.events("originate_result")
    assert (result["action_id"], result["success"]) == (body["action_id"], True)
    assert alice.phases(result["call_id"]) == ["ringing", "connected"]
    for pop in alice.pops():
        assert (pop["direction"], pop["caller"]["number_e164"]) == ("outbound", "+4940987654")
    assert not any(e2e.browsers[who].events("originate_result") for who in ("bob", "sam"))
    assert not any(e2e.browsers[who].pops() for who in ("bob", "carol", "dave", "sam"))
    (call,) = await e2e.calls()
    assert (call.call_id, call.direction, call.agent_id, call.caller_e164) == (
        result["call_id"],
        "outbound",
        e2e.agent_ids["alice"],
        "+4940987654",
    )
    assert_pops_consistent(e2e)


async def test_click_to_call_refuses_a_number_that_cannot_be_dialled(e2e: E2E) -> None:
    response = await e2e.client.post(
        "/api/v1/calls", json={"number": "12ab"}, headers=e2e.auth("alice")
    )
    assert response.status == 422
    assert (await response.json())["error"]["code"] == "invalid_input"
    assert actions(e2e, "Originate") == []


async def test_an_agent_cannot_ring_another_agents_phone(e2e: E2E) -> None:
    response = await e2e.client.post(
        "/api/v1/calls",
        json={"number": "040 987654", "agent_id": e2e.agent_ids["bob"]},
        headers=e2e.auth("alice"),
    )
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "forbidden"
    assert actions(e2e, "Originate") == []


async def test_pausing_for_lunch_sends_queue_pause_and_alice_sees_paused_then_ready(
    e2e: E2E,
) -> None:
    response = await e2e.client.put(
        "/api/v1/agents/me/state",
        json={"status": "paused", "reason": "Lunch"},
        headers=e2e.auth("alice"),
    )
    assert response.status == 202, await response.text()
    (pause,) = actions(e2e, "QueuePause")
    assert (pause["Interface"], pause["Paused"], pause["Reason"]) == ("PJSIP/1001", "true", "Lunch")
    await until(lambda: latest_state(e2e, "alice") == ("paused", "Lunch"), what="Alice paused")

    response = await e2e.client.put(
        "/api/v1/agents/me/state", json={"status": "ready"}, headers=e2e.auth("alice")
    )
    assert response.status == 202, await response.text()
    ready = actions(e2e, "QueuePause")[-1]
    assert (ready["Interface"], ready["Paused"], ready.get("Reason")) == (
        "PJSIP/1001",
        "false",
        None,
    )
    await until(lambda: latest_state(e2e, "alice") == ("ready", ""), what="Alice ready")
    # Only Alice hears about her own state.
    assert all(s["interface"] == "PJSIP/1001" for s in e2e.browsers["alice"].events("agent_state"))
    assert all(s["interface"] != "PJSIP/1001" for s in e2e.browsers["bob"].events("agent_state"))


async def test_without_a_pbx_link_the_call_endpoints_answer_503(
    settings: Settings, database: Database
) -> None:
    async with running_desk(settings, database, with_pbx=False, browsers=("alice",)) as desk:
        requests: list[tuple[str, str, str, dict[str, Any] | None]] = [
            ("POST", "/api/v1/calls", "alice", {"number": "040 987654"}),
            ("PUT", "/api/v1/agents/me/state", "alice", {"status": "paused", "reason": "x"}),
            ("GET", "/api/v1/agents/me/state", "alice", None),
            ("GET", "/api/v1/board", "sam", None),
        ]
        for method, path, who, body in requests:
            response = await desk.client.request(method, path, json=body, headers=desk.auth(who))
            assert response.status == 503, (method, path)
            assert response.content_type == "application/json"
            assert (await response.json())["error"]["code"] == "no_pbx_link"
        assert (await desk.healthz())["ami"] == {"status": "disabled", "error": None}
        # Browsers still connect; there is just no PBX state to greet them with.
        assert desk.browsers["alice"].sio.connected
