"""What a log line is about, and the two shapes a line can take.

``request_id`` (set by the web layer for each HTTP request) and ``call_id`` (set
by the CTI while it handles a call's event: the call's Linkedid) are context
variables, so every log line written meanwhile — in any module, at any depth —
can name them without each caller passing them along.

Lines are plain text for people at a terminal (the demo) or one JSON object per
line for a log pipeline (production: journald, Loki, Elasticsearch).
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Literal, TextIO

LogFormat = Literal["text", "json"]

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
CALL_ID: ContextVar[str | None] = ContextVar("call_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_CONTEXT = {"request_id": REQUEST_ID, "call_id": CALL_ID}


class about_call:  # lower case: it reads as a function, ``with about_call(call_id):``
    """Log lines written inside the block name ``call_id`` (nothing changes for None).

    A class rather than a generator: the CTI enters one for every AMI event."""

    __slots__ = ("_call_id", "_token")

    def __init__(self, call_id: str | None) -> None:
        self._call_id = call_id
        self._token: Token[str | None] | None = None

    def __enter__(self) -> None:
        if self._call_id:
            self._token = CALL_ID.set(self._call_id)

    def __exit__(self, *_: object) -> None:
        if self._token is not None:
            CALL_ID.reset(self._token)
            self._token = None


class ContextStamp(logging.Filter):
    """Copies the context's ids onto the record when it is logged, so they survive
    a handler that formats later or on another thread (a ``QueueHandler``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, variable in _CONTEXT.items():
            if getattr(record, key, None) is None:
                setattr(record, key, variable.get())
        return True


class JsonLines(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and
    ``request_id``, ``call_id`` and ``exception`` when there are any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, variable in _CONTEXT.items():
            value = getattr(record, key, None) or variable.get()
            if value is not None:
                line[key] = value
        if record.exc_info and not record.exc_text:
            # Cached on the record, as logging.Formatter does, for other handlers.
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def log_handler(form: LogFormat, *, stream: TextIO | None = None) -> logging.Handler:
    """A handler writing ``form`` lines to ``stream`` (standard error by default)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextStamp())
    handler.setFormatter(JsonLines() if form == "json" else logging.Formatter(TEXT_FORMAT))
    return handler


def set_up_logging(level: str, form: LogFormat, *, stream: TextIO | None = None) -> None:
    """The process's root logger writes ``form`` lines at ``level`` and above."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(log_handler(form, stream=stream))
    root.setLevel(level)
