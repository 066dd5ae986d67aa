"""A running app with surveys and e-mail on (to a real local SMTP server), a team
led by Tom, Alice its agent, Bob another agent, and Erika, a customer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from desk.clock import FakeClock
from desk.events import DomainEvent, EventBus
from desk.models import Role, Survey
from desk.outbox import outbox_messages
from desk.users import AgentIn, UserDraft, create_user
from tests.conftest import Database
from tests.desk.mail_support import MailServer
from tests.desk.survey_support import LINK, People, seed_people, survey_settings
from web.app import create_app
from web.state import MAIL_SENDER

PASSWORD = "correct horse battery"


@dataclass
class SurveyDesk:
    client: TestClient
    database: Database
    clock: FakeClock
    mail: MailServer
    people: People
    tokens: dict[str, str]
    events: list[DomainEvent] = field(default_factory=list)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def open_ticket(self, *, customer_id: int | None = None, subject: str = "Invoice") -> int:
        response = await self.client.post(
            "/api/v1/tickets",
            json={
                "subject": subject,
                "channel": "email",
                "customer_id": customer_id or self.people.customer,
                "assignee_id": self.people.agent,
            },
            headers=self.auth("alice"),
        )
        assert response.status == 201, await response.text()
        return int((await response.json())["id"])

    async def ticket(self, ticket_id: int) -> dict[str, Any]:
        response = await self.client.get(f"/api/v1/tickets/{ticket_id}", headers=self.auth("alice"))
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body

    async def set_status(self, ticket_id: int, status: str) -> None:
        version = (await self.ticket(ticket_id))["version"]
        response = await self.client.patch(
            f"/api/v1/tickets/{ticket_id}",
            json={"version": version, "status": status},
            headers=self.auth("alice"),
        )
        assert response.status == 200, await response.text()

    async def solved_ticket(self, **options: Any) -> int:
        ticket_id = await self.open_ticket(**options)
        await self.set_status(ticket_id, "solved")
        return ticket_id

    async def token(self) -> str:
        """The link token of the newest survey e-mail in the outbox."""
        async with self.database.sessions() as session:
            mail = (await outbox_messages(session))[-1]
        found = LINK.search(mail.body)
        assert found is not None
        return found.group(1)

    async def survey(self) -> Survey:
        async with self.database.sessions() as session:
            row = await session.scalar(select(Survey).order_by(Survey.id.desc()).limit(1))
        assert row is not None
        return row

    async def sign_in_again(self) -> None:
        """After the fake clock jumped past the sign-in sessions' lifetime."""
        self.tokens.update(await _sign_in(self.client))

    async def send_due(self) -> int:
        return await self.client.app[MAIL_SENDER].send_due()


async def start_survey_desk(
    database: Database, clock: FakeClock, mail: MailServer, **overrides: Any
) -> SurveyDesk:
    people = await seed_people(database, clock)
    async with database.sessions() as session:
        await create_user(
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
    settings = survey_settings(mail.port, database_url=database.url, **overrides)
    bus = EventBus()
    events: list[DomainEvent] = []

    async def keep(event: DomainEvent) -> None:
        events.append(event)

    bus.subscribe(DomainEvent, keep)
    client = TestClient(TestServer(create_app(settings, clock=clock, bus=bus)))
    await client.start_server()
    tokens = await _sign_in(client)
    return SurveyDesk(client, database, clock, mail, people, tokens, events)


async def _sign_in(client: TestClient) -> dict[str, str]:
    tokens = {}
    for who in ("tom", "alice", "bob"):
        response = await client.post(
            "/api/v1/auth/login", json={"username": who, "password": PASSWORD}
        )
        assert response.status == 200, await response.text()
        tokens[who] = (await response.json())["token"]
    # Sign-ins left cookies behind; customers' pages are visited anonymously.
    client.session.cookie_jar.clear()
    return tokens


@pytest.fixture
async def mail_server() -> AsyncIterator[MailServer]:
    server = await MailServer().start()
    yield server
    await server.stop()


@pytest.fixture
async def surveys(
    database: Database, clock: FakeClock, mail_server: MailServer
) -> AsyncIterator[SurveyDesk]:
    desk = await start_survey_desk(database, clock, mail_server)
    yield desk
    await desk.client.close()


__all__ = ["Role", "SurveyDesk", "mail_server", "start_survey_desk", "surveys"]
