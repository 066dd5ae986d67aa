"""A running app on a real port, with an admin, a supervisor and an agent signed up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer

from desk.clock import FakeClock
from desk.events import EventBus
from desk.models import Role
from desk.settings import Settings
from desk.users import AgentIn, TeamDraft, UserDraft, create_team, create_user
from tests.conftest import Database
from web.app import create_app

PASSWORD = "correct horse battery"


@dataclass
class Desk:
    client: TestClient
    database: Database
    clock: FakeClock
    bus: EventBus
    tokens: dict[str, str]
    ids: dict[str, int]

    @property
    def url(self) -> str:
        return str(self.client.make_url("/"))

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


async def _seed_people(database: Database, clock: FakeClock) -> dict[str, int]:
    async with database.sessions() as session:
        team = await create_team(session, TeamDraft(name="Support"), now=clock.now())
        admin = await create_user(
            session,
            UserDraft(
                username="admin", display_name="Ada Admin", password=PASSWORD, role=Role.ADMIN
            ),
            now=clock.now(),
        )
        supervisor = await create_user(
            session,
            UserDraft(
                username="sam",
                display_name="Sam Supervisor",
                password=PASSWORD,
                role=Role.SUPERVISOR,
            ),
            now=clock.now(),
        )
        alice = await create_user(
            session,
            UserDraft(
                username="alice",
                display_name="Alice",
                password=PASSWORD,
                agent=AgentIn(extension="1001", team_id=team.id),
            ),
            now=clock.now(),
        )
        bob = await create_user(
            session,
            UserDraft(
                username="bob",
                display_name="Bob",
                password=PASSWORD,
                agent=AgentIn(extension="1002"),
            ),
            now=clock.now(),
        )
        await session.commit()
        assert alice.agent is not None and bob.agent is not None
        return {
            "admin": admin.id,
            "sam": supervisor.id,
            "alice": alice.id,
            "bob": bob.id,
            "alice_agent": alice.agent.id,
            "bob_agent": bob.agent.id,
            "team": team.id,
        }


@pytest.fixture
async def desk(settings: Settings, database: Database, clock: FakeClock) -> AsyncIterator[Desk]:
    ids = await _seed_people(database, clock)
    bus = EventBus()
    app = create_app(settings, clock=clock, bus=bus)
    client = TestClient(TestServer(app))
    await client.start_server()
    tokens = {}
    for who in ("admin", "sam", "alice", "bob"):
        response = await client.post(
            "/api/v1/auth/login", json={"username": who, "password": PASSWORD}
        )
        assert response.status == 200, await response.text()
        tokens[who] = (await response.json())["token"]
    # Sign-ins left cookies behind; tests start as an anonymous client.
    client.session.cookie_jar.clear()
    yield Desk(client, database, clock, bus, tokens, ids)
    await client.close()
