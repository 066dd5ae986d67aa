"""Who may move an article where, and what an edit does to its state.  Pure.

Reviewers are supervisors and admins (docs/decisions/0007-knowledge-base.md):
every staff member writes and submits, only reviewers publish, send back from
review by publishing or archiving, and bring an archived article back.
"""

from __future__ import annotations

from dataclasses import dataclass

from desk.models import Role, User
from kb.records import ArticleState

REVIEWERS = frozenset({Role.SUPERVISOR, Role.ADMIN})

D, R, P, A = (
    ArticleState.DRAFT,
    ArticleState.IN_REVIEW,
    ArticleState.PUBLISHED,
    ArticleState.ARCHIVED,
)

# (from, to) -> needs a reviewer
TRANSITIONS: dict[tuple[ArticleState, ArticleState], bool] = {
    (D, R): False,  # submit for review
    (R, D): False,  # withdraw, or a reviewer sends it back
    (D, P): True,
    (R, P): True,
    (D, A): True,
    (R, A): True,
    (P, A): True,
    (A, D): True,  # bring back to work on it; published again only through review
}


def is_reviewer(user: User) -> bool:
    return Role(user.role) in REVIEWERS


@dataclass(frozen=True, slots=True)
class Refusal:
    status: str  # "forbidden" or "conflict"
    reason: str


def check_transition(current: ArticleState, to: ArticleState, *, reviewer: bool) -> Refusal | None:
    """None if the move is allowed, else why not."""
    if current == to:
        return Refusal("conflict", f"the article is already {current.value}")
    needs_reviewer = TRANSITIONS.get((current, to))
    if needs_reviewer is None:
        return Refusal("conflict", f"an article cannot go from {current.value} to {to.value}")
    if needs_reviewer and not reviewer:
        return Refusal("forbidden", f"only reviewers (supervisors, admins) move articles to {to}")
    return None


def state_after_edit(current: ArticleState) -> ArticleState:
    """An edit to a published article becomes a draft of its next version (the
    published one stays live until a reviewer publishes the new one); an edit in
    review stays in review, where the reviewer sees the newest version."""
    if current == ArticleState.ARCHIVED:
        raise ValueError("archived articles are not edited")
    return ArticleState.DRAFT if current == ArticleState.PUBLISHED else current
