"""Events reach subscribers only after their transaction commits."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from desk.clock import FakeClock
from desk.customers import CustomerDraft, create_customer
from desk.events import CustomerCreated, DomainEvent, EventBus, UnitOfWork
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
