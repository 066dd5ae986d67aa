"""The desk under PBX-side faults: a cut link, refused credentials, garbage on the wire."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from cti.frames import Frame
from desk.settings import Settings
from tests.conftest import Database
from tests.cti_e2e.conftest import (
    E2E,
    assert_pops_consistent,
    pop_summary,
    running_desk,
    until,
)


async def test_a_link_cut_mid_call_reconnects_resyncs_and_logs_the_call_once(e2e: E2E) -> None:
    alice, bob = e2e.browsers["alice"], e2e.browsers["bob"]
    link = e2e.link
    # Real time / 2: Alice answers 1 s after the rings start and talks for 2 s.
    playing = asyncio.create_task(e2e.sim.play("support_ringall_answered", speed=2.0))
    try:
        await until(lambda: alice.phases() == ["ringing"] and bob.phases() == ["ringing"])
        resyncs = link.resyncs
        e2e.sim.drop_link()
        await until(lambda: link.resyncs > resyncs, what="reconnected and resynced")
        health = await e2e.healthz()
        assert health["ami"]["status"] == "connected"
        assert health["ami"]["reconnects"] >= 1
        assert health["ami"]["resyncs"] >= 2
    finally:
        await playing
    await e2e.settle()

    assert pop_summary(e2e) == {
        "alice": [("ringing", "queue"), ("connected", "answered"), ("ended", "answered")],
        "bob": [("ringing", "queue"), ("withdrawn", "answered_elsewhere")],
        "carol": [],
        "dave": [],
        "sam": [],
    }
    (call,) = await e2e.calls()
    assert (call.outcome, call.agent_id) == ("answered", e2e.agent_ids["alice"])
    assert link.tracker.live_calls() == ()
    assert_pops_consistent(e2e)


async def test_wrong_ami_credentials_show_auth_failed_back_off_and_http_keeps_working(
    settings: Settings, database: Database
) -> None:
    async with running_desk(
        settings, database, desk_secret="not-the-secret", wait_connected=False, browsers=()
    ) as desk:
        started = time.monotonic()
        await until(lambda: desk.link.status()["status"] == "auth_failed", what="auth_failed")
        response = await desk.client.get("/healthz")
        assert response.status == 200
        health = await response.json()
        assert health["status"] == "ok"
        assert health["ami"]["status"] == "auth_failed"
        assert health["ami"]["error"] == "authentication failed"

        await asyncio.sleep(max(0.0, 2.0 - (time.monotonic() - started)))
        # Backoff from 0.5 s doubling (with jitter): 2-4 attempts in 2 s, not a busy loop.
        assert 2 <= desk.sim.login_attempts <= 5, desk.sim.login_attempts

        board = await desk.board()
        assert board["link"] == {"status": "auth_failed", "error": "authentication failed"}
        response = await desk.client.post(
            "/api/v1/calls", json={"number": "040 987654"}, headers=desk.auth("alice")
        )
        assert response.status == 502
        assert (await response.json())["error"]["code"] == "pbx_refused"
        response = await desk.client.get("/api/v1/customers", headers=desk.auth("alice"))
        assert response.status == 200


def _frame(**fields: str) -> bytes:
    return Frame(tuple(fields.items())).encode()


def _unknown_agent_call() -> bytes:
    """A queue call that rings PJSIP/9999, a phone no desk agent owns, then hangs up."""
    trunk = {
        "Channel": "PJSIP/trunk-00ffff01",
        "CallerIDNum": "+4930999000111",
        "CallerIDName": "Nobody Known",
        "Exten": "100",
        "Uniqueid": "1900000000.1",
        "Linkedid": "1900000000.1",
    }
    phone = {
        "Channel": "PJSIP/9999-00ffff02",
        "CallerIDNum": "9999",
        "Uniqueid": "1900000000.2",
        "Linkedid": "1900000000.1",
    }
    dest = {f"Dest{key}": value for key, value in phone.items()}
    return b"".join(
        [
            _frame(Event="Newchannel", **trunk),
            _frame(Event="QueueCallerJoin", Queue="support", Position="1", Count="1", **trunk),
            _frame(Event="Newchannel", **phone),
            _frame(
                Event="AgentCalled",
                Queue="support",
                Interface="PJSIP/9999",
                MemberName="Stranger",
                **trunk,
                **dest,
            ),
            _frame(Event="Hangup", Cause="16", **phone),
            _frame(Event="Hangup", Cause="16", **trunk),
        ]
    )


async def test_garbage_a_huge_frame_and_unknown_agents_are_skipped_and_the_next_call_pops(
    e2e: E2E, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    sim = e2e.sim
    sim.broadcast_raw(b"\x00\xff\xfe\x80 garbage \xc3(\r\nno header here\r\n\r\n")
    sim.broadcast_raw(b"Event: AgentCalled\r\nQueue: support\r\n\r\n")  # no channel at all
    sim.broadcast_raw(b"Event: VarSet\r\nValue: " + b"x" * (1 << 20) + b"\r\n\r\n")  # > 1 MiB
    sim.broadcast_raw(_unknown_agent_call())
    await e2e.settle()

    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("dropped an AMI frame of") for m in messages), messages
    assert any(m.startswith("dropping malformed AMI AgentCalled") for m in messages), messages
    assert not any(b.pops() for b in e2e.browsers.values())
    stranger = next(a for a in (await e2e.board())["agents"] if a["interface"] == "PJSIP/9999")
    assert stranger["agent_id"] is None

    await e2e.play("support_ringall_answered")

    assert pop_summary(e2e) == {
        "alice": [("ringing", "queue"), ("connected", "answered"), ("ended", "answered")],
        "bob": [("ringing", "queue"), ("withdrawn", "answered_elsewhere")],
        "carol": [],
        "dave": [],
        "sam": [],
    }
    health = await e2e.healthz()
    assert (health["ami"]["status"], health["ami"]["reconnects"]) == ("connected", 0)
    calls = {c.caller_e164: c for c in await e2e.calls()}
    assert set(calls) == {"+4930999000111", "+4930123456789"}
    assert (calls["+4930999000111"].outcome, calls["+4930999000111"].agent_id) == ("missed", None)
    assert calls["+4930123456789"].outcome == "answered"
    assert_pops_consistent(e2e)


async def test_a_call_that_ends_while_the_link_is_down_is_closed_at_the_resync_not_a_ghost(
    e2e: E2E,
) -> None:
    alice, bob = e2e.browsers["alice"], e2e.browsers["bob"]
    link = e2e.link
    # At 4x: Alice answers 0.5 s after the rings start, the caller hangs up 1 s later.
    playing = asyncio.create_task(e2e.sim.play("support_ringall_answered", speed=4.0))
    await until(lambda: alice.phases() == ["ringing"] and bob.phases() == ["ringing"])
    await link.client.stop()
    await playing
    resyncs = link.resyncs
    link.client.start()
    await until(lambda: link.resyncs > resyncs, what="resynced after the new login")
    await e2e.settle()

    assert link.tracker.live_calls() == ()
    assert alice.phases() == ["ringing", "withdrawn"]
    assert bob.phases() == ["ringing", "withdrawn"]
    for who in ("alice", "bob"):
        fresh = await e2e.connect(who)
        await until(lambda: bool(fresh.events("screen_pop_snapshot")))  # noqa: B023
        assert fresh.events("screen_pop_snapshot")[0]["pops"] == []
    board = await e2e.board()
    assert {a["status"] for a in board["agents"]} <= {"ready", "wrap_up"}
    # Closed once, when the resync found its channels gone.  (Its outcome says "missed":
    # the desk never saw the answer, and the CDR went by while it was away.)
    (call,) = await e2e.calls()
    assert call.ended_at is not None
    assert [p["reason"] for p in alice.pops()] == ["queue", "hung_up"]
    assert_pops_consistent(e2e)


async def test_a_call_starting_while_the_resync_lists_are_on_their_way_is_not_ended_by_them(
    e2e: E2E,
) -> None:
    sim, link = e2e.sim, e2e.link
    # Slow replies hold each list up to 0.2 s; CoreShowChannels is answered before
    # QueueStatus is asked for, so the call below is not on the channel list.
    sim.reply_jitter = 0.2
    sent = len(sim.actions_received)
    resyncs = link.resyncs
    sim.drop_link()
    await until(
        lambda: any(f.get("Action") == "QueueStatus" for f in list(sim.actions_received)[sent:]),
        what="the resync asked for QueueStatus",
    )
    # At 4x Alice answers 0.5 s in: after the resync has applied its lists (< 0.4 s).
    playing = asyncio.create_task(sim.play("support_ringall_answered", speed=4.0))
    try:
        await until(lambda: link.resyncs > resyncs, what="resynced")
        sim.reply_jitter = 0.0
    finally:
        await playing
    await e2e.settle()

    assert pop_summary(e2e) == {
        "alice": [("ringing", "queue"), ("connected", "answered"), ("ended", "answered")],
        "bob": [("ringing", "queue"), ("withdrawn", "answered_elsewhere")],
        "carol": [],
        "dave": [],
        "sam": [],
    }
    (call,) = await e2e.calls()
    assert (call.outcome, call.agent_id) == ("answered", e2e.agent_ids["alice"])
    assert_pops_consistent(e2e)
