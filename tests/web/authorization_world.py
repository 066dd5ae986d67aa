"""The desk the authorization matrix is tried on: the real app with surveys, e-mail
and a PBX (the simulator), and one person for each way of asking.

- ``anonymous``: no credentials at all;
- ``link_holder``: a customer holding the link of a survey e-mail, who sends its
  token where a session would go (it opens their survey page, nothing more);
- ``agent``: Alice, of the Support team (led by Tom);
- ``other_team_agent``: Bob, of the Sales team, which he leads;
- ``supervisor``: Tom; ``admin``: Ada.

Things the table reads are made once; ``fresh_*`` make a new one for each call, so
a write allowed for one role does not change what the next role is tried on.
Everything is made through the API as the admin, except what only the PBX or a
customer makes (a call in the log, a survey answer).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from desk.calls import CallStart, log_call_started
from desk.clock import FakeClock
from desk.models import CallDirection, Role
from desk.users import UserDraft, create_user
from tests.conftest import Database
from tests.desk.mail_support import MailServer
from tests.web.survey_support import PASSWORD, SurveyDesk, start_survey_desk
from web.state import LINK

ROLES = ("anonymous", "link_holder", "other_team_agent", "agent", "supervisor", "admin")
AMI_SECRET = "matrix-ami-secret"


@dataclass
class World:
    desk: SurveyDesk
    headers: dict[str, dict[str, str]]
    ids: dict[str, int]
    survey_token: str
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        return str(self.desk.client.make_url("/"))

    def unique(self, prefix: str) -> str:
        return f"{prefix}{next(self._numbers)}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        body: dict[str, Any] | None = None,
    ) -> tuple[int, str]:
        kwargs: dict[str, Any] = {"headers": headers, "allow_redirects": False}
        if body is not None:
            kwargs["json"] = body
        # Who asks is only what ``headers`` say: no session cookie from an earlier sign-in.
        self.desk.client.session.cookie_jar.clear()
        async with self.desk.client.request(method, path, **kwargs) as response:
            return response.status, await response.text()

    async def as_admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """What the admin gets, which must be a success: the world is being made."""
        response = await self.desk.client.request(
            method, path, json=body, headers=self.headers["admin"]
        )
        assert response.status < 300, (method, path, await response.text())
        return await response.json() if response.status != 204 else None

    async def session_of(self, role: str) -> dict[str, str]:
        """A new session for ``role`` (signing out ends the one it is sent with)."""
        username = USERNAMES.get(role)
        if username is None:
            return self.headers[role]
        response = await self.desk.client.post(
            "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
        )
        assert response.status == 200, await response.text()
        self.desk.client.session.cookie_jar.clear()
        return {"Authorization": f"Bearer {(await response.json())['token']}"}

    # --- fresh things, one per call ---------------------------------------------------

    async def fresh_customer(self) -> int:
        name = self.unique("customer")
        body = {"name": f"Customer {name}", "emails": [{"address": f"{name}@example.org"}]}
        customer: dict[str, Any] = await self.as_admin("POST", "/api/v1/customers", body)
        return int(customer["id"])

    async def fresh_ticket(self, *, customer_id: int | None = None, team: str = "team") -> int:
        """A ticket of Support (Alice's) or of Sales (``team="other_team"``: Bob's)."""
        body = {
            "subject": self.unique("Printer on fire "),
            "customer_id": customer_id,
            "team_id": self.ids[team],
            "assignee_id": self.ids["agent" if team == "team" else "other_team_agent"],
        }
        ticket: dict[str, Any] = await self.as_admin("POST", "/api/v1/tickets", body)
        return int(ticket["id"])

    async def fresh_solved_ticket(
        self, *, customer_id: int | None = None, team: str = "team"
    ) -> int:
        ticket_id = await self.fresh_ticket(customer_id=customer_id, team=team)
        await self.as_admin(
            "PATCH", f"/api/v1/tickets/{ticket_id}", {"version": 1, "status": "solved"}
        )
        return ticket_id

    async def fresh_call(self) -> int:
        async with self.desk.database.sessions() as session:
            call = await log_call_started(
                session,
                CallStart(
                    call_id=self.unique("1700000000."),
                    direction=CallDirection.INBOUND,
                    caller_raw="+49 30 1234567",
                    caller_name="Erika",
                    queue="support",
                    started_at=self.desk.clock.now() - timedelta(minutes=3),
                ),
                region="DE",
            )
            await session.commit()
            return call.id

    async def fresh_user(self) -> int:
        username = self.unique("temp")
        body = {"username": username, "display_name": username, "password": "long enough 1"}
        user: dict[str, Any] = await self.as_admin("POST", "/api/v1/users", body)
        return int(user["id"])

    async def fresh_category(self) -> int:
        slug = self.unique("category-")
        body = {"slug": slug, "names": {"en": slug}}
        category: dict[str, Any] = await self.as_admin("POST", "/api/v1/kb/categories", body)
        return int(category["id"])

    async def fresh_article(self, state: str = "draft", audience: str = "internal") -> int:
        body = {
            "title": self.unique("How to reset a phone "),
            "body": "Hold the button.",
            "audience": audience,
        }
        article: dict[str, Any] = await self.as_admin("POST", "/api/v1/kb/articles", body)
        for step in {"draft": [], "in_review": ["in_review"]}.get(
            state, ["in_review", "published"]
        ):
            article = await self.as_admin(
                "POST",
                f"/api/v1/kb/articles/{article['id']}/transitions",
                {"to": step, "version": article["head_version"]},
            )
        return int(article["id"])

    async def fresh_template(self) -> int:
        body = {
            "name": self.unique("After a call "),
            "questions": [
                {"key": "csat", "kind": "csat", "required": True, "label": {"en": "How was it?"}}
            ],
        }
        template: dict[str, Any] = await self.as_admin("POST", "/api/v1/surveys/templates", body)
        return int(template["id"])

    async def fresh_follow_up(self, team: str = "team") -> int:
        """A low score on a survey about a ticket of the team's: on the board, for the
        supervisors and the team's lead (Tom for Support, Bob for Sales)."""
        customer_id = await self.fresh_customer()
        await self.fresh_solved_ticket(customer_id=customer_id, team=team)
        token = await self.desk.token()
        response = await self.desk.client.post(
            f"/s/{token}", data={"csat": "1"}, allow_redirects=False
        )
        assert response.status == 303, await response.text()
        board = await self.as_admin("GET", "/api/v1/surveys/follow-ups")
        [follow_up] = [item for item in board["items"] if item["customer_id"] == customer_id]
        return int(follow_up["id"])


