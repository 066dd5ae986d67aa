"""Users, their agent identity and teams: administrators only."""

from __future__ import annotations

from aiohttp import web

from desk.errors import InvalidInput, NotFound
from desk.models import Role
from desk.users import (
    TeamDraft,
    UserDraft,
    UserPatch,
    create_team,
    create_user,
    delete_user,
    get_user,
    list_teams,
    list_users,
    update_user,
)
from web.api.endpoints import (
    ADMINS,
    STAFF,
    Endpoint,
    current_user,
    path_id,
    read_body,
    read_query,
)
from web.api.schemas import (
    PageQuery,
    TeamListOut,
    TeamOut,
    UserOut,
    UserPageOut,
    user_out,
)
from web.state import CLOCK, SESSIONS


async def users_index(request: web.Request) -> web.Response:
    query = read_query(request, PageQuery)
    async with request.app[SESSIONS]() as session:
        users, total = await list_users(session, limit=query.limit, offset=query.offset)
        out = UserPageOut(items=[user_out(u) for u in users], total=total)
    return web.json_response(out.model_dump(mode="json"))


async def user_create(request: web.Request) -> web.Response:
    draft = await read_body(request, UserDraft)
    async with request.app[SESSIONS]() as session:
        user = await create_user(session, draft, now=request.app[CLOCK].now())
        await session.commit()
        await session.refresh(user)
        out = user_out(user)
    return web.json_response(out.model_dump(mode="json"), status=201)


async def user_read(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        out = user_out(await get_user(session, path_id(request)))
    return web.json_response(out.model_dump(mode="json"))


async def user_update(request: web.Request) -> web.Response:
    user_id = path_id(request)
    patch = await read_body(request, UserPatch)
    if user_id == current_user(request).id and (
        patch.active is False or patch.role not in (None, Role.ADMIN)
    ):
        # As with deleting yourself: the last admin must not lock everyone out.
        raise InvalidInput(
            "you cannot take away your own admin rights", fields={"id": "that is you"}
        )
    async with request.app[SESSIONS]() as session:
        user = await update_user(session, user_id, patch, now=request.app[CLOCK].now())
        await session.commit()
        await session.refresh(user)
        out = user_out(user)
    return web.json_response(out.model_dump(mode="json"))


async def user_delete(request: web.Request) -> web.Response:
    user_id = path_id(request)
    if user_id == current_user(request).id:
        raise InvalidInput("you cannot delete yourself", fields={"id": "that is you"})
    async with request.app[SESSIONS]() as session:
        await delete_user(session, user_id)
        await session.commit()
    return web.Response(status=204)


async def teams_index(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        out = TeamListOut(items=[TeamOut.model_validate(t) for t in await list_teams(session)])
    return web.json_response(out.model_dump(mode="json"))


async def team_create(request: web.Request) -> web.Response:
    draft = await read_body(request, TeamDraft)
    async with request.app[SESSIONS]() as session:
        try:
            team = await create_team(session, draft, now=request.app[CLOCK].now())
        except NotFound:
            # A body naming a missing record is invalid input, as for tickets: 404 is
            # for the path.
            raise InvalidInput(
                "the team's lead does not exist", fields={"lead_user_id": "not found"}
            ) from None
        await session.commit()
        out = TeamOut.model_validate(team)
    return web.json_response(out.model_dump(mode="json"), status=201)


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v1/users",
        users_index,
        "List users",
        "users",
        ADMINS,
        query=PageQuery,
        response=UserPageOut,
    ),
    Endpoint(
        "POST",
        "/api/v1/users",
        user_create,
        "Create a user (with an agent's PBX identity when given)",
        "users",
        ADMINS,
        body=UserDraft,
        response=UserOut,
        status=201,
        errors=(409,),
    ),
    Endpoint("GET", "/api/v1/users/{id}", user_read, "One user", "users", ADMINS, response=UserOut),
    Endpoint(
        "PATCH",
        "/api/v1/users/{id}",
        user_update,
        "Change a user",
        "users",
        ADMINS,
        body=UserPatch,
        response=UserOut,
        errors=(409,),
    ),
    Endpoint(
        "DELETE",
        "/api/v1/users/{id}",
        user_delete,
        "Delete a user (not yourself: 422)",
        "users",
        ADMINS,
        status=204,
        errors=(422,),
    ),
    Endpoint(
        "GET", "/api/v1/teams", teams_index, "List teams", "users", STAFF, response=TeamListOut
    ),
    Endpoint(
        "POST",
        "/api/v1/teams",
        team_create,
        "Create a team",
        "users",
        ADMINS,
        body=TeamDraft,
        response=TeamOut,
        status=201,
        errors=(409,),
    ),
]
