"""The call recorder on a real database: call log rows, claimed pops, events after commit."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cti.directory import MISS_RETRY, AgentDirectory
from cti.events import CallRinging, CallStarted, Direction
from cti.notices import ScreenPopped
from cti.pops import PopDecision, PopPhase
from cti.recorder import ArticleSuggester, CallRecorder, Work
from desk.clock import FakeClock
from desk.demo_data import seed_demo
from desk.events import DomainEvent, EventBus
from desk.models import Call
from tests.conftest import Database


def _recorder(database: Database, clock: FakeClock, bus: EventBus) -> CallRecorder:
    directory = AgentDirectory(sessions=database.sessions)
    return CallRecorder(
        sessions=database.sessions, bus=bus, clock=clock, directory=directory, region="DE"
    )


async def test_an_unknown_phone_in_a_batch_does_not_stall_recording_behind_its_own_transaction(
    database: Database, clock: FakeClock, bus: EventBus
) -> None:
    await seed_demo(sessions=database.sessions, bus=bus, region="DE", now=clock.now())
    popped: list[DomainEvent] = []

    async def on_pop(event: DomainEvent) -> None:
        popped.append(event)

    bus.subscribe(ScreenPopped, on_pop)
    recorder = _recorder(database, clock, bus)
    recorder.start()
    try:
        at = clock.now()
        known = CallRinging(
            call_id="c1",
            at=at,
            agent_interface="PJSIP/1001",
            direction=Direction.INBOUND,
            queue="support",
            caller_number_raw="+4930901820",
            caller_name="Caller",
        )
        recorder.submit(Work(facts=(known,)))
        await asyncio.wait_for(recorder.drained(), 5)
        # Past the directory's retry window a phone nobody owns makes it reload;
        # the reload must not wait for the recorder's own write transaction.
        clock.advance(MISS_RETRY + timedelta(seconds=1))
        started = CallStarted(
            call_id="c2",
            at=clock.now(),
            direction=Direction.OUTBOUND,
            caller_number_raw="+4930901821",
            caller_name="",
            dialled="+4930901821",
            agent_interface="PJSIP/9999",
        )
        ring = PopDecision(
            call_id="c1",
            agent_interface="PJSIP/1001",
            phase=PopPhase.RINGING,
            caller_number_raw="+4930901820",
            caller_name="Caller",
            queue="support",
            reason="queue",
            at=at,
            direction=Direction.INBOUND,
            call_started_at=at,
        )
        recorder.submit(Work(facts=(started,), decisions=(ring,)))
        await asyncio.wait_for(recorder.drained(), 5)
    finally:
        await recorder.stop()
    async with database.sessions() as session:
        calls = sorted((await session.scalars(select(Call.call_id))).all())
    assert calls == ["c1", "c2"]
    assert [type(e) for e in popped] == [ScreenPopped]


def _ringing(call_id: str, number: str, at: datetime) -> PopDecision:
    return PopDecision(
        call_id=call_id,
        agent_interface="PJSIP/1001",
        phase=PopPhase.RINGING,
        caller_number_raw=number,
        caller_name="Erika",
        queue="support",
        reason="queue",
        at=at,
        direction=Direction.INBOUND,
        call_started_at=at,
    )


async def _pop_with(
    database: Database, clock: FakeClock, bus: EventBus, articles: ArticleSuggester
) -> dict[str, Any]:
    await seed_demo(sessions=database.sessions, bus=bus, region="DE", now=clock.now())
    popped: list[ScreenPopped] = []

    async def on_pop(event: ScreenPopped) -> None:
        popped.append(event)

    bus.subscribe(ScreenPopped, on_pop)
    recorder = CallRecorder(
        sessions=database.sessions,
        bus=bus,
        clock=clock,
        directory=AgentDirectory(sessions=database.sessions),
        region="DE",
        articles=articles,
    )
    recorder.start()
    try:
        recorder.submit(Work(decisions=(_ringing("c1", "+4930123456789", clock.now()),)))
        await asyncio.wait_for(recorder.drained(), 5)
    finally:
        await recorder.stop()
    [pop] = popped
    return pop.body


async def test_a_known_callers_pop_carries_the_articles_suggested_for_them(
    database: Database, clock: FakeClock, bus: EventBus
) -> None:
    asked: list[tuple[int, str | None]] = []

    async def articles(
        session: AsyncSession, *, customer_id: int, language: str | None
    ) -> list[dict[str, Any]]:
        asked.append((customer_id, language))
        return [{"id": 7, "title": "Reset your router", "reason": "matches 'router'"}]

    body = await _pop_with(database, clock, bus, articles)
    customer = body["customer"]
    assert asked == [(customer["id"], customer["language"])]
    assert customer["suggested_articles"] == [
        {"id": 7, "title": "Reset your router", "reason": "matches 'router'"}
    ]


async def test_a_failing_suggester_still_lets_the_pop_through_without_articles(
    database: Database, clock: FakeClock, bus: EventBus
) -> None:
    async def articles(
        session: AsyncSession, *, customer_id: int, language: str | None
    ) -> list[dict[str, Any]]:
        raise RuntimeError("search index unavailable")

    body = await _pop_with(database, clock, bus, articles)
    assert body["customer"]["name"] == "Erika Mustermann"
    assert body["customer"]["suggested_articles"] == []


async def test_a_pop_another_process_sent_is_not_sent_again_but_is_in_the_next_snapshot(
    database: Database, clock: FakeClock, bus: EventBus
) -> None:
    # After a take-over, the new holder's resync decides the live call's pop again.
    await seed_demo(sessions=database.sessions, bus=bus, region="DE", now=clock.now())
    popped: list[ScreenPopped] = []

    async def on_pop(event: ScreenPopped) -> None:
        popped.append(event)

    bus.subscribe(ScreenPopped, on_pop)
    ringing = _ringing("c1", "+4930123456789", clock.now())
    for holder in ("first", "second"):
        recorder = _recorder(database, clock, bus)
        recorder.start()
        try:
            recorder.submit(Work(decisions=(ringing,)))
            await asyncio.wait_for(recorder.drained(), 5)
            snapshot = recorder.showing(popped[0].agent_id)
        finally:
            await recorder.stop()
        assert len(popped) == 1, f"the {holder} holder sent the pop again"
        assert [(p["call_id"], p["phase"], p["seq"]) for p in snapshot["pops"]] == [
            ("c1", "ringing", popped[0].body["seq"])
        ]
