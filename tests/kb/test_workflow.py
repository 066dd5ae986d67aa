"""Who may move an article where."""

from __future__ import annotations

import pytest

from kb.records import ArticleState
from kb.workflow import check_transition, state_after_edit

D, R, P, A = (
    ArticleState.DRAFT,
    ArticleState.IN_REVIEW,
    ArticleState.PUBLISHED,
    ArticleState.ARCHIVED,
)


@pytest.mark.parametrize(
    ("current", "to", "reviewer", "outcome"),
    [
        (D, R, False, None),
        (R, D, False, None),
        (D, P, False, "forbidden"),
        (R, P, False, "forbidden"),
        (D, P, True, None),
        (R, P, True, None),
        (P, A, False, "forbidden"),
        (P, A, True, None),
        (A, D, True, None),
        (A, D, False, "forbidden"),
        (A, P, True, "conflict"),
        (P, D, True, "conflict"),
        (P, R, True, "conflict"),
        (D, D, True, "conflict"),
    ],
)
def test_transitions(
    current: ArticleState, to: ArticleState, reviewer: bool, outcome: str | None
) -> None:
    refusal = check_transition(current, to, reviewer=reviewer)
    assert (refusal.status if refusal else None) == outcome


@pytest.mark.parametrize(("current", "after"), [(D, D), (R, R), (P, D)])
def test_an_edit_to_a_published_article_starts_a_draft_of_the_next_version(
    current: ArticleState, after: ArticleState
) -> None:
    assert state_after_edit(current) == after
