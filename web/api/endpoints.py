"""The API's route table: one declaration per endpoint drives routing, access
control, request validation and the OpenAPI document, so they cannot drift."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from desk.events import UnitOfWork
from desk.models import Role, User
from web.api.errors import ApiError, is_malformed_json, validation_fields
from web.state import BUS, SESSIONS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)

STAFF = frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN})
SUPERVISORS = frozenset({Role.SUPERVISOR, Role.ADMIN})
ADMINS = frozenset({Role.ADMIN})
PUBLIC: frozenset[Role] = frozenset()

USER_KEY = web.RequestKey("user", User)
CSRF_FAILED_KEY = web.RequestKey("csrf_failed", bool)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    roles: frozenset[Role]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = field(default=())

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)


def guarded(endpoint: Endpoint) -> Handler:
    """Wrap a view so it runs only for the roles the endpoint allows."""

    async def view(request: web.Request) -> web.StreamResponse:
        if endpoint.roles:
            user = request.get(USER_KEY)
            if user is None and request.get(CSRF_FAILED_KEY):
                raise ApiError(
                    403, "csrf_failed", "send the desk_csrf cookie's value in X-CSRF-Token"
                )
            if user is None:
                raise ApiError(401, "unauthenticated", "sign in first (bearer token or session)")
            if Role(user.role) not in endpoint.roles:
                raise ApiError(403, "forbidden", "your role may not do this")
        return await endpoint.handler(request)

    return view


def register(app: web.Application, endpoints: Iterable[Endpoint]) -> None:
    for endpoint in endpoints:
        app.router.add_route(endpoint.method, endpoint.path, guarded(endpoint))


def current_user(request: web.Request) -> User:
    user: User | None = request.get(USER_KEY)
    if user is None:
        raise ApiError(401, "unauthenticated", "sign in first (bearer token or session)")
    return user


async def read_body(request: web.Request, model: type[M]) -> M:
    """The request's JSON body as ``model``: malformed JSON is 400, a bad shape 422."""
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    raw = await request.read()
    try:
        return model.model_validate_json(raw or b"")
    except ValidationError as exc:
        if is_malformed_json(exc) or not raw:
            raise ApiError(400, "malformed_json", "the body is not valid JSON") from None
        raise ApiError(
            422, "invalid_input", "the request has invalid fields", validation_fields(exc)
        ) from None


def read_query(request: web.Request, model: type[M]) -> M:
    try:
        # Query strings are text by nature, so allow "50" to become 50 here.
        return model.model_validate(dict(request.query), strict=False)
    except ValidationError as exc:
        raise ApiError(
            422, "invalid_input", "the query has invalid parameters", validation_fields(exc)
        ) from None


def unit_of_work(request: web.Request) -> UnitOfWork:
    """A transaction whose events go out on the app's bus after commit."""
    return UnitOfWork(sessions=request.app[SESSIONS], bus=request.app[BUS])


def path_id(request: web.Request, name: str = "id") -> int:
    value = request.match_info[name]
    if not value.isdigit() or len(value) > 18:
        raise ApiError(404, "not_found", f"no such {name}")
    return int(value)
