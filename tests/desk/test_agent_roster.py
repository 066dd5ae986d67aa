"""The agent roster: every agent's phone, team and skills, read as plain rows."""

from __future__ import annotations

from sqlalchemy import event

from desk.clock import FakeClock
from desk.events import EventBus, UnitOfWork
from desk.models import Agent, AgentSkill, User
from desk.users import (
    AgentIn,
    SkillIn,
    TeamDraft,
    UserDraft,
    UserPatch,
    agent_roster,
    create_team,
    create_user,
    update_user,
)
from tests.conftest import Database


async def _call_center(database: Database, clock: FakeClock) -> dict[str, int]:
    """Ana (Support, billing 3 and german 1), Ben (no team, no skills), Cleo (Support,
    left the company: deactivated) and Sam, a supervisor without a phone."""
    async with UnitOfWork(sessions=database.sessions, bus=EventBus()) as uow:
        support = await create_team(uow.session, TeamDraft(name="Support"), now=clock.now())
        people = {
            "ana": AgentIn(
                extension="1001",
                team_id=support.id,
                skills=[SkillIn(name="billing", level=3), SkillIn(name="german")],
            ),
            "ben": AgentIn(extension="1002", interface="SIP/ben-desk"),
            "cleo": AgentIn(extension="1003", team_id=support.id),
            "sam": None,
        }
        ids = {"support": support.id}
        for username, phone in people.items():
            user = await create_user(
                uow.session,
                UserDraft(
                    username=username,
                    display_name=username.title(),
                    password="long enough",
                    agent=phone,
                ),
                now=clock.now(),
            )
            ids[username] = user.id
        await update_user(uow.session, ids["cleo"], UserPatch(active=False), now=clock.now())
        await uow.commit()
    return ids


async def test_the_roster_gives_each_agent_their_phone_team_and_skills(
    database: Database, clock: FakeClock
) -> None:
    ids = await _call_center(database, clock)
    async with database.sessions() as session:
        roster = await agent_roster(session)
    support = ids["support"]
    assert [
        (a.name, a.user_id, a.active, a.extension, a.interface, a.team_id, dict(a.skills))
        for a in roster
    ] == [
        ("Ana", ids["ana"], True, "1001", "PJSIP/1001", support, {"billing": 3, "german": 1}),
        ("Ben", ids["ben"], True, "1002", "SIP/ben-desk", None, {}),
        ("Cleo", ids["cleo"], False, "1003", "PJSIP/1003", support, {}),
    ]
    assert [a.agent_id for a in roster] == sorted(a.agent_id for a in roster)


async def test_the_active_roster_leaves_out_agents_whose_account_is_deactivated(
    database: Database, clock: FakeClock
) -> None:
    await _call_center(database, clock)
    async with database.sessions() as session:
        roster = await agent_roster(session, active_only=True)
    assert [a.name for a in roster] == ["Ana", "Ben"]


async def test_reading_the_roster_builds_no_entity_per_agent(
    database: Database, clock: FakeClock
) -> None:
    # The PBX directory and the ticket router read the whole roster while calls come
    # in; with thousands of agents, an entity (and skill collection) each cost ~60 ms
    # of event-loop time and tens of thousands of objects per read.
    await _call_center(database, clock)
    built: list[object] = []

    def loaded(target: object, _context: object) -> None:
        built.append(target)

    for entity in (Agent, AgentSkill, User):
        event.listen(entity, "load", loaded)
    try:
        async with database.sessions() as session:
            roster = await agent_roster(session)
    finally:
        for entity in (Agent, AgentSkill, User):
            event.remove(entity, "load", loaded)
    assert len(roster) == 3
    assert built == []
