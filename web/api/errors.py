"""Every API error is JSON ``{"error": {"code", "message", "fields"}}``: the model
``ErrorOut`` below both writes it and documents it (the OpenAPI document's one error
schema), so the two cannot drift."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm.exc import StaleDataError

from desk.errors import (
    AuthenticationFailed,
    Conflict,
    DeskError,
    InvalidInput,
    NotFound,
    PermissionDenied,
)

log = logging.getLogger(__name__)

_STATUS: dict[type[DeskError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    Conflict: 409,
    AuthenticationFailed: 401,
    PermissionDenied: 403,
}


class ErrorBody(BaseModel):
    # Documented as exactly these keys (additionalProperties: false).
    model_config = ConfigDict(extra="forbid")
    code: str = Field(description="Stable, for programs: invalid_input, not_found, ...")
    message: str = Field(description="For people")
    fields: dict[str, str] = Field(
        description="What is wrong with each field, by its path (agent.extension, questions.0.key)"
    )


class ErrorOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    error: ErrorBody


class ApiError(Exception):
    """An HTTP-level refusal raised by views (bad content type, unauthenticated, ...)."""

    def __init__(
        self, status: int, code: str, message: str, fields: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or {}


def error_response(
    status: int, code: str, message: str, fields: dict[str, str] | None = None
) -> web.Response:
    body = ErrorOut(error=ErrorBody(code=code, message=message, fields=fields or {}))
    return web.json_response(body.model_dump(), status=status)


def validation_fields(exc: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "body"
        fields.setdefault(location, error["msg"])
    return fields


def is_malformed_json(exc: ValidationError) -> bool:
    return any(error["type"] == "json_invalid" for error in exc.errors())


def _status_for(error: DeskError) -> int:
    for cls in type(error).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 400


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    api = request.path.startswith("/api/")
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.fields)
    except DeskError as exc:
        return error_response(_status_for(exc), exc.code, exc.message, exc.fields)
    except StaleDataError:
        # Two writers passed the version check at once; the database kept the first.
        return error_response(409, "stale_write", "changed by someone else meanwhile; reload")
    except web.HTTPException as exc:
        if not api or exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        return error_response(exc.status, code, exc.reason)
    except Exception:
        if not api:
            raise
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error; it has been logged")
