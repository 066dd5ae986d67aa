"""The PBX directory: which desk agent a phone interface belongs to."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event

from cti.directory import MISS_RETRY, AgentDirectory, AgentRef
from desk.clock import FakeClock
from desk.demo_data import seed_demo
from desk.events import EventBus, UnitOfWork
from desk.models import Agent, AgentSkill, User
from desk.users import AgentIn, UserDraft, create_user
from tests.conftest import Database


async def test_a_phone_is_known_by_its_agent_after_a_reload(
    database: Database, clock: FakeClock, bus: EventBus
) -> None:
    await seed_demo(sessions=database.sessions, bus=bus, region="DE", now=clock.now())
    directory = AgentDirectory(sessions=database.sessions)
    await directory.reload(now=clock.now())
    alice = directory.known("PJSIP/1001")
    assert alice is not None
    assert (alice.extension, alice.interface, alice.name) == ("1001", "PJSIP/1001", "Alice")
    assert alice.team_id is not None
    assert directory.known("PJSIP/9999") is None


async def test_an_agent_added_later_is_found_once_the_miss_retry_has_passed(
    database: Database, clock: FakeClock, bus: EventBus
) -> None:
    directory = AgentDirectory(sessions=database.sessions)
    await directory.reload(now=clock.now())
    async with UnitOfWork(sessions=database.sessions, bus=bus) as uow:
        await create_user(
            uow.session,
            UserDraft(
                username="nina",
                display_name="Nina New",
                password="long enough",
                agent=AgentIn(extension="4242"),
            ),
            now=clock.now(),
        )
        await uow.commit()
    assert await directory.lookup("PJSIP/4242", now=clock.now()) is None  # asked too soon
    clock.advance(MISS_RETRY + timedelta(seconds=1))
    nina = await directory.lookup("PJSIP/4242", now=clock.now())
    assert isinstance(nina, AgentRef)
    assert (nina.extension, nina.name, nina.team_id) == ("4242", "Nina New", None)


async def test_a_reload_on_the_pop_lane_builds_no_entity_per_agent(
    database: Database, clock: FakeClock, bus: EventBus
) -> None:
    # A frame naming a phone nobody owns makes the pop lane reload the directory (at
    # most every MISS_RETRY); with 2,000 agents, loading them as entities held the
    # pops of that moment up for 100-200 ms (docs/benchmarks.md, cluster).
    await seed_demo(sessions=database.sessions, bus=bus, region="DE", now=clock.now())
    directory = AgentDirectory(sessions=database.sessions)
    built: list[object] = []

    def loaded(target: object, _context: object) -> None:
        built.append(target)

    for entity in (Agent, AgentSkill, User):
        event.listen(entity, "load", loaded)
    try:
        await directory.reload(now=clock.now())
    finally:
        for entity in (Agent, AgentSkill, User):
            event.remove(entity, "load", loaded)
    assert len(directory.all()) >= 4
    assert built == []
