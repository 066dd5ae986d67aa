"""Domain errors with a stable code; the web layer maps them to HTTP statuses."""

from __future__ import annotations


class DeskError(Exception):
    code = "error"

    def __init__(self, message: str, *, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class InvalidInput(DeskError):
    code = "invalid_input"


class NotFound(DeskError):
    code = "not_found"


class Conflict(DeskError):
    code = "conflict"


class StaleWrite(Conflict):
    code = "stale_write"


class AuthenticationFailed(DeskError):
    code = "authentication_failed"


class PermissionDenied(DeskError):
    code = "forbidden"
