"""Snippets: the part of an article that matched, with the matched words marked.

Built in Python from the article's plain text rather than by the database
(FTS5 ``snippet()``, ``ts_headline``), because the index holds normalised,
segmented terms, not the words people wrote, and because both databases must
give the same result.  The output is HTML: the text is escaped and only
``<mark>`` is added.
"""

from __future__ import annotations

import re
from html import escape

from kb.terms import normalise, stem

_WORD = re.compile(r"[^\W_]+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

Span = tuple[int, int]


def match_spans(text: str, terms: list[str]) -> list[Span]:
    """Where the query's terms occur in ``text``: whole words for alphabetic
    terms (compared after stemming), any occurrence for CJK terms."""
    if not terms:
        return []
    cjk = [t for t in terms if _CJK.search(t)]
    words = {t for t in terms if not _CJK.search(t)}
    spans: list[Span] = []
    if words:
        for match in _WORD.finditer(text):
            token = match.group()
            if _CJK.search(token):
                continue
            if stem(normalise(token)) in words:
                spans.append(match.span())
    if cjk:
        folded = normalise(text)
        if len(folded) == len(text):  # offsets agree (true for CJK text)
            for term in cjk:
                start = folded.find(term)
                while start != -1:
                    spans.append((start, start + len(term)))
                    start = folded.find(term, start + len(term))
    return _merged(spans)


def _merged(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def highlight(text: str, terms: list[str]) -> str:
    """All of ``text``, escaped, with every match marked."""
    return _marked(text, match_spans(text, terms), 0, len(text))


def snippet(text: str, terms: list[str], *, width: int = 180) -> str:
    """About ``width`` characters of ``text`` around the densest group of matches."""
    spans = match_spans(text, terms)
    if len(text) <= width:
        return _marked(text, spans, 0, len(text))
    if not spans:
        return _marked(text, [], 0, _word_end(text, width)) + "…"
    best_start, best_score = spans[0][0], -1
    for i, (start, _) in enumerate(spans):
        inside = [s for s in spans[i:] if s[1] <= start + width]
        score = len({normalise(text[a:b]) for a, b in inside}) * 10 + len(inside)
        if score > best_score:
            best_start, best_score = start, score
    begin = max(0, best_start - width // 4)
    if begin:
        space = text.rfind(" ", 0, begin)
        begin = space + 1 if space != -1 and begin - space < 20 else begin
    end = _word_end(text, min(len(text), begin + width))
    body = _marked(text, spans, begin, end)
    return ("…" if begin else "") + body + ("…" if end < len(text) else "")


def _word_end(text: str, end: int) -> int:
    if end >= len(text):
        return len(text)
    space = text.find(" ", end)
    return space if space != -1 and space - end < 20 else end


def _marked(text: str, spans: list[Span], begin: int, end: int) -> str:
    out: list[str] = []
    position = begin
    for start, stop in spans:
        if stop <= begin or start >= end:
            continue
        start, stop = max(start, begin), min(stop, end)
        out.append(escape(text[position:start]))
        out.append(f"<mark>{escape(text[start:stop])}</mark>")
        position = stop
    out.append(escape(text[position:end]))
    return "".join(out)


def as_written(text: str, terms: list[str]) -> dict[str, str]:
    """Each term as ``text`` first wrote it (``charg`` was written ``Charged``)."""
    written: dict[str, str] = {}
    wanted = set(terms)
    for start, end in match_spans(text, terms):
        word = text[start:end]
        key = stem(normalise(word))
        if key not in wanted:
            key = normalise(word)
        if key in wanted:
            written.setdefault(key, word)
    return written
