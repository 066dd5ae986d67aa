"""Attendance is cluster-wide: every process's assigner routes among the agents whose
browsers are open on any process, and knows the phone states the link holder hears
(web/attendance_relay.py, routing/attendance.py).

Browsers connect to the process a test chooses; tickets are opened through another.
Intervals are short here (attendance published every 0.2 s, expiring after 1 s, a
1 s offline grace, sweeps every 0.2 s) so that each test takes seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import socketio
from sqlalchemy import select

from desk.models import Ticket, TicketChange
from desk.settings import default_config_dir
from routing.assignment import Availability
from routing.router import PhoneState, Presence
from tests.cluster.conftest import Cluster, Process
from tests.cluster.serve_support import DeskServe, base_environment, free_port
from tests.conftest import TEST_SECRET
from tests.cti_e2e.conftest import Browser, until
from web.state import ATTENDANCE, SHARED_ATTENDANCE

FAST_ATTENDANCE = {"attendance_interval": 0.2, "attendance_expiry": 1.0}
GRACE_S = 1.0
SWEEPING = {
    **FAST_ATTENDANCE,
    "routing_reassign_when_offline": True,
    "routing_offline_grace": f"{GRACE_S:g}s",
    "routing_sweep_interval": 0.2,
}


def configure(cluster: Cluster, *, pbx: bool = False, **overrides: Any) -> None:
    """The settings the test's processes start with (no PBX unless asked: phone states
    would make agents available whatever their browsers)."""
    if not pbx:
        overrides["ami_host"] = ""
    cluster.settings = cluster.settings.model_copy(update=overrides)


def seen_by(process: Process, who: str, cluster: Cluster) -> Availability | None:
    """``who`` as the process's assigner sees them."""
    view = process.server.app[SHARED_ATTENDANCE].agent_availability()
    return view.get(cluster.agent_ids[who])


async def open_ticket(cluster: Cluster, url: str, subject: str) -> int:
    """Sam (a supervisor, no agent) opens a ticket through the process at ``url``."""
    async with cluster.http.post(
        f"{url.rstrip('/')}/api/v1/tickets", json={"subject": subject}, headers=cluster.auth("sam")
    ) as response:
        assert response.status == 201, await response.text()
        body = await response.json()
    return int(body["id"])


async def holder_of(cluster: Cluster, ticket_id: int) -> str | None:
    async with cluster.database.sessions() as session:
        user_id = await session.scalar(select(Ticket.assignee_id).where(Ticket.id == ticket_id))
    names = {user: who for who, user in cluster.user_ids.items()}
    return None if user_id is None else names[user_id]


async def routing_notes(cluster: Cluster, ticket_id: int) -> list[str]:
    async with cluster.database.sessions() as session:
        rows = await session.scalars(
            select(TicketChange.new)
            .where(TicketChange.ticket_id == ticket_id, TicketChange.field == "routing")
            .order_by(TicketChange.id)
        )
        return [note or "" for note in rows]


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout: float, what: str, every: float = 0.05
) -> float:
    """Poll ``check`` until it holds; the seconds it took (fails after ``timeout``)."""
    began = time.monotonic()
    while not await check():
        if time.monotonic() - began > timeout:
            raise AssertionError(f"not within {timeout:g}s: {what}")
        await asyncio.sleep(every)
    return time.monotonic() - began


async def holds(cluster: Cluster, ticket_id: int, who: str, *, timeout: float = 5.0) -> float:
    async def check() -> bool:
        return await holder_of(cluster, ticket_id) == who

    return await eventually(check, timeout=timeout, what=f"ticket {ticket_id} is {who}'s")


async def test_a_ticket_opened_through_one_process_goes_to_an_agent_connected_only_to_another(
    cluster: Cluster,
) -> None:
    # Sweeps stay at the shipped minute: only the first process can route it now.
    configure(cluster, **FAST_ATTENDANCE)
    first = await cluster.start("first")
    second = await cluster.start("second")
    await cluster.sign_in()
    await cluster.connect("bob", second)  # the only agent with a browser open, on the second

    ticket = await open_ticket(cluster, first.url, "VPN drops every hour")

    await holds(cluster, ticket, "bob")
    (note,) = await routing_notes(cluster, ticket)
    assert note.startswith(f"assigned to agent {cluster.agent_ids['bob']}: 1 of 4 agents fit")
    assert seen_by(first, "bob", cluster) == Availability(presence=Presence.ONLINE)
    assert first.server.app[ATTENDANCE].online() == frozenset()  # no browser of his here


