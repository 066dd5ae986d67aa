"""What the knowledge base tells people, after the commit (desk.events.UnitOfWork):
reviewers hear of an article waiting for them, the owner of what became of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from desk.events import DomainEvent, Recipients
from kb.records import ArticleState, KbArticle


@dataclass(frozen=True, kw_only=True)
class ArticleStateChanged(DomainEvent):
    name: ClassVar[str] = "kb_article_state"
    article_id: int
    title: str
    language: str
    old: str
    new: str
    actor_id: int | None
    owner_id: int | None

    @property
    def recipients(self) -> Recipients:
        if self.new == ArticleState.IN_REVIEW:
            return Recipients(supervisors=True)
        if self.owner_id is not None and self.owner_id != self.actor_id:
            return Recipients(users=(self.owner_id,))
        return Recipients.NOBODY

    def payload(self) -> dict[str, Any]:
        return {
            "occurred_at": self.occurred_at.isoformat(),
            "article_id": self.article_id,
            "title": self.title,
            "language": self.language,
            "old": self.old,
            "new": self.new,
            "actor_id": self.actor_id,
        }


def state_changed(
    article: KbArticle, old: str, *, actor_id: int | None, now: datetime
) -> ArticleStateChanged:
    return ArticleStateChanged(
        occurred_at=now,
        article_id=article.id,
        title=article.title,
        language=article.language,
        old=old,
        new=article.state,
        actor_id=actor_id,
        owner_id=article.owner_id,
    )
