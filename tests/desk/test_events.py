"""Events reach subscribers only after their transaction commits."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

import pytest
from sqlalchemy import func, select

from desk.clock import FakeClock
from desk.customers import CustomerDraft, create_customer
from desk.events import (
    CustomerCreated,
    DomainEvent,
    EventBus,
    Recipients,
    UnitOfWork,
    waves,
)
from desk.models import Customer
from tests.conftest import Database


class Recorder:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.events: list[DomainEvent] = []
        self.visible_rows: list[int] = []

    async def __call__(self, event: DomainEvent) -> None:
        self.events.append(event)
        # What a subscriber on another connection sees when it hears the event.
        async with self.database.sessions() as session:
            count = await session.scalar(select(func.count()).select_from(Customer))
            self.visible_rows.append(count or 0)


async def test_an_event_is_published_after_its_transaction_commits(
    database: Database, clock: FakeClock
) -> None:
    bus, recorder = EventBus(), Recorder(database)
    bus.subscribe(DomainEvent, recorder)
    async with UnitOfWork(sessions=database.sessions, bus=bus) as uow:
        await create_customer(uow, CustomerDraft(name="Committed"), region="DE", now=clock.now())
        assert recorder.events == []
        await uow.commit()
    assert [type(e) for e in recorder.events] == [CustomerCreated]
    assert recorder.visible_rows == [1]


async def test_a_rolled_back_transaction_publishes_nothing(
    database: Database, clock: FakeClock
) -> None:
    bus, recorder = EventBus(), Recorder(database)
    bus.subscribe(DomainEvent, recorder)
    with pytest.raises(RuntimeError):
        async with UnitOfWork(sessions=database.sessions, bus=bus) as uow:
            await create_customer(uow, CustomerDraft(name="Doomed"), region="DE", now=clock.now())
            raise RuntimeError("something failed before commit")
    assert recorder.events == []
    async with database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Customer)) == 0


async def test_leaving_without_commit_rolls_back_and_publishes_nothing(
    database: Database, clock: FakeClock
) -> None:
    bus, recorder = EventBus(), Recorder(database)
    bus.subscribe(DomainEvent, recorder)
    async with UnitOfWork(sessions=database.sessions, bus=bus) as uow:
        await create_customer(uow, CustomerDraft(name="Forgotten"), region="DE", now=clock.now())
    assert recorder.events == []


async def test_a_failing_subscriber_does_not_stop_the_others(
    database: Database, clock: FakeClock
) -> None:
    bus, recorder = EventBus(), Recorder(database)

    async def broken(event: DomainEvent) -> None:
        raise ValueError("subscriber bug")

    bus.subscribe(DomainEvent, broken)
    bus.subscribe(CustomerCreated, recorder)
    async with UnitOfWork(sessions=database.sessions, bus=bus) as uow:
        await create_customer(uow, CustomerDraft(name="Resilient"), region="DE", now=clock.now())
        await uow.commit()
    assert len(recorder.events) == 1


async def test_event_times_come_from_the_injected_clock(
    database: Database, clock: FakeClock
) -> None:
    bus, recorder = EventBus(), Recorder(database)
    bus.subscribe(DomainEvent, recorder)
    clock.advance(3600)
    async with UnitOfWork(sessions=database.sessions, bus=bus) as uow:
        await create_customer(uow, CustomerDraft(name="Timed"), region="DE", now=clock.now())
        await uow.commit()
    assert recorder.events[0].occurred_at == clock.now()


async def test_commit_callbacks_run_before_the_events_go_out(
    database: Database, clock: FakeClock
) -> None:
    bus, order = EventBus(), []

    async def subscriber(event: DomainEvent) -> None:
        order.append("event")

    bus.subscribe(DomainEvent, subscriber)
    async with UnitOfWork(sessions=database.sessions, bus=bus) as uow:
        await create_customer(uow, CustomerDraft(name="Ordered"), region="DE", now=clock.now())
        uow.when_committed(lambda: order.append("callback"))
        await uow.commit()
    assert order == ["callback", "event"]


async def test_commit_callbacks_of_a_rolled_back_unit_never_run(
    database: Database, clock: FakeClock
) -> None:
    ran: list[str] = []
    async with UnitOfWork(sessions=database.sessions, bus=EventBus()) as uow:
        uow.when_committed(lambda: ran.append("callback"))
    assert ran == []


@dataclass(frozen=True, kw_only=True)
class _ForAgent(DomainEvent):
    name: ClassVar[str] = "for_agent"
    agent_id: int
    label: str

    @property
    def recipients(self) -> Recipients:
        return Recipients(agents=(self.agent_id,))


@dataclass(frozen=True, kw_only=True)
class _ForNobody(DomainEvent):
    name: ClassVar[str] = "for_nobody"
    label: str


_AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def _agent(agent_id: int, label: str) -> _ForAgent:
    return _ForAgent(occurred_at=_AT, agent_id=agent_id, label=label)


def _board(label: str) -> CustomerCreated:
    return CustomerCreated(occurred_at=_AT, customer_id=1, display_name=label)  # supervisors


def _labels(wave: list[DomainEvent]) -> list[str]:
    return [getattr(e, "label", None) or getattr(e, "display_name", "") for e in wave]


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([_agent(1, "a"), _agent(2, "b"), _agent(3, "c")], [["a", "b", "c"]]),
        ([_agent(1, "a"), _agent(1, "b")], [["a"], ["b"]]),
        (
            [_agent(1, "a"), _agent(2, "b"), _agent(1, "c"), _agent(3, "d")],
            [["a", "b"], ["c", "d"]],
        ),
        ([_agent(1, "a"), _board("b"), _board("c")], [["a", "b"], ["c"]]),
        (
            [_ForNobody(occurred_at=_AT, label="a"), _ForNobody(occurred_at=_AT, label="b")],
            [["a"], ["b"]],
        ),
        ([], []),
    ],
    ids=["distinct agents", "same agent", "agent again", "supervisors twice", "nobody", "none"],
)
def test_a_commits_events_go_out_in_waves_of_events_without_a_recipient_in_common(
    events: list[DomainEvent], expected: list[list[str]]
) -> None:
    assert [_labels(wave) for wave in waves(events)] == expected


class _Gated:
    """A subscriber that holds every event until the test opens the gate."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.gate = asyncio.Event()

    async def __call__(self, event: DomainEvent) -> None:
        label = _labels([event])[0]
        self.log.append(f"{label} in")
        await self.gate.wait()
        self.log.append(f"{label} out")


async def test_events_for_different_agents_are_handed_over_together() -> None:
    bus, gated = EventBus(), _Gated()
    bus.subscribe(DomainEvent, gated)
    publishing = asyncio.create_task(bus.publish([_agent(1, "a"), _agent(2, "b")]))
    for _ in range(3):
        await asyncio.sleep(0)
    assert gated.log == ["a in", "b in"]  # the second did not wait for the first
    gated.gate.set()
    await publishing
    assert bus.published == 2


async def test_events_for_one_agent_reach_subscribers_in_commit_order() -> None:
    bus, gated = EventBus(), _Gated()
    bus.subscribe(DomainEvent, gated)
    publishing = asyncio.create_task(bus.publish([_agent(1, "ringing"), _agent(1, "withdrawn")]))
    for _ in range(3):
        await asyncio.sleep(0)
    assert gated.log == ["ringing in"]
    gated.gate.set()
    await publishing
    assert gated.log == ["ringing in", "ringing out", "withdrawn in", "withdrawn out"]
