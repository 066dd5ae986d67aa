"""Schemathesis against the running app's own /api/v1/openapi.json: whatever a client
sends, as an admin or anonymously, the answer is never a 500 and is what the document
promises (a documented status, its content type, its body shape; every error the one
documented Error shape).

The app runs on a real port with a PBX (the simulator), so click-to-call and the
wallboard answer as in production.  A few examples per operation, on SQLite, keep the
normal run short; DESK_FUZZ_EXAMPLES=200 (say) searches deeper, and on PostgreSQL too
when DESK_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import requests
import schemathesis
import socketio
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select, text

from cti.simulator import PbxSimulator
from desk.auth import start_session
from desk.calls import CallStart, log_call_started
from desk.db import create_engine, session_factory
from desk.models import Base, CallDirection, Role, User
from desk.settings import load_settings
from desk.users import AgentIn, TeamDraft, UserDraft, create_team, create_user
from tests.conftest import POSTGRES_URL, TEST_SECRET
from tests.desk.mail_support import free_port
from tests.web.conftest import Desk
from tests.web.live_server import CleanupContext, LiveServer
from web.app import api_endpoints

DEEP = "DESK_FUZZ_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("DESK_FUZZ_EXAMPLES", "10"))
# The normal run fuzzes SQLite; a deeper run fuzzes PostgreSQL too when it is there, whose
# column types refuse more (a 64-bit number where a 32-bit INTEGER is).
FUZZ_BACKENDS = ["sqlite", "postgres"] if DEEP and POSTGRES_URL else ["sqlite"]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
PASSWORD = "correct horse battery"
AMI_SECRET = "fuzz-ami-secret"
LOGOUT = "POST /api/v1/auth/logout"


@dataclass
class FuzzedDesk:
    server: LiveServer
    database_url: str
    admin_token: str

    @property
    def url(self) -> str:
        return self.server.url

    def fresh_admin_token(self) -> str:
        """A session of its own, for fuzzing sign-out without ending the fuzzer's (made
        in the database: signing in that often would be rate-limited)."""
        return asyncio.run(_admin_session(self.database_url))


async def _admin_session(url: str) -> str:
    engine = create_engine(url)
    async with session_factory(engine)() as session:
        admin = await session.scalar(select(User).where(User.username == "admin"))
        assert admin is not None
        token = await start_session(
            session, admin, now=datetime.now(UTC), lifetime=timedelta(days=1)
        )
        await session.commit()
    await engine.dispose()
    return token


async def _seed_people(url: str) -> str:
    """An admin (whose session the fuzzer uses), a supervisor and an agent in a team,
    and a call in the log; the rest is made through the API below."""
    engine = create_engine(url)
    sessions = session_factory(engine)
    now = datetime.now(UTC)
    async with sessions() as session:
        team = await create_team(session, TeamDraft(name="Support"), now=now)
        await create_user(
            session,
            UserDraft(username="admin", display_name="Ada", password=PASSWORD, role=Role.ADMIN),
            now=now,
        )
        await create_user(
            session,
            UserDraft(username="sam", display_name="Sam", password=PASSWORD, role=Role.SUPERVISOR),
            now=now,
        )
        await create_user(
            session,
            UserDraft(
                username="alice",
                display_name="Alice",
                password=PASSWORD,
                agent=AgentIn(extension="1001", team_id=team.id),
            ),
            now=now,
        )
        await log_call_started(
            session,
            CallStart(
                call_id="1700000000.1",
                direction=CallDirection.INBOUND,
                caller_raw="+49 30 1234567",
                caller_name="Erika",
                queue="support",
                started_at=now - timedelta(minutes=5),
            ),
            region="DE",
        )
        await session.commit()
    await engine.dispose()
    return await _admin_session(url)


def _seed_through_the_api(url: str, token: str) -> None:
    """One of each thing, so ids 1 and 2 reach real rows and not only 404s."""
    auth = {"Authorization": f"Bearer {token}"}
    posts: list[tuple[str, dict[str, object]]] = [
        ("/api/v1/customers", {"name": "Erika Mustermann", "phones": [{"number": "+4930123"}]}),
        ("/api/v1/tickets", {"subject": "Invoice twice", "customer_id": 1, "team_id": 1}),
        ("/api/v1/kb/categories", {"slug": "billing", "names": {"en": "Billing"}}),
        (
            "/api/v1/kb/articles",
            {"title": "Refunds", "body": "How refunds work.", "audience": "public"},
        ),
        (
            "/api/v1/surveys/templates",
            {
                "name": "After a ticket",
                "questions": [
                    {"key": "csat", "kind": "csat", "required": True, "label": {"en": "How?"}}
                ],
            },
        ),
    ]
    for path, body in posts:
        response = requests.post(f"{url}{path}", json=body, headers=auth, timeout=10)
        assert response.status_code == 201, (path, response.text)


def _running(simulator: PbxSimulator) -> CleanupContext:
    """The PBX simulator in the app's loop, so click-to-call, pauses and the wallboard
    answer as with a real PBX instead of 503 "no PBX link"."""

    async def context(_app: web.Application) -> AsyncIterator[None]:
        await simulator.start()
        yield
        await simulator.stop()

    return context


async def _emptied(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture(scope="module", params=FUZZ_BACKENDS)
def fuzzed_desk(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzedDesk]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_migrated")
        asyncio.run(_emptied(url))
    else:
        path = tmp_path_factory.mktemp("fuzz") / "desk.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite+aiosqlite:///{path}"
    token = asyncio.run(_seed_people(url))
    ami_port = free_port()
    settings = load_settings(
        environ={},
        overrides={
            "mode": "test",
            "secret_key": TEST_SECRET,
            "database_url": url,
            "phone_region": "DE",
            "ami_host": "127.0.0.1",
            "ami_port": ami_port,
            "ami_secret": AMI_SECRET,
        },
    )
    simulator = PbxSimulator(port=ami_port, secret=AMI_SECRET)
    server = LiveServer(settings, before=[_running(simulator)]).start()
    _seed_through_the_api(server.url, token)
    yield FuzzedDesk(server, url, token)
    server.stop()


@pytest.fixture(scope="module")
def api_schema(fuzzed_desk: FuzzedDesk) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzzed_desk.url}/api/v1/openapi.json")


# From the route table, so each operation is a test of its own and a new endpoint is
# fuzzed without a line here.
OPERATIONS = [(endpoint.method, endpoint.path) for endpoint in api_endpoints()]
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    # The normal run is the same every time; a deeper run explores anew.
    derandomize=not DEEP,
    database=None,
)


def _fuzz(
    desk: FuzzedDesk, schema: schemathesis.BaseSchema, method: str, path: str, who: str
) -> None:
    operation = schema[path][method]
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @FUZZ_SETTINGS
    @given(case=cases)
    def check(case: schemathesis.Case) -> None:
        headers = {}
        if who == "admin":
            token = desk.fresh_admin_token() if case.operation.label == LOGOUT else desk.admin_token
            headers["Authorization"] = f"Bearer {token}"
        mark = desk.server.unhandled_count
        response = case.call(base_url=desk.url, headers=headers, timeout=30)
        try:
            case.validate_response(response, checks=CHECKS)
        except Exception as exc:
            tracebacks = desk.server.unhandled_since(mark)
            if tracebacks:
                exc.add_note("the server logged:\n" + "\n".join(tracebacks))
            raise

    check()


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_an_admin_gets_no_server_error_and_only_documented_answers(
    fuzzed_desk: FuzzedDesk, api_schema: schemathesis.BaseSchema, method: str, path: str
) -> None:
    _fuzz(fuzzed_desk, api_schema, method, path, "admin")


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_an_anonymous_caller_gets_no_server_error_and_only_documented_answers(
    fuzzed_desk: FuzzedDesk, api_schema: schemathesis.BaseSchema, method: str, path: str
) -> None:
    _fuzz(fuzzed_desk, api_schema, method, path, "anonymous")


# --- socket.io: what browsers send ----------------------------------------------------

ODD_PRESENCE_MESSAGES: list[object] = [
    None,
    7,
    "7",
    [7],
    {},
    {"ticket_id": None},
    {"ticket_id": "7"},
    {"ticket_id": 7.5},
    {"ticket_id": True},
    {"ticket_id": 0},
    {"ticket_id": -(2**31) - 1},
    {"ticket_id": 2**31 - 1},
    {"ticket_id": 2**31},
    {"ticket_id": 2**63},
    {"ticket_id": 2**64 + 1},
    {"ticket_id": {"nested": [1, {"deeper": 2}]}},
    {"ticket_id": 1, "composing": "yes"},
    {"ticket_id": 1, "room": "supervisors"},
]


@pytest.mark.parametrize("event", ["ticket_open", "ticket_close"])
async def test_every_presence_message_gets_an_answer_whatever_it_holds(
    desk: Desk, event: str
) -> None:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(
        desk.url, auth={"token": desk.tokens["alice"]}, transports=["websocket"], wait_timeout=5
    )
    try:
        answers = [await client.call(event, data, timeout=5) for data in ODD_PRESENCE_MESSAGES]
    finally:
        await client.disconnect()
    for data, answer in zip(ODD_PRESENCE_MESSAGES, answers, strict=True):
        assert answer == {"ok": True} or (
            set(answer) == {"error"} and answer["error"]["code"] in ("invalid", "not_found")
        ), (data, answer)


# --- what the fuzzer found, pinned down on both backends ------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/tickets/2147483648",  # one past PostgreSQL's INTEGER
        "/api/v1/customers/99999999999",
        "/api/v1/tickets/%C2%B2",  # "²": a digit to str.isdigit(), not to int()
    ],
)
async def test_an_id_no_row_can_have_is_simply_not_found(desk: Desk, path: str) -> None:
    response = await desk.client.get(path, headers=desk.auth("admin"))
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


async def test_a_number_too_big_for_the_database_is_invalid_input_naming_its_field(
    desk: Desk,
) -> None:
    body = {"subject": "Printer", "customer_id": 2**40}
    created = await desk.client.post("/api/v1/tickets", json=body, headers=desk.auth("alice"))
    listed = await desk.client.get(
        "/api/v1/tickets", params={"assignee_id": str(2**63)}, headers=desk.auth("alice")
    )
    assert (created.status, listed.status) == (422, 422)
    assert set((await created.json())["error"]["fields"]) == {"customer_id"}
    assert set((await listed.json())["error"]["fields"]) == {"assignee_id"}


async def test_text_with_a_nul_character_is_invalid_input_naming_its_field(desk: Desk) -> None:
    """PostgreSQL's text cannot hold it; the answer is the same on both backends."""
    body = {"subject": "Printer\x00", "description": "fine"}
    created = await desk.client.post("/api/v1/tickets", json=body, headers=desk.auth("alice"))
    searched = await desk.client.get(
        "/api/v1/customers", params={"q": "Erika\x00"}, headers=desk.auth("alice")
    )
    signed_in = await desk.client.post(
        "/api/v1/auth/login", json={"username": "alice\x00", "password": "x"}
    )
    assert (created.status, searched.status, signed_in.status) == (422, 422, 422)
    assert set((await created.json())["error"]["fields"]) == {"subject"}
    assert set((await searched.json())["error"]["fields"]) == {"q"}


