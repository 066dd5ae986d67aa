"""Every screen speaks English and Simplified Chinese: no string is left in one
language only, and none is left empty."""

from __future__ import annotations

import pytest

from desk import survey_wording
from web import throttle
from web.pages import help_center, wording

WORD_SETS = {
    "staff screens": wording._STAFF_WORDS,
    "public ticket form": wording._WORDS,
    "survey pages": survey_wording._WORDS,
    "help center": help_center._WORDS,
    "too many requests": throttle.TOO_MANY,
}


@pytest.mark.parametrize("screens", sorted(WORD_SETS))
def test_every_string_of_a_screen_exists_in_english_and_in_chinese(screens: str) -> None:
    words = WORD_SETS[screens]
    assert set(words) == {"en", "zh"}
    assert sorted(set(words["en"]) ^ set(words["zh"])) == []


@pytest.mark.parametrize("screens", sorted(WORD_SETS))
def test_no_string_of_a_screen_is_empty(screens: str) -> None:
    empty = [
        (language, key)
        for language, words in WORD_SETS[screens].items()
        for key, text in words.items()
        # A suffix may be empty in one language: English "page 2" has none, Chinese has 页.
        if not text.strip() and not key.endswith("_suffix")
    ]
    assert empty == []
