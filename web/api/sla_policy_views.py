"""SLA calendars, policies and escalation: read by supervisors, replaced by admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from routing.sla_admin import Revision, latest_revision, revisions, save_revision
from web.api.endpoints import ADMINS, SUPERVISORS, Endpoint, current_user, read_body
from web.state import CLOCK, READS, SESSIONS, SLA_SOURCE


class SlaConfigIn(BaseModel):
    """The whole SLA document, shaped like config/sla.toml's [sla] tables."""

    model_config = ConfigDict(extra="forbid", strict=True)

    calendars: dict[str, dict[str, Any]]
    policies: Annotated[list[dict[str, Any]], Field(max_length=500)]
    escalation: dict[str, Any] = {}


class SlaConfigChange(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    config: SlaConfigIn
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


class SlaConfigOut(BaseModel):
    revision: int | None = Field(description="null: the set-up comes from config/sla.toml")
    in_force: bool = Field(description="whether this process runs this revision now")
    changed_at: datetime | None
    changed_by: int | None
    note: str
    config: dict[str, Any]


class SlaHistoryOut(BaseModel):
    items: list[SlaConfigOut]


def _out(revision: Revision, in_force: int | None) -> SlaConfigOut:
    return SlaConfigOut(
        revision=revision.number,
        in_force=revision.number == in_force,
        changed_at=revision.changed_at,
        changed_by=revision.changed_by,
        note=revision.note,
        config=revision.config,
    )


async def sla_config(request: web.Request) -> web.Response:
    source = request.app[SLA_SOURCE]
    async with request.app[READS]() as session:
        current = source.current(await latest_revision(session))
    return web.json_response(_out(current, source.revision).model_dump(mode="json"))


async def sla_config_replace(request: web.Request) -> web.Response:
    change = await read_body(request, SlaConfigChange)
    source = request.app[SLA_SOURCE]
    async with request.app[SESSIONS]() as session:
        row, setup = await save_revision(
            session,
            change.config.model_dump(),
            actor_id=current_user(request).id,
            note=change.note,
            now=request.app[CLOCK].now(),
        )
        await session.commit()
    source.use(setup, row.id)
    out = _out(source.current(row), source.revision)
    return web.json_response(out.model_dump(mode="json"))


async def sla_config_history(request: web.Request) -> web.Response:
    source = request.app[SLA_SOURCE]
    async with request.app[READS]() as session:
        rows = await revisions(session)
    items = [_out(source.current(row), source.revision) for row in rows]
    return web.json_response(SlaHistoryOut(items=items).model_dump(mode="json"))


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v1/sla/config",
        sla_config,
        "The SLA calendars, policies and escalation in force",
        "sla",
        SUPERVISORS,
        response=SlaConfigOut,
    ),
    Endpoint(
        "PUT",
        "/api/v1/sla/config",
        sla_config_replace,
        "Replace the SLA set-up (checked like config/sla.toml; applies from each "
        "ticket's next change, stored due times stay)",
        "sla",
        ADMINS,
        body=SlaConfigChange,
        response=SlaConfigOut,
    ),
    Endpoint(
        "GET",
        "/api/v1/sla/config/history",
        sla_config_history,
        "Earlier SLA set-ups saved through the API, newest first",
        "sla",
        ADMINS,
        response=SlaHistoryOut,
    ),
]
