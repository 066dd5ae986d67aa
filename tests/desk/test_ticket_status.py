from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from desk.models import TicketStatus as S
from desk.ticket_status import InvalidTransition, check_transition, status_after_customer_message

ALLOWED = [
    (S.NEW, S.OPEN),
    (S.NEW, S.PENDING),
    (S.OPEN, S.PENDING),
    (S.OPEN, S.ON_HOLD),
    (S.PENDING, S.OPEN),
    (S.ON_HOLD, S.OPEN),
    (S.OPEN, S.SOLVED),
    (S.SOLVED, S.OPEN),
    (S.SOLVED, S.CLOSED),
]
REFUSED = [
    (S.OPEN, S.NEW),
    (S.OPEN, S.CLOSED),
    (S.PENDING, S.CLOSED),
    (S.CLOSED, S.OPEN),
    (S.CLOSED, S.SOLVED),
    (S.SOLVED, S.PENDING),
    (S.OPEN, S.OPEN),
]


@pytest.mark.parametrize(("current", "new"), ALLOWED)
def test_an_allowed_status_change_passes(current: S, new: S) -> None:
    check_transition(current, new)


@pytest.mark.parametrize(("current", "new"), REFUSED)
def test_a_forbidden_status_change_is_refused_with_a_clear_message(current: S, new: S) -> None:
    with pytest.raises(InvalidTransition) as caught:
        check_transition(current, new)
    assert current.value in caught.value.message
    assert "status" in caught.value.fields


def test_a_new_ticket_closes_only_as_spam_or_duplicate() -> None:
    with pytest.raises(InvalidTransition, match="spam or duplicate"):
        check_transition(S.NEW, S.CLOSED)
    check_transition(S.NEW, S.CLOSED, close_reason="spam")


NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
WINDOW = timedelta(days=7)


@pytest.mark.parametrize(
    ("current", "solved_ago", "expected"),
    [
        (S.PENDING, None, S.OPEN),
        (S.SOLVED, timedelta(days=1), S.OPEN),
        (S.SOLVED, timedelta(days=7), S.OPEN),
        (S.SOLVED, timedelta(days=8), None),
        (S.OPEN, None, None),
        (S.ON_HOLD, None, None),
        (S.CLOSED, None, None),
    ],
)
def test_a_customer_message_reopens_within_the_window_and_ends_waiting(
    current: S, solved_ago: timedelta | None, expected: S | None
) -> None:
    solved_at = NOW - solved_ago if solved_ago else None
    assert (
        status_after_customer_message(current, solved_at=solved_at, now=NOW, reopen_window=WINDOW)
        == expected
    )
