"""Article bodies: Markdown becomes HTML that is safe on any page."""

from __future__ import annotations

import re

import pytest

from kb.rendering import first_sentences, plain_text, render_html


@pytest.mark.parametrize(
    "markdown",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](  javascript:alert(1))",
        "[click](data:text/html;base64,PHNjcmlwdD4=)",
        "[click](vbscript:msgbox)",
        "![x](javascript:alert(1))",
        '<a href="https://example.com" onclick="alert(1)">x</a>',
        "<iframe src=https://evil.example></iframe>",
        "<svg onload=alert(1)>",
        '<div style="background:url(javascript:alert(1))">x</div>',
    ],
)
def test_no_script_event_handler_or_unsafe_link_survives(markdown: str) -> None:
    tags = re.findall(r"<[^>]+>", render_html(markdown).lower())
    for tag in tags:
        assert not tag.startswith(("<script", "<iframe", "<svg", "<style")), tag
        assert not re.search(r"\son\w+\s*=", tag), tag
        assert "style=" not in tag, tag
        for url in re.findall(r'(?:href|src)="([^"]*)"', tag):
            assert url.startswith(("http://", "https://", "mailto:", "/")), tag


def test_markdown_formatting_links_and_tables_are_kept() -> None:
    html = render_html(
        "# Title\n\n**bold** and [docs](https://example.com/a)\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    )
    assert "<h1>Title</h1>" in html
    assert "<strong>bold</strong>" in html
    assert '<a href="https://example.com/a" rel="noopener noreferrer nofollow">docs</a>' in html
    assert "<table>" in html and "<td>2</td>" in html


def test_html_in_markdown_is_shown_as_text() -> None:
    assert render_html("<b>hi</b>") == "<p>&lt;b&gt;hi&lt;/b&gt;</p>\n"


def test_plain_text_has_the_words_without_tags() -> None:
    assert (
        plain_text(render_html("# Reset\n\nOpen *Settings* &amp; go")) == "Reset Open Settings & go"
    )


def test_a_summary_stops_at_a_whole_word() -> None:
    assert first_sentences("word " * 100, limit=22) == "word word word word…"
