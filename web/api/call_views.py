"""Calls: the call log, click-to-call, the agent's own state, the wallboard."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from cti.link import PbxActionFailed
from desk.calls import get_call, list_calls
from desk.models import Agent, Call, Role, User
from desk.phones import read_number
from desk.users import get_user
from web.api.endpoints import (
    STAFF,
    SUPERVISORS,
    Endpoint,
    current_user,
    path_id,
    read_body,
    read_query,
)
from web.api.errors import ApiError
from web.state import SESSIONS, SETTINGS, SWITCHBOARD
from web.switchboard import PbxUnavailable, Switchboard


class ClickToCall(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    number: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    agent_id: int | None = Field(
        None, description="Whose phone rings first; supervisors only. Default: yours."
    )


class ClickToCallOut(BaseModel):
    action_id: str
    number_e164: str
    agent_id: int
    status: Literal["queued"]


class AgentStateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    status: Literal["ready", "paused"]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=80)] = ""


class AgentStateOut(BaseModel):
    interface: str
    agent_id: int | None
    status: str
    since: datetime
    pause_reason: str
    missed_rings: int
    queues: list[str]


class CallOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    call_id: str
    direction: str
    caller_raw: str
    caller_e164: str | None
    caller_name: str
    customer_id: int | None
    queue: str | None
    agent_id: int | None
    agents: list[int]
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    wait_seconds: float | None
    talk_seconds: float | None
    outcome: str | None


class CallPageOut(BaseModel):
    items: list[CallOut]
    total: int


class CallQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: int | None = None
    agent_id: int | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


class BoardOut(BaseModel):
    at: datetime
    link: dict[str, Any]
    queues: list[dict[str, Any]]
    agents: list[dict[str, Any]]


def _pbx(request: web.Request) -> Switchboard:
    pbx = request.app.get(SWITCHBOARD)
    if pbx is None:
        raise ApiError(503, "no_pbx_link", "no PBX link is configured (set DESK_AMI_HOST)")
    return pbx


@contextmanager
def _pbx_answers() -> Iterator[None]:
    """The PBX refused (502), or no process holds the link to ask it (503)."""
    try:
        yield
    except PbxActionFailed as exc:
        raise ApiError(502, "pbx_refused", str(exc)) from None
    except PbxUnavailable as exc:
        raise ApiError(503, "pbx_unavailable", str(exc)) from None


def _own_agent(user: User) -> Agent:
    if user.agent is None:
        raise ApiError(409, "not_an_agent", "you have no phone: ask an admin for an extension")
    return user.agent


async def click_to_call(request: web.Request) -> web.Response:
    body = await read_body(request, ClickToCall)
    user = current_user(request)
    pbx = _pbx(request)
    number = read_number(body.number, request.app[SETTINGS].phone_region)
    if number.e164 is None:
        raise ApiError(
            422, "invalid_input", "not a number we can dial", {"number": number.status.value}
        )
    if body.agent_id is not None and body.agent_id != (user.agent.id if user.agent else None):
        if Role(user.role) not in SUPERVISORS:
            raise ApiError(403, "forbidden", "only supervisors may ring another agent's phone")
        async with request.app[SESSIONS]() as session:
            agent = await session.get(Agent, body.agent_id)
            if agent is None:
                raise ApiError(422, "invalid_input", "no such agent", {"agent_id": "not found"})
            caller = await get_user(session, agent.user_id)
    else:
        agent, caller = _own_agent(user), user
    with _pbx_answers():
        action_id = await pbx.originate(
            agent.interface, number.e164, caller_id=f'"{caller.display_name}" <{agent.extension}>'
        )
    out = ClickToCallOut(
        action_id=action_id, number_e164=number.e164, agent_id=agent.id, status="queued"
    )
    return web.json_response(out.model_dump(), status=202)


async def set_my_state(request: web.Request) -> web.Response:
    body = await read_body(request, AgentStateIn)
    agent = _own_agent(current_user(request))
    pbx = _pbx(request)
    with _pbx_answers():
        await pbx.pause(agent.interface, paused=body.status == "paused", reason=body.reason)
    # The PBX confirms with QueueMemberPause; the new state arrives as an agent_state event.
    return web.json_response({"requested": body.status, "reason": body.reason}, status=202)


async def my_state(request: web.Request) -> web.Response:
    agent = _own_agent(current_user(request))
    pbx = _pbx(request)
    with _pbx_answers():
        state = await pbx.agent_state(agent.interface)
    if state is None:
        raise ApiError(404, "not_found", "the PBX has not reported this agent yet")
    return web.json_response(AgentStateOut.model_validate(state).model_dump(mode="json"))


async def board(request: web.Request) -> web.Response:
    pbx = _pbx(request)
    with _pbx_answers():
        now = await pbx.board()
    return web.json_response(BoardOut.model_validate(now).model_dump(mode="json"))


async def calls_index(request: web.Request) -> web.Response:
    query = read_query(request, CallQuery)
    async with request.app[SESSIONS]() as session:
        calls, total = await list_calls(
            session,
            customer_id=query.customer_id,
            agent_id=query.agent_id,
            limit=query.limit,
            offset=query.offset,
        )
        out = CallPageOut(items=[CallOut.model_validate(c) for c in calls], total=total)
    return web.json_response(out.model_dump(mode="json"))


async def call_read(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        call: Call = await get_call(session, path_id(request))
        out = CallOut.model_validate(call)
    return web.json_response(out.model_dump(mode="json"))


ENDPOINTS = [
    Endpoint(
        "POST",
        "/api/v1/calls",
        click_to_call,
        "Click-to-call: ring the agent's phone, then dial the number (result arrives as "
        "the socket.io event originate_result)",
        "calls",
        STAFF,
        body=ClickToCall,
        response=ClickToCallOut,
        status=202,
        errors=(409, 502, 503),
    ),
    Endpoint(
        "GET",
        "/api/v1/calls",
        calls_index,
        "The call log, newest first",
        "calls",
        STAFF,
        query=CallQuery,
        response=CallPageOut,
    ),
    Endpoint(
        "GET",
        "/api/v1/calls/{id}",
        call_read,
        "One call of the log",
        "calls",
        STAFF,
        response=CallOut,
    ),
    Endpoint(
        "PUT",
        "/api/v1/agents/me/state",
        set_my_state,
        "Pause (with a reason) or get ready: sent to the PBX as QueuePause",
        "agents",
        STAFF,
        body=AgentStateIn,
        status=202,
        errors=(409, 502, 503),
    ),
    Endpoint(
        "GET",
        "/api/v1/agents/me/state",
        my_state,
        "Your state as the PBX reports it",
        "agents",
        STAFF,
        response=AgentStateOut,
        errors=(404, 409, 503),
    ),
    Endpoint(
        "GET",
        "/api/v1/board",
        board,
        "The wallboard: queues and agents now",
        "board",
        SUPERVISORS,
        response=BoardOut,
        errors=(503,),
    ),
]
