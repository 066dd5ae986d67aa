"""Who may do what: every API endpoint tried as each kind of caller (anonymous, a
customer holding a survey link, an agent, another team's agent, a supervisor, an
admin), and the socket.io connection and events likewise.

The policy is the route table's roles (``web.api.endpoints``: public, staff,
supervisors, admins) plus the few rules views apply themselves (ringing another
agent's phone, ignoring the survey period, publishing an article, acknowledging a
low score).  Teams route work and notifications; they do not fence data off: any
agent may read and work on any ticket, as the desk's shared queues need, so
another team's agent is allowed what an agent is, and only the live team events
stay within the team.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import socketio

from cti.simulator import PbxSimulator
from desk.clock import FakeClock
from tests.conftest import Database
from tests.desk.mail_support import MailServer
from tests.web.authorization_world import AMI_SECRET, ROLES, World, authorization_world
from tests.web.survey_support import mail_server
from web.app import NOTIFIER, api_endpoints

__all__ = ["mail_server"]

Params = Callable[[World], Awaitable[dict[str, Any]]]
Body = Mapping[str, Any] | Callable[[World, dict[str, Any]], dict[str, Any]] | None

DENIED_TO_STRANGERS = {"anonymous": 401, "link_holder": 401}


def everyone(ok: int) -> dict[str, int]:
    return dict.fromkeys(ROLES, ok)


def staff(ok: int, **exceptions: int) -> dict[str, int]:
    return {**dict.fromkeys(ROLES, ok), **DENIED_TO_STRANGERS, **exceptions}


def supervisors(ok: int, **exceptions: int) -> dict[str, int]:
    return staff(ok, **{"agent": 403, "other_team_agent": 403, **exceptions})


def admins(ok: int) -> dict[str, int]:
    return supervisors(ok, supervisor=403)


def seeded(**names: str) -> Params:
    """Path parameters naming things made once, for reads and repeatable writes."""

    async def params(world: World) -> dict[str, Any]:
        return {param: world.ids[name] for param, name in names.items()}

    return params


def fresh(make: Callable[[World], Awaitable[int]], name: str = "id") -> Params:
    """A new thing for each call, for writes that change or use it up."""

    async def params(world: World) -> dict[str, Any]:
        return {name: await make(world)}

    return params


async def no_params(world: World) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # the route's pattern, as in web.app.api_endpoints()
    expect: dict[str, int]
    params: Params = no_params
    body: Body = None
    query: str = ""  # may use the params, as the path does
    rule: str = ""  # which of a view's own rules a second row of an endpoint tries
    own_session: bool = False  # signing out ends the session it is sent with

    def __str__(self) -> str:
        return f"{self.method} {self.path}{self.query and '?' + self.query} {self.rule}".strip()


async def _version_of(world: World, path: str, key: str) -> int:
    return int((await world.as_admin("GET", path))[key])


def versioned(make: Callable[[World], Awaitable[int]], path: str, key: str = "version") -> Params:
    """A new thing and the version a writer must send back to change it."""

    async def params(world: World) -> dict[str, Any]:
        thing_id = await make(world)
        return {"id": thing_id, "version": await _version_of(world, path.format(id=thing_id), key)}

    return params


async def in_review_article(world: World) -> dict[str, Any]:
    return await versioned(
        lambda w: w.fresh_article("in_review"), "/api/v1/kb/articles/{id}", "head_version"
    )(world)


async def restorable_article(world: World) -> dict[str, Any]:
    """An article with two versions, to bring the first back."""
    article = await versioned(World.fresh_article, "/api/v1/kb/articles/{id}", "head_version")(
        world
    )
    edited = await world.as_admin(
        "PATCH",
        f"/api/v1/kb/articles/{article['id']}",
        {"version": article["version"], "body": "Press twice."},
    )
    return {"id": article["id"], "version": edited["head_version"], "number": 1}


async def fresh_link_target(world: World) -> dict[str, Any]:
    return {"id": world.ids["article"], "ticket_id": await world.fresh_ticket()}


async def fresh_surveyable_ticket(world: World) -> dict[str, Any]:
    return {"ticket_id": await world.fresh_ticket(customer_id=await world.fresh_customer())}


async def sla_config_in_force(world: World) -> dict[str, Any]:
    return {"config": (await world.as_admin("GET", "/api/v1/sla/config"))["config"]}


WINDOW = "from=2020-01-01T00:00:00Z&to=2020-06-01T00:00:00Z"
NUMBER = "+49 30 1234 5678"

# fmt: off
ROWS = [
    # --- operations and sign-in ---------------------------------------------------------
    Row("GET", "/healthz", everyone(200)),
    Row("GET", "/readyz", everyone(200)),
    Row("GET", "/metrics", everyone(200)),
    Row("GET", "/api/v1/openapi.json", everyone(200)),
    Row("POST", "/api/v1/auth/login", everyone(200),
        body={"username": "alice", "password": "correct horse battery"}),
    Row("POST", "/api/v1/auth/logout", staff(204), own_session=True),
    Row("GET", "/api/v1/auth/me", staff(200)),
    # --- users and teams ----------------------------------------------------------------
    Row("GET", "/api/v1/users", admins(200)),
    Row("POST", "/api/v1/users", admins(201),
        body=lambda w, _: {"username": w.unique("new"), "display_name": "New",
                           "password": "long enough 1"}),
    Row("GET", "/api/v1/users/{id}", admins(200), seeded(id="agent")),
    Row("PATCH", "/api/v1/users/{id}", admins(200), fresh(World.fresh_user),
        body={"display_name": "Renamed"}),
    Row("DELETE", "/api/v1/users/{id}", admins(204), fresh(World.fresh_user)),
    Row("GET", "/api/v1/users/{id}/lockout", admins(200), seeded(id="agent")),
    Row("POST", "/api/v1/users/{id}/unlock", admins(200), seeded(id="agent")),
    Row("GET", "/api/v1/teams", staff(200)),
    Row("POST", "/api/v1/teams", admins(201), body=lambda w, _: {"name": w.unique("Team ")}),
    # --- customers ----------------------------------------------------------------------
    Row("GET", "/api/v1/customers", staff(200)),
    Row("POST", "/api/v1/customers", staff(201), body={"name": "Max Mustermann"}),
    Row("GET", "/api/v1/customers/{id}", staff(200), seeded(id="customer")),
    Row("PATCH", "/api/v1/customers/{id}", staff(200),
        versioned(World.fresh_customer, "/api/v1/customers/{id}"),
        body=lambda _, p: {"version": p["version"], "notes": "Prefers e-mail"}),
    Row("DELETE", "/api/v1/customers/{id}", supervisors(204), fresh(World.fresh_customer)),
    Row("GET", "/api/v1/customers/{id}/timeline", staff(200), seeded(id="customer")),
    Row("GET", "/api/v1/customers/{id}/audit", supervisors(200), seeded(id="customer")),
    Row("GET", "/api/v1/customers/{id}/export", admins(200), seeded(id="customer")),
    Row("POST", "/api/v1/customers/{id}/erase", admins(200), fresh(World.fresh_customer)),
    # --- calls and the PBX --------------------------------------------------------------
    # Supervisors and admins here have no phone of their own (409 "not an agent").
    Row("POST", "/api/v1/calls", staff(202, supervisor=409, admin=409),
        body={"number": NUMBER}),
    Row("POST", "/api/v1/calls", staff(202, other_team_agent=403),
        body=lambda w, _: {"number": NUMBER, "agent_id": w.ids["agent_phone"]},
        rule="ringing Alice's phone: hers, or a supervisor's choice"),
    Row("GET", "/api/v1/calls", staff(200)),
    Row("GET", "/api/v1/calls/{id}", staff(200), seeded(id="call")),
    Row("PUT", "/api/v1/agents/me/state", staff(202, supervisor=409, admin=409),
        body={"status": "paused", "reason": "lunch"}),
    Row("GET", "/api/v1/agents/me/state", staff(200, supervisor=409, admin=409)),
    Row("GET", "/api/v1/board", supervisors(200)),
    # --- tickets ------------------------------------------------------------------------
    Row("POST", "/api/v1/tickets", staff(201), body={"subject": "Cannot log in"}),
    Row("GET", "/api/v1/tickets", staff(200)),
    Row("GET", "/api/v1/tickets/{id}", staff(200), seeded(id="ticket")),
    Row("PATCH", "/api/v1/tickets/{id}", staff(200),
        versioned(World.fresh_ticket, "/api/v1/tickets/{id}"),
        body=lambda _, p: {"version": p["version"], "priority": "high"}),
    Row("POST", "/api/v1/tickets/{id}/messages", staff(201), seeded(id="ticket"),
        body={"kind": "internal_note", "body": "Called back."}),
    Row("GET", "/api/v1/tickets/{id}/messages", staff(200), seeded(id="ticket")),
    Row("GET", "/api/v1/tickets/{id}/history", staff(200), seeded(id="ticket")),
    Row("POST", "/api/v1/calls/{id}/ticket", staff(201), fresh(World.fresh_call), body={}),
    # --- SLA ----------------------------------------------------------------------------
    Row("GET", "/api/v1/sla/config", supervisors(200)),
    Row("PUT", "/api/v1/sla/config", admins(200), sla_config_in_force,
        body=lambda _, p: {"config": p["config"]}),
    Row("GET", "/api/v1/sla/config/history", admins(200)),
    Row("GET", "/api/v1/sla/board", supervisors(200)),
    Row("GET", "/api/v1/sla/reports", supervisors(200), query=WINDOW),
    # --- surveys ------------------------------------------------------------------------
    Row("GET", "/api/v1/surveys/answers.csv", supervisors(200), query=WINDOW),
    Row("GET", "/api/v1/surveys/reports", supervisors(200), query=WINDOW),
    Row("GET", "/api/v1/surveys/follow-ups", staff(200)),
    # Supervisors, or the lead of the team alerted (Tom for Support, Bob for Sales).
    Row("POST", "/api/v1/surveys/follow-ups/{id}/acknowledge",
        supervisors(200), fresh(World.fresh_follow_up), body={"note": "Called her back."}),
    Row("POST", "/api/v1/surveys/follow-ups/{id}/acknowledge",
        supervisors(200, other_team_agent=200), fresh(lambda w: w.fresh_follow_up("other_team")),
        body={"note": "Called her back."}, rule="by the alerted team's lead, an agent"),
    Row("GET", "/api/v1/surveys/templates", staff(200)),
    Row("POST", "/api/v1/surveys/templates", supervisors(201),
        body=lambda w, _: {"name": w.unique("Template "), "questions": [
            {"key": "csat", "kind": "csat", "required": True, "label": {"en": "How?"}}]}),
    Row("GET", "/api/v1/surveys/templates/{id}", staff(200), seeded(id="template")),
    Row("PATCH", "/api/v1/surveys/templates/{id}", supervisors(200),
        versioned(World.fresh_template, "/api/v1/surveys/templates/{id}", "current_version"),
        body=lambda w, p: {"version": p["version"], "name": w.unique("Renamed ")}),
    Row("GET", "/api/v1/surveys/opt-outs/{customer_id}", staff(200),
        seeded(customer_id="customer")),
    Row("PUT", "/api/v1/surveys/opt-outs/{customer_id}", staff(200),
        fresh(World.fresh_customer, "customer_id")),
    Row("DELETE", "/api/v1/surveys/opt-outs/{customer_id}", staff(200),
        fresh(World.fresh_customer, "customer_id")),
    Row("GET", "/api/v1/surveys", staff(200)),
    Row("POST", "/api/v1/surveys", staff(201), fresh_surveyable_ticket,
        body=lambda _, p: {"ticket_id": p["ticket_id"]}),
    Row("POST", "/api/v1/surveys", supervisors(201), fresh_surveyable_ticket,
        body=lambda _, p: {"ticket_id": p["ticket_id"], "ignore_period": True},
        rule="ignoring the survey period"),
    Row("GET", "/api/v1/surveys/{id}", staff(200), seeded(id="survey")),
    # --- knowledge base -----------------------------------------------------------------
    Row("GET", "/api/v1/kb/categories", staff(200)),
    Row("POST", "/api/v1/kb/categories", supervisors(201),
        body=lambda w, _: {"slug": w.unique("slug-"), "names": {"en": "Billing"}}),
    Row("PATCH", "/api/v1/kb/categories/{id}", supervisors(200), seeded(id="category"),
        body={"names": {"en": "Invoices"}}),
    Row("DELETE", "/api/v1/kb/categories/{id}", supervisors(204),
        fresh(World.fresh_category)),
    Row("GET", "/api/v1/kb/articles", staff(200)),
    Row("POST", "/api/v1/kb/articles", staff(201), body=lambda w, _: {"title": w.unique("Tip ")}),
    Row("GET", "/api/v1/kb/articles/{id}", staff(200), seeded(id="internal_article")),
    Row("PATCH", "/api/v1/kb/articles/{id}", staff(200),
        versioned(World.fresh_article, "/api/v1/kb/articles/{id}", "head_version"),
        body=lambda _, p: {"version": p["version"], "summary": "Short"}),
    Row("POST", "/api/v1/kb/articles/{id}/transitions", staff(200),
        versioned(World.fresh_article, "/api/v1/kb/articles/{id}", "head_version"),
        body=lambda _, p: {"to": "in_review", "version": p["version"]},
        rule="submitting for review"),
    Row("POST", "/api/v1/kb/articles/{id}/transitions", supervisors(200), in_review_article,
        body=lambda _, p: {"to": "published", "version": p["version"]},
        rule="publishing: reviewers only"),
    Row("POST", "/api/v1/kb/articles/{id}/translations", staff(201),
        fresh(World.fresh_article), body={"language": "zh", "title": "重置电话"}),
    Row("GET", "/api/v1/kb/articles/{id}/versions", staff(200), seeded(id="article")),
    Row("GET", "/api/v1/kb/articles/{id}/diff", staff(200), seeded(id="article"),
        query="from=1&to=1"),
    Row("POST", "/api/v1/kb/articles/{id}/versions/{number}/restore", staff(200),
        restorable_article, body=lambda _, p: {"version": p["version"]}),
    Row("GET", "/api/v1/kb/articles/{id}/workflow", staff(200), seeded(id="article")),
    Row("POST", "/api/v1/kb/articles/{id}/links", staff(201), fresh_link_target,
        body=lambda _, p: {"ticket_id": p["ticket_id"]}),
    Row("POST", "/api/v1/kb/articles/{id}/votes", staff(200), seeded(id="article"),
        body={"helpful": True}),
    Row("GET", "/api/v1/kb/search", staff(200), query="q=phone"),
    Row("POST", "/api/v1/kb/suggestions", staff(200), body={"subject": "phone broken"}),
    Row("GET", "/api/v1/kb/tickets/{id}/suggestions", staff(200), seeded(id="ticket")),
    Row("GET", "/api/v1/kb/tickets/{id}/links", staff(200), seeded(id="ticket")),
    Row("POST", "/api/v1/kb/tickets/{id}/article", staff(201),
        fresh(World.fresh_solved_ticket)),
    Row("GET", "/api/v1/kb/customers/{id}/suggestions", staff(200), seeded(id="customer")),
    Row("GET", "/api/v1/kb/review", supervisors(200)),
    Row("GET", "/api/v1/kb/public/categories", everyone(200)),
    Row("GET", "/api/v1/kb/public/search", everyone(200), query="q=phone"),
    Row("GET", "/api/v1/kb/public/articles/{id}", everyone(200), seeded(id="article")),
    Row("GET", "/api/v1/kb/public/articles/{id}", everyone(404), seeded(id="internal_article"),
        rule="an internal article is not public, whoever asks"),
]
# fmt: on


@pytest.fixture
async def world(
    database: Database, clock: FakeClock, mail_server: MailServer
) -> AsyncIterator[World]:
    simulator = PbxSimulator(secret=AMI_SECRET)
    await simulator.start()
    try:
        async with authorization_world(
            database, clock, mail_server, ami_port=simulator.port
        ) as world:
            yield world
    finally:
        await simulator.stop()


async def _try(world: World, row: Row, role: str) -> tuple[int, str]:
    params = await row.params(world)
    path = row.path.format(**params)
    if row.query:
        path += "?" + row.query.format(**params)
    body = row.body(world, params) if callable(row.body) else row.body
    headers = await world.session_of(role) if row.own_session else world.headers[role]
    return await world.request(
        row.method, path, headers=headers, body=dict(body) if body is not None else None
    )


def test_every_endpoint_has_a_row_in_the_matrix() -> None:
    endpoints = {(e.method, e.path) for e in api_endpoints()}
    rows = {(row.method, row.path) for row in ROWS}
    assert endpoints - rows == set(), "endpoints nobody tried: add their rows"
    assert rows - endpoints == set(), "rows for endpoints that no longer exist"
    assert all(set(row.expect) == set(ROLES) for row in ROWS)


async def test_each_caller_gets_exactly_what_the_policy_allows_on_every_endpoint(
    world: World,
) -> None:
    wrong = []
    for row in ROWS:
        for role in ROLES:
            status, text = await _try(world, row, role)
            if status != row.expect[role]:
                wrong.append(f"{role}: {row} -> {status}, not {row.expect[role]}: {text[:160]}")
    assert wrong == [], "\n".join(wrong)


async def test_a_browser_session_writes_only_with_its_csrf_token(world: World) -> None:
    """The session cookie alone is no credential for a write: another site could make
    the browser send it.  The refusal comes before the view, so any id will do."""
    token = _token(world.headers["admin"])
    writes = {
        (row.method, re.sub(r"{\w+}", "1", row.path))
        for row in ROWS
        if row.method not in ("GET", "HEAD") and row.expect["anonymous"] == 401
    }
    wrong = []
    for method, path in sorted(writes):
        cookie = {"Cookie": f"desk_session={token}; desk_csrf=abc"}
        status, text = await world.request(method, path, headers=cookie, body={})
        if status != 403 or "csrf_failed" not in text:
            wrong.append(f"{method} {path} -> {status}: {text[:120]}")
    signed = {"Cookie": f"desk_session={token}; desk_csrf=abc", "X-CSRF-Token": "abc"}
    status, _ = await world.request(
        "POST", "/api/v1/customers", headers=signed, body={"name": "Via the browser"}
    )
    assert (wrong, status) == ([], 201), "\n".join(wrong)


async def test_an_admin_cannot_take_away_their_own_admin_rights(world: World) -> None:
    """As with deleting oneself: the last admin must not lock everyone out."""
    me = f"/api/v1/users/{world.ids['admin']}"
    answers = [
        (await world.request("PATCH", me, headers=world.headers["admin"], body=change))[0]
        for change in ({"role": "supervisor"}, {"active": False}, {"display_name": "Ada L."})
    ]
    assert answers == [422, 422, 200]


# --- socket.io ------------------------------------------------------------------------

# The rooms each caller's socket is put in at connect, and so the events it can hear;
# None: the connection is refused.
ROOMS = {
    "anonymous": None,
    "link_holder": None,
    "other_team_agent": {
        "user:{other_team_agent}",
        "agent:{other_team_agent_phone}",
        "team:{other_team}",
    },
    "agent": {"user:{agent}", "agent:{agent_phone}", "team:{team}"},
    "supervisor": {"user:{supervisor}", "supervisors"},
    "admin": {"user:{admin}", "supervisors"},
}


@dataclass
class Socket:
    client: socketio.AsyncClient
    heard: list[tuple[str, Any]] = field(default_factory=list)

    def events(self, name: str) -> list[Any]:
        return [data for event, data in self.heard if event == name]


@asynccontextmanager
async def connected(world: World, **how: Any) -> AsyncIterator[Socket]:
    socket = Socket(socketio.AsyncClient(reconnection=False))
    socket.client.on("*", lambda event, data: socket.heard.append((event, data)))
    await socket.client.connect(world.url, transports=["websocket"], wait_timeout=5, **how)
    try:
        yield socket
    finally:
        await socket.client.disconnect()


def _token(headers: dict[str, str]) -> str | None:
    return headers["Authorization"].removeprefix("Bearer ") if headers else None


async def _refused(world: World, **how: Any) -> bool:
    try:
        async with connected(world, **how):
            return False
    except socketio.exceptions.ConnectionError:
        return True


async def _until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_each_caller_hears_exactly_the_rooms_the_server_puts_it_in(world: World) -> None:
    rooms = {
        role: None if names is None else {name.format(**world.ids) for name in names}
        for role, names in ROOMS.items()
    }
    every_room = sorted(set().union(*(names for names in rooms.values() if names)))
    notifier = world.desk.client.app[NOTIFIER]
    for role, expected in rooms.items():
        token = _token(world.headers[role])
        if expected is None:
            assert await _refused(world, auth={"token": token} if token else None), role
            if token is not None:  # nor where a browser's session cookie would be
                cookie = {"Cookie": f"desk_session={token}"}
                assert await _refused(world, headers=cookie), role
            continue
        async with connected(world, auth={"token": token}) as socket:
            for room in every_room:
                await notifier.emit("probe", {"room": room}, rooms=[room])
            await notifier.emit("probe_end", {}, rooms=[f"user:{world.ids[role]}"])
            await _until(lambda: bool(socket.events("probe_end")))
            heard = {probe["room"] for probe in socket.events("probe")}
        assert heard == expected, role


async def test_a_socket_with_the_session_cookie_opens_only_from_the_desks_own_pages(
    world: World,
) -> None:
    """Another site's page could make a signed-in agent's browser send the cookie."""
    cookie = f"desk_session={_token(world.headers['agent'])}"
    own = {"Cookie": cookie, "Origin": world.url.rstrip("/")}
    foreign = {"Cookie": cookie, "Origin": "https://desk.example.evil"}
    async with connected(world, headers=own) as socket:
        assert socket.client.connected
    assert await _refused(world, headers=foreign)


async def test_a_client_cannot_join_a_room_by_asking(world: World) -> None:
    notifier = world.desk.client.app[NOTIFIER]
    others = [f"team:{world.ids['other_team']}", "supervisors", f"user:{world.ids['admin']}"]
    async with connected(world, auth={"token": _token(world.headers["agent"])}) as alice:
        for event in ("join", "enter_room", "join_room", "subscribe"):
            for room in others:
                await alice.client.emit(event, {"room": room})
                await alice.client.emit(event, room)
        await asyncio.sleep(0.1)
        for room in others:
            await notifier.emit("probe", {"room": room}, rooms=[room])
        await notifier.emit("probe_end", {}, rooms=[f"user:{world.ids['agent']}"])
        await _until(lambda: bool(alice.events("probe_end")))
    assert alice.events("probe") == []


async def test_a_team_tickets_events_reach_its_team_and_supervisors_not_another_team(
    world: World,
) -> None:
    sockets = {}
    async with (
        connected(world, auth={"token": _token(world.headers["agent"])}) as sockets["agent"],
        connected(world, auth={"token": _token(world.headers["other_team_agent"])}) as sockets[
            "other_team_agent"
        ],
        connected(world, auth={"token": _token(world.headers["supervisor"])}) as sockets[
            "supervisor"
        ],
    ):
        # Support's ticket, nobody's yet: the team hears of it, and the supervisors.
        body = {"subject": "Headset broken", "team_id": world.ids["team"]}
        await world.as_admin("POST", "/api/v1/tickets", body)
        await _until(lambda: bool(sockets["agent"].events("ticket_opened")))
        await _until(lambda: bool(sockets["supervisor"].events("ticket_opened")))
        await asyncio.sleep(0.1)
    assert sockets["other_team_agent"].events("ticket_opened") == []


async def test_presence_on_a_ticket_is_for_whoever_may_read_the_ticket(world: World) -> None:
    """Presence follows GET /api/v1/tickets/{id}: another team's agent may read (and so
    open) the ticket, and is then seen by the others; nobody else hears of it."""
    [read] = [row for row in ROWS if (row.method, row.path) == ("GET", "/api/v1/tickets/{id}")]
    ticket_id = world.ids["ticket"]
    async with (
        connected(world, auth={"token": _token(world.headers["agent"])}) as alice,
        connected(world, auth={"token": _token(world.headers["other_team_agent"])}) as bob,
        connected(world, auth={"token": _token(world.headers["supervisor"])}) as tom,
    ):
        answers = {
            role: await socket.client.call("ticket_open", {"ticket_id": ticket_id}, timeout=5)
            for role, socket in (("agent", alice), ("other_team_agent", bob))
        }
        await _until(lambda: len(alice.events("ticket_presence")) >= 2)
        await asyncio.sleep(0.1)
    for role, answer in answers.items():
        assert (answer == {"ok": True}) == (read.expect[role] == 200), role
    viewers = {viewer["user_id"] for viewer in alice.events("ticket_presence")[-1]["viewers"]}
    assert viewers == {world.ids["agent"], world.ids["other_team_agent"]}
    assert tom.events("ticket_presence") == []


async def test_a_survey_link_opens_its_survey_page_and_nothing_else(world: World) -> None:
    """The link holder's token is a real credential, for one page."""
    status, _ = await world.request("GET", f"/s/{world.survey_token}", headers={})
    assert status == 200
    # ... and in the API it is worth what no credential is (the table's rows say so).
    assert all(row.expect["link_holder"] == row.expect["anonymous"] for row in ROWS)
