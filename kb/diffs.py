"""What changed between two versions of an article.  Pure."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from kb.records import KbArticleVersion

FIELDS = ("title", "slug", "summary", "tags", "category_id", "audience", "body_md")


@dataclass(frozen=True, slots=True)
class DiffLine:
    op: str  # "+" added, "-" removed, " " unchanged context
    text: str


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str
    old: str
    new: str
    lines: list[DiffLine]  # line by line, for the body; empty for one-line fields


def _as_text(version: KbArticleVersion, field: str) -> str:
    value = getattr(version, field)
    if field == "tags":
        return ", ".join(value)
    return "" if value is None else str(value)


def line_diff(old: str, new: str, *, context: int = 2) -> list[DiffLine]:
    """Changed lines with ``context`` unchanged lines around each change."""
    a, b = old.splitlines(), new.splitlines()
    out: list[DiffLine] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += [DiffLine(" ", line) for line in a[i1:i2]]
                continue
            out += [DiffLine("-", line) for line in a[i1:i2]]
            out += [DiffLine("+", line) for line in b[j1:j2]]
    return out


def diff_versions(old: KbArticleVersion, new: KbArticleVersion) -> list[FieldChange]:
    changes = []
    for field in FIELDS:
        before, after = _as_text(old, field), _as_text(new, field)
        if before == after:
            continue
        lines = line_diff(before, after) if field == "body_md" else []
        changes.append(FieldChange(field, before, after, lines))
    return changes