USERNAMES = {
    "other_team_agent": "bob",
    "agent": "alice",
    "supervisor": "tom",
    "admin": "ada",
}


@asynccontextmanager
async def authorization_world(
    database: Database, clock: FakeClock, mail: MailServer, *, ami_port: int
) -> AsyncIterator[World]:
    async with database.sessions() as session:
        await create_user(
            session,
            UserDraft(username="ada", display_name="Ada", password=PASSWORD, role=Role.ADMIN),
            now=clock.now(),
        )
        await session.commit()
    desk = await start_survey_desk(
        database,
        clock,
        mail,
        ami_host="127.0.0.1",
        ami_port=ami_port,
        ami_secret=AMI_SECRET,
        # Sign-ins are part of the table; rate limits have tests of their own.
        rate_limits_enabled=False,
    )
    try:
        world = World(desk, {}, {}, "")
        for role, username in USERNAMES.items():
            response = await desk.client.post(
                "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
            )
            assert response.status == 200, await response.text()
            signed_in = await response.json()
            world.headers[role] = {"Authorization": f"Bearer {signed_in['token']}"}
            world.ids[role] = signed_in["user"]["id"]
        desk.client.session.cookie_jar.clear()
        await _populate(world)
        yield world
    finally:
        await desk.client.close()


async def _populate(world: World) -> None:
    ids = world.ids
    ids["team"] = world.desk.people.team
    # Sales is led by its agent Bob: a lead need not be a supervisor.
    sales = await world.as_admin(
        "POST", "/api/v1/teams", {"name": "Sales", "lead_user_id": ids["other_team_agent"]}
    )
    ids["other_team"] = sales["id"]
    bob = await world.as_admin(
        "PATCH",
        f"/api/v1/users/{ids['other_team_agent']}",
        {"agent": {"extension": "1002", "team_id": sales["id"]}},
    )
    ids["other_team_agent_phone"] = bob["agent"]["id"]
    alice = await world.as_admin("GET", f"/api/v1/users/{ids['agent']}")
    ids["agent_phone"] = alice["agent"]["id"]

    # The link holder's survey: about a solved ticket of Erika's, mailed to her.
    ids["customer"] = world.desk.people.customer
    ids["solved_ticket"] = await world.fresh_solved_ticket(customer_id=ids["customer"])
    world.survey_token = await world.desk.token()
    world.headers["link_holder"] = {"Authorization": f"Bearer {world.survey_token}"}
    world.headers["anonymous"] = {}
    ids["survey"] = (await world.desk.survey()).id

    ids["ticket"] = await world.fresh_ticket(customer_id=ids["customer"])
    ids["call"] = await world.fresh_call()
    ids["category"] = await world.fresh_category()
    ids["article"] = await world.fresh_article("published", audience="public")
    ids["internal_article"] = await world.fresh_article("published")
    ids["template"] = await world.fresh_template()
    # Click-to-call and the agent's state need the PBX link up and its state read.
    link = world.desk.client.app[LINK]
    async with asyncio.timeout(10):
        while not (link.status()["status"] == "connected" and link.resyncs >= 1):
            await asyncio.sleep(0.01)