async def test_an_agent_who_moved_to_another_process_keeps_their_ticket_past_the_grace(
    cluster: Cluster,
) -> None:
    configure(cluster, **SWEEPING)
    first = await cluster.start("first")
    second = await cluster.start("second")
    await cluster.sign_in()
    bob_here = await cluster.connect("bob", first)
    ticket = await open_ticket(cluster, first.url, "Printer offline")
    await holds(cluster, ticket, "bob")
    await cluster.connect("alice", first)  # room for his ticket, should he go

    # Bob's browser reconnects, and the balancer sends it to the other process.
    await bob_here.sio.disconnect()
    bob_there = await cluster.connect("bob", second)
    await asyncio.sleep(GRACE_S * 2.5)  # both processes sweep a dozen times meanwhile

    assert await holder_of(cluster, ticket) == "bob"
    assert seen_by(first, "bob", cluster) == Availability(presence=Presence.ONLINE)
    assert len(await routing_notes(cluster, ticket)) == 1

    # He really leaves: the first process notices, and after the grace it moves on.
    await bob_there.sio.disconnect()
    took = await holds(cluster, ticket, "alice", timeout=5.0)
    assert took >= GRACE_S
    *_, moved = await routing_notes(cluster, ticket)
    assert f"(from agent {cluster.agent_ids['bob']}, offline)" in moved


async def test_the_agents_of_a_killed_process_count_as_offline_once_its_key_expires(
    cluster: Cluster, tmp_path: Path
) -> None:
    configure(cluster, **SWEEPING)
    first = await cluster.start("first")
    await cluster.sign_in()
    environment = base_environment(
        database_url=cluster.settings.database_url,
        redis_url=cluster.settings.redis_url,
        config=default_config_dir(),
    ) | {
        "DESK_MODE": "test",
        "DESK_SECRET_KEY": TEST_SECRET,  # the tokens signed in through the first work here
        "DESK_RATE_LIMITS_ENABLED": "false",
        "DESK_ROUTING_REASSIGN_WHEN_OFFLINE": "true",
        "DESK_ROUTING_OFFLINE_GRACE": f"{GRACE_S:g}s",
        "DESK_ROUTING_SWEEP_INTERVAL": "0.2",
        "DESK_ATTENDANCE_INTERVAL": "0.2",
        "DESK_ATTENDANCE_EXPIRY": "1",
    }
    doomed = DeskServe("doomed", environment, port=free_port(), workdir=tmp_path)
    await doomed.start()
    bob = socketio.AsyncClient(reconnection=False)
    try:
        await bob.connect(
            doomed.url, auth={"token": cluster.tokens["bob"]}, transports=["websocket"]
        )
        ticket = await open_ticket(cluster, doomed.url, "Invoice missing")
        await holds(cluster, ticket, "bob")
        await cluster.connect("alice", first)
        await until(
            lambda: seen_by(first, "bob", cluster) == Availability(presence=Presence.ONLINE),
            what="the first process sees Bob online through the doomed one",
        )

        await doomed.kill()  # no clean stop: its attendance key stays until it expires
        took = await holds(cluster, ticket, "alice", timeout=6.0)
    finally:
        await doomed.stop()
        if bob.connected:
            await bob.disconnect()

    assert took >= GRACE_S, f"moved {took:.2f}s after the kill, within the grace"
    seen = seen_by(first, "bob", cluster)
    assert seen is not None and seen.presence is Presence.OFFLINE
    *_, moved = await routing_notes(cluster, ticket)
    assert f"(from agent {cluster.agent_ids['bob']}, offline)" in moved


async def test_the_holders_phone_states_reach_the_standbys_assigner(cluster: Cluster) -> None:
    configure(cluster, pbx=True, **FAST_ATTENDANCE)
    holder = await cluster.start("holder")
    await cluster.wait_for_holder()
    standby = await cluster.start("standby")
    await cluster.sign_in()
    heard = holder.server.app[ATTENDANCE]

    # Every phone the holder heard of, and only those, as the standby's assigner sees it.
    await until(lambda: len(heard.phones()) == 4, what="the holder heard four phones")

    def standby_phones() -> dict[int, PhoneState]:
        view = standby.server.app[SHARED_ATTENDANCE].agent_availability()
        return {agent_id: view[agent_id].phone for agent_id in heard.phones() if agent_id in view}

    await until(lambda: standby_phones() == heard.phones(), what="the standby knows the phones")
    assert standby.server.app[ATTENDANCE].phones() == {}  # nothing heard itself

    # Alice pauses (the standby forwards it to the PBX) with her desk open on the standby.
    alice: Browser = await cluster.connect("alice", standby)
    status, answer = await cluster.request(
        "PUT", standby, "/api/v1/agents/me/state", "alice", {"status": "paused", "reason": "Lunch"}
    )
    assert status == 202, answer
    paused_here = Availability(presence=Presence.ONLINE, phone=PhoneState.PAUSED)
    await until(
        lambda: seen_by(standby, "alice", cluster) == paused_here,
        what="the standby sees Alice paused on the phone",
    )
    assert alice.sio.connected

    ticket = await open_ticket(cluster, standby.url, "Headset crackles")

    async def assigned() -> bool:
        return await holder_of(cluster, ticket) is not None

    await eventually(assigned, timeout=5.0, what="the ticket is assigned")
    who = await holder_of(cluster, ticket)
    assert who != "alice"  # paused on the phone, though her browser is on the standby
    assert heard.phones()[cluster.agent_ids[str(who)]] is PhoneState.READY  # no browser at all
    (note,) = await routing_notes(cluster, ticket)
    assert "paused 1" in note, note
