"""Snippets mark the matched words and escape everything else."""

from __future__ import annotations

from kb.snippets import as_written, highlight, snippet
from kb.terms import query_terms


def test_matched_words_are_marked_in_any_inflection() -> None:
    assert highlight("Resetting passwords", query_terms("reset password")) == (
        "<mark>Resetting</mark> <mark>passwords</mark>"
    )


def test_chinese_words_are_marked_inside_a_sentence_without_spaces() -> None:
    assert highlight("如何重置您的账户密码", query_terms("重置 密码")) == (
        "如何<mark>重置</mark>您的账户<mark>密码</mark>"
    )


def test_html_in_the_text_is_escaped() -> None:
    assert highlight("<script>reset</script>", ["reset"]) == (
        "&lt;script&gt;<mark>reset</mark>&lt;/script&gt;"
    )


def test_a_long_text_is_cut_around_the_matches() -> None:
    text = "intro " * 60 + "then reset the router " + "outro " * 60
    cut = snippet(text, ["router"], width=60)
    assert "<mark>router</mark>" in cut
    assert cut.startswith("…") and cut.endswith("…")
    assert len(cut) < 120


def test_a_text_without_matches_shows_its_start() -> None:
    assert snippet("one two three " * 30, ["zebra"], width=20).startswith("one two three one two")


def test_terms_are_shown_as_the_ticket_wrote_them() -> None:
    assert as_written("We Charged you twice", ["charg"]) == {"charg": "Charged"}
