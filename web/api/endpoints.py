"""The API's route table: one declaration per endpoint drives routing, access
control, request validation and the OpenAPI document, so they cannot drift."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
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

# Ids, versions and counters are INTEGER columns (32 bits on PostgreSQL): a number
# outside that range names no row, and the database would answer it with an error.
INTEGER_RANGE = range(-(2**31), 2**31)

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
    # The success status of a repeated call that finds what the first one made.
    repeat_status: int | None = None
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
        body = model.model_validate_json(raw or b"")
    except ValidationError as exc:
        if is_malformed_json(exc) or not raw:
            raise ApiError(400, "malformed_json", "the body is not valid JSON") from None
        raise ApiError(
            422, "invalid_input", "the request has invalid fields", validation_fields(exc)
        ) from None
    _refuse_unstorable(body, "the request has invalid fields")
    return body


def read_query(request: web.Request, model: type[M]) -> M:
    try:
        # Query strings are text by nature, so allow "50" to become 50 here.
        query = model.model_validate(dict(request.query), strict=False)
    except ValidationError as exc:
        raise ApiError(
            422, "invalid_input", "the query has invalid parameters", validation_fields(exc)
        ) from None
    _refuse_unstorable(query, "the query has invalid parameters")
    return query


def _refuse_unstorable(data: BaseModel, message: str) -> None:
    fields = _unstorable(data, "")
    if fields:
        raise ApiError(422, "invalid_input", message, fields)


def _unstorable(value: object, where: str) -> dict[str, str]:
    """Every value in ``value`` (a model, and what its dicts and lists hold) that the
    database cannot store or the desk cannot compute with, by its path as validation
    errors name fields: an integer too big for an INTEGER column, text with a NUL
    character (PostgreSQL's text refuses it), a moment that is no moment in UTC
    (0001-01-01T00:00+01:00)."""
    path = where or "body"
    if isinstance(value, int) and not isinstance(value, bool):
        if value in INTEGER_RANGE:
            return {}
        low, high = INTEGER_RANGE.start, INTEGER_RANGE.stop - 1
        return {path: f"must be between {low} and {high}"}
    if isinstance(value, str):
        return {path: "must not contain the NUL character (\\u0000)"} if "\x00" in value else {}
    if isinstance(value, datetime):
        try:
            value.astimezone(UTC)
        except OverflowError:
            return {path: "out of range"}
        return {}
    items: Iterable[tuple[object, object]]
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        items = ((info.alias or name, getattr(value, name)) for name, info in fields.items())
    elif isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return {}
    found: dict[str, str] = {}
    for key, item in items:
        inner = f"{where}.{key}" if where else str(key)
        found.update(_unstorable(key, inner) if isinstance(key, str) else {})
        found.update(_unstorable(item, inner))
    return found


def unit_of_work(request: web.Request) -> UnitOfWork:
    """A transaction whose events go out on the app's bus after commit."""
    return UnitOfWork(sessions=request.app[SESSIONS], bus=request.app[BUS])


def path_id(request: web.Request, name: str = "id") -> int:
    value = request.match_info[name]
    # Only ASCII digits: str.isdigit() also takes "²" and other digits int() refuses.
    if not (value.isascii() and value.isdigit()) or len(value) > 10:
        raise ApiError(404, "not_found", f"no such {name}")
    number = int(value)
    if number not in INTEGER_RANGE:
        raise ApiError(404, "not_found", f"no such {name}")
    return number
