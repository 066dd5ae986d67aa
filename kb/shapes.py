"""What people may send the knowledge base: raw input becomes these typed objects here.

Lengths are capped so one request cannot fill the database or the index: a
body of more than ``MAX_BODY`` characters is refused with a clear message.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from kb.records import ArticleState, Audience, LinkKind

MAX_BODY = 100_000
SLUG_PATTERN = re.compile(r"^[^\W_]+(?:-[^\W_]+)*$")
LANGUAGE_PATTERN = r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})?$"


def slugify(text: str, *, limit: int = 80) -> str:
    """A readable URL part from a title: lower-case words (any script) joined by '-'."""
    words = re.findall(r"[^\W_]+", unicodedata.normalize("NFKC", text).casefold())
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > limit:
            break
        slug = candidate
    return slug or (words[0][:limit] if words else "article")


def _slug(value: str) -> str:
    value = unicodedata.normalize("NFKC", value).casefold()
    if not SLUG_PATTERN.match(value):
        raise ValueError("use letters, digits and single hyphens, e.g. reset-your-password")
    return value


def _tags(values: list[str]) -> list[str]:
    cleaned = {" ".join(v.casefold().split()) for v in values}
    cleaned.discard("")
    return sorted(cleaned)


Slug = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_slug)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Summary = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
Body = Annotated[str, StringConstraints(max_length=MAX_BODY)]
Language = Annotated[str, StringConstraints(pattern=LANGUAGE_PATTERN)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Tags = Annotated[list[Tag], Field(max_length=20), AfterValidator(_tags)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


class ArticleDraft(BaseModel):
    """A new article.  Without a slug one is made from the title."""

    model_config = ConfigDict(extra="forbid", strict=True)

    title: Title
    body: Body = ""
    summary: Summary = ""
    language: Language = "en"
    slug: Slug | None = None
    category_id: int | None = None
    tags: Tags = []
    audience: Audience = Audience.INTERNAL


class TranslationDraft(BaseModel):
    """The same article in another language, linked to the original."""

    model_config = ConfigDict(extra="forbid", strict=True)

    language: Language
    title: Title
    body: Body = ""
    summary: Summary = ""
    slug: Slug | None = None
    tags: Tags | None = None  # default: the original's


class ArticlePatch(BaseModel):
    """An edit: send the version you read (``head_version``); a stale one is refused."""

    model_config = ConfigDict(extra="forbid", strict=True)

    version: int
    title: Title | None = None
    body: Body | None = None
    summary: Summary | None = None
    slug: Slug | None = None
    category_id: int | None = None
    clear_category: bool = False
    tags: Tags | None = None
    audience: Audience | None = None
    note: Note = ""


class TransitionIn(BaseModel):
    """Move an article on in its workflow; ``version`` is the version you reviewed."""

    model_config = ConfigDict(extra="forbid", strict=True)

    to: ArticleState
    version: int
    note: Note = ""


class RestoreIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    version: int  # the article's current head_version, as for an edit
    note: Note = ""


class CategoryDraft(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    slug: Slug
    names: Annotated[dict[Language, Title], Field(min_length=1, max_length=20)]
    parent_id: int | None = None
    position: Annotated[int, Field(ge=0, le=10_000)] = 0


class CategoryPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    names: Annotated[dict[Language, Title], Field(min_length=1, max_length=20)] | None = None
    parent_id: int | None = None
    to_top: bool = False
    position: Annotated[int, Field(ge=0, le=10_000)] | None = None


class SearchQuery(BaseModel):
    """Search parameters (query string).  ``q`` is searched as words, never as syntax."""

    model_config = ConfigDict(extra="forbid")

    q: Annotated[str, StringConstraints(max_length=500)] = ""
    language: Language | None = None
    category: Annotated[str, StringConstraints(max_length=100)] | None = None
    tag: Annotated[str, StringConstraints(max_length=64)] | None = None
    audience: Audience | None = None
    state: ArticleState | None = None
    page: Annotated[int, Field(ge=1, le=500)] = 1
    per_page: Annotated[int, Field(ge=1, le=50)] = 10


class TicketText(BaseModel):
    """A ticket being written: suggestions come from its subject and description."""

    model_config = ConfigDict(extra="forbid", strict=True)

    subject: Annotated[str, StringConstraints(max_length=200)] = ""
    description: Annotated[str, StringConstraints(max_length=20_000)] = ""
    language: Language | None = None
    limit: Annotated[int, Field(ge=1, le=20)] = 5


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    ticket_id: int
    kind: LinkKind = LinkKind.LINKED


class VoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    helpful: bool
