"""Article bodies: Markdown in, sanitised HTML and plain text out.

markdown-it-py renders CommonMark (plus tables and strikethrough) with raw HTML
switched off, so ``<script>`` in a body is shown as text; nh3 (the Rust
``ammonia`` sanitiser) then keeps only a fixed set of tags and attributes and
only http, https and mailto links, whatever the renderer let through.  Links
that leave the site get ``rel="noopener noreferrer nofollow"``.
"""

from __future__ import annotations

import html
import re

import nh3
from markdown_it import MarkdownIt

TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4",
        "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "strong", "sub",
        "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "td": {"align"},
    "th": {"align"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_markdown.enable(["table", "strikethrough"])
_BLOCK_TAG = re.compile(
    r"</?(?:p|h[1-6]|li|ul|ol|br|hr|table|thead|tbody|tr|td|th|blockquote|pre)\b[^>]*>"
)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def render_html(markdown: str) -> str:
    """Sanitised HTML of a Markdown body, safe to put on any page as it is."""
    rendered = _markdown.render(markdown)
    return nh3.clean(
        rendered,
        tags=set(TAGS),
        attributes={tag: set(names) for tag, names in ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def plain_text(safe_html: str) -> str:
    """The words of rendered HTML, for the index, snippets and summaries."""
    text = _TAG.sub("", _BLOCK_TAG.sub(" ", safe_html))
    return _SPACE.sub(" ", html.unescape(text)).strip()


def first_sentences(text: str, limit: int = 200) -> str:
    """A summary from the start of a body: whole words, at most ``limit`` characters."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,.;:") + "…"