async def test_a_moment_outside_the_calendar_in_utc_is_invalid_input(desk: Desk) -> None:
    window = {"from": "0001-01-01T00:00:00+05:00", "to": "0001-06-01T00:00:00Z"}
    response = await desk.client.get("/api/v1/sla/reports", params=window, headers=desk.auth("sam"))
    assert response.status == 422
    assert set((await response.json())["error"]["fields"]) == {"from"}


async def test_a_team_led_by_nobody_who_exists_is_invalid_input(desk: Desk) -> None:
    response = await desk.client.post(
        "/api/v1/teams", json={"name": "Ghosts", "lead_user_id": 999}, headers=desk.auth("admin")
    )
    assert response.status == 422
    assert (await response.json())["error"]["fields"] == {"lead_user_id": "not found"}


async def test_every_error_the_document_promises_is_the_one_error_schema(desk: Desk) -> None:
    document = await (await desk.client.get("/api/v1/openapi.json")).json()
    error = {"$ref": "#/components/schemas/ErrorOut"}
    schemas = [
        answer["content"]["application/json"]["schema"]
        for operations in document["paths"].values()
        for operation in operations.values()
        for status, answer in operation["responses"].items()
        if int(status) >= 400
    ]
    assert schemas and all(schema == error for schema in schemas)
    assert document["components"]["schemas"]["ErrorOut"]["additionalProperties"] is False


async def test_a_repeated_call_that_finds_what_the_first_made_is_documented(
    desk: Desk,
) -> None:
    document = await (await desk.client.get("/api/v1/openapi.json")).json()
    from_call = document["paths"]["/api/v1/calls/{id}/ticket"]["post"]["responses"]
    assert {"200", "201"} <= set(from_call)
