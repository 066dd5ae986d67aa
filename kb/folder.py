"""Articles as Markdown files with YAML front matter, the format of ``desk kb import``
and ``desk kb export``.  Pure: bytes in, typed articles or a problem out, and back.

    ---
    title: Reset your password
    slug: reset-your-password
    language: en
    summary: Set a new password from the sign-in page.
    category: account
    tags: [password, sign-in]
    audience: public
    state: published
    translation_key: reset-your-password
    ---
    Markdown body ...

Only ``title`` is required.  ``translation_key`` links the languages of one
article: files with the same key are translations of each other.
"""

from __future__ import annotations

from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from kb.records import ArticleState, Audience, KbArticleVersion
from kb.shapes import MAX_BODY, Language, Slug, Summary, Tags, Title

MAX_FILE_BYTES = 4 * MAX_BODY + 20_000  # a body of MAX_BODY characters, CJK, plus front matter
FENCE = "---"


class FileProblem(Exception):
    """Why a file cannot be imported, in one line."""


class ArticleFile(BaseModel):
    # Not strict: YAML gives strings where the fields want enums.
    model_config = ConfigDict(extra="forbid")

    title: Title
    slug: Slug | None = None
    language: Language = "en"
    summary: Summary = ""
    category: Annotated[str, StringConstraints(max_length=100)] | None = None
    tags: Tags = []
    audience: Audience = Audience.INTERNAL
    state: ArticleState = ArticleState.DRAFT
    translation_key: Annotated[str, StringConstraints(min_length=1, max_length=190)] | None = None
    body: Annotated[str, StringConstraints(max_length=MAX_BODY)] = ""


def decode(raw: bytes) -> str:
    if len(raw) > MAX_FILE_BYTES:
        raise FileProblem(f"file is {len(raw)} bytes, more than the {MAX_FILE_BYTES} allowed")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise FileProblem(
            f"not UTF-8: byte 0x{raw[exc.start]:02x} on line {line}; save the file as UTF-8"
        ) from None
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


def parse_article(raw: bytes) -> ArticleFile:
    text = decode(raw)
    if not text.startswith(FENCE + "\n"):
        raise FileProblem("no front matter: the file must start with a '---' line")
    end = text.find(f"\n{FENCE}\n", len(FENCE))
    if end == -1 and text.endswith(f"\n{FENCE}"):
        end = len(text) - len(FENCE) - 1
    if end == -1:
        raise FileProblem("the front matter has no closing '---' line")
    try:
        meta = yaml.safe_load(text[len(FENCE) + 1 : end]) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" on line {mark.line + 2}" if mark is not None else ""
        raise FileProblem(f"front matter is not valid YAML{where}") from None
    if not isinstance(meta, dict):
        raise FileProblem("front matter must be 'key: value' lines")
    if "body" in meta:
        raise FileProblem("'body' is not a front-matter key; the body follows the front matter")
    body = text[end + len(FENCE) + 2 :].strip("\n")
    values: dict[str, Any] = {str(k): _plain(v) for k, v in meta.items()}
    try:
        return ArticleFile.model_validate({**values, "body": body})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "front matter"
        raise FileProblem(f"{where}: {first['msg']}") from None


def _plain(value: Any) -> Any:
    # YAML reads `tags: [2024]` or `slug: 404` as numbers and dates as dates.
    if isinstance(value, list):
        return [v if isinstance(v, str) else str(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def render_article(
    version: KbArticleVersion,
    *,
    language: str,
    state: str,
    category: str | None,
    translation_key: str,
) -> str:
    meta: dict[str, Any] = {
        "title": version.title,
        "slug": version.slug,
        "language": language,
        "summary": version.summary,
        "category": category,
        "tags": list(version.tags),
        "audience": version.audience,
        "state": state,
        "translation_key": translation_key,
    }
    meta = {k: v for k, v in meta.items() if v not in (None, "", [])}
    front = yaml.safe_dump(
        meta, allow_unicode=True, sort_keys=False, width=1000, default_flow_style=None
    )
    return f"{FENCE}\n{front}{FENCE}\n{version.body_md.rstrip()}\n"


def parse_categories(raw: bytes) -> list[dict[str, Any]]:
    """``categories.yaml``: a list of {slug, names: {language: name}, parent, position}."""
    try:
        data = yaml.safe_load(decode(raw)) or []
    except yaml.YAMLError:
        raise FileProblem("categories.yaml is not valid YAML") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise FileProblem("categories.yaml must be a list of categories")
    return data


def render_categories(items: list[dict[str, Any]]) -> str:
    return yaml.safe_dump(items, allow_unicode=True, sort_keys=False, width=1000)
