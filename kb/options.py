"""The knowledge base's own settings: languages, review thresholds, vote limits."""

from __future__ import annotations

import re
from dataclasses import dataclass

_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})?$")


@dataclass(frozen=True, slots=True)
class KbOptions:
    # Article languages, the first being the default (help center, categories).
    languages: tuple[str, ...] = ("en", "zh")
    # Published articles nobody linked, inserted or voted on for this long need a look.
    unused_days: int = 90
    # ... and those whose helpful share is below this, once they have enough votes.
    poor_ratio: float = 0.5
    poor_min_votes: int = 5
    # Public votes on one article from one network address per day.
    public_votes_per_origin: int = 3

    def __post_init__(self) -> None:
        if not self.languages or len(set(self.languages)) != len(self.languages):
            raise ValueError("kb languages: give each language once, at least one")
        bad = [code for code in self.languages if not _LANGUAGE.match(code)]
        if bad:
            raise ValueError(f"kb languages: {', '.join(bad)} is not a language code like zh")
        if self.unused_days < 1 or not 0 < self.poor_ratio < 1 or self.poor_min_votes < 1:
            raise ValueError("kb review thresholds are out of range")

    @property
    def default_language(self) -> str:
        return self.languages[0]
