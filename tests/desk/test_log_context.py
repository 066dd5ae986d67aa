"""Log lines as JSON objects: one a line, UTC time, and the request and call they are about."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from desk.log_context import REQUEST_ID, about_call, log_handler


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    buffer = io.StringIO()
    logger = logging.getLogger("tests.log_context")
    handler = log_handler("json", stream=buffer)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, buffer
    logger.removeHandler(handler)
    logger.propagate = True


def _lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_a_line_outside_any_request_or_call_has_time_level_logger_and_message(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = logged
    logger.warning("queue %s is %d deep", "support", 7)
    (line,) = _lines(buffer)
    assert set(line) == {"time", "level", "logger", "message"}
    assert (line["level"], line["logger"], line["message"]) == (
        "WARNING",
        "tests.log_context",
        "queue support is 7 deep",
    )
    assert isinstance(line["time"], str) and line["time"].endswith("+00:00")


def test_lines_inside_a_call_name_it_and_lines_after_it_do_not(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = logged
    with about_call("1767600000.42"):
        logger.info("ringing")
    logger.info("idle")
    ringing, idle = _lines(buffer)
    assert ringing["call_id"] == "1767600000.42"
    assert "call_id" not in idle


def test_a_line_names_the_request_it_was_written_for(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = logged
    token = REQUEST_ID.set("req-1")
    try:
        logger.info("signed in")
    finally:
        REQUEST_ID.reset(token)
    (line,) = _lines(buffer)
    assert line["request_id"] == "req-1"


def test_an_exception_stays_on_one_line_with_its_traceback(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = logged
    try:
        raise ValueError("bad frame\nsecond line")
    except ValueError:
        logger.exception("could not record")
    assert len(buffer.getvalue().splitlines()) == 1
    (line,) = _lines(buffer)
    assert line["message"] == "could not record"
    assert isinstance(line["exception"], str)
    assert "ValueError: bad frame" in line["exception"] and "Traceback" in line["exception"]
