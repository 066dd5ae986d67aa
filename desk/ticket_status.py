"""Which status changes a ticket may make: a pure table, checked before any write.

new → open → pending (waiting on the customer) / on hold (waiting on a third
party) → solved → closed.  A solved ticket reopens (to open); a closed one is
final — a customer writing after that starts a follow-up ticket.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from desk.errors import InvalidInput
from desk.models import TicketStatus

S = TicketStatus
ALLOWED: dict[TicketStatus, frozenset[TicketStatus]] = {
    S.NEW: frozenset({S.OPEN, S.PENDING, S.ON_HOLD, S.SOLVED, S.CLOSED}),
    S.OPEN: frozenset({S.PENDING, S.ON_HOLD, S.SOLVED}),
    S.PENDING: frozenset({S.OPEN, S.ON_HOLD, S.SOLVED}),
    S.ON_HOLD: frozenset({S.OPEN, S.PENDING, S.SOLVED}),
    S.SOLVED: frozenset({S.OPEN, S.CLOSED}),
    S.CLOSED: frozenset(),
}
# Closing straight from new is for spam and duplicates only.
CLOSE_REASONS = frozenset({"spam", "duplicate"})


class InvalidTransition(InvalidInput):
    code = "invalid_transition"


def check_transition(
    current: TicketStatus, new: TicketStatus, *, close_reason: str | None = None
) -> None:
    """Raise ``InvalidTransition`` with a clear message unless ``current → new`` is allowed."""
    if new == current:
        raise InvalidTransition(
            f"the ticket is already {current.value}", fields={"status": "unchanged"}
        )
    if new not in ALLOWED[current]:
        allowed = ", ".join(sorted(s.value for s in ALLOWED[current])) or "none (it is final)"
        raise InvalidTransition(
            f"a {current.value} ticket cannot become {new.value}; allowed: {allowed}",
            fields={"status": f"cannot go from {current.value} to {new.value}"},
        )
    if current is S.NEW and new is S.CLOSED and close_reason not in CLOSE_REASONS:
        raise InvalidTransition(
            "a new ticket can only be closed as spam or duplicate",
            fields={"close_reason": "give spam or duplicate"},
        )


def status_after_customer_message(
    current: TicketStatus, *, solved_at: datetime | None, now: datetime, reopen_window: timedelta
) -> TicketStatus | None:
    """The status a customer's message moves the ticket to, or None to leave it.

    Waiting on the customer ends when they answer; a solved ticket reopens if they
    answer within the window; a closed one stays closed (a follow-up is opened).
    """
    if current is S.PENDING:
        return S.OPEN
    if current is S.SOLVED:
        if solved_at is not None and now - solved_at <= reopen_window:
            return S.OPEN
        return None
    return None
