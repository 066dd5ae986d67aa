# ruff: noqa: RUF002, SIM905  (full-width letters on purpose; a word list reads best as text)
"""Words for the search index, made the same way for articles and for queries.

Both databases get text that is already split into normalised terms separated
by spaces (SQLite FTS5 with ``unicode61``, PostgreSQL ``to_tsvector('simple')``),
so relevance is the same on both and neither database has to know Chinese:

* text is NFKC-normalised and case-folded (full-width ``ＡＢＣ`` is ``abc``);
* runs of Han characters are cut into words by a dictionary segmenter
  (rjieba, docs/decisions/0007-knowledge-base.md).  Articles are cut in
  "search" mode, which adds the shorter words inside long ones (手机号码 also
  gives 手机 and 号码), queries in precise mode, so a two-character query such
  as 重置 or 退款 finds every sentence that contains the word;
* kana runs, which the segmenter does not know, become overlapping bigrams;
* other letters and digits form words; English words lose common inflections
  (``refunds``, ``refunded`` and ``refunding`` all become ``refund``);
* stop words and over-long tokens are left out.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

import rjieba

MAX_TERM = 40
_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_KANA = r"\u3040-\u309f\u30a0-\u30ff"
_RUNS = re.compile(rf"([{_HAN}]+)|([{_KANA}]+)|([^\W_{_HAN}{_KANA}]+)")
_VOWEL = re.compile(r"[aeiouy]")
_HAN_WORD = re.compile(rf"^[{_HAN}]+$")

STOP_WORDS = frozenset(
    """a an and are as at be but by can could do does did for from had has have how i if in
    into is it its me my no not of on or our so than that the their them then there these
    they this to too up us was we were what when where which who why will with would you
    your yours
    的 了 在 是 我 你 您 他 她 它 们 我们 你们 和 与 或 及 吗 呢 吧 啊 呀 也 就 都 而 被 把 将
    对 这 那 这个 那个 有 个 请 如何 怎么 怎样 什么 为什么 一个 可以 能 要 会 么 中 上 下""".split()
)


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def stem(word: str) -> str:
    """A light English suffix stripper: enough that plural and tense forms meet.

    Not a full Porter stemmer on purpose: it never turns a word into another
    real word, and anything with a digit (codes, versions) is left alone.
    """
    if len(word) < 4 or not word.isascii() or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and _VOWEL.search(word[: -len(suffix)]):
            base = word[: -len(suffix)]
            if len(base) >= 3:
                word = base
                if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
                    word = word[:-1]  # resetting -> resett -> reset
            break
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]  # charge/charged/charging meet at "charg"
    return word


def _words(text: str, *, for_index: bool) -> Iterator[str]:
    for match in _RUNS.finditer(normalise(text)):
        han, kana, other = match.groups()
        if han:
            yield from rjieba.cut_for_search(han) if for_index else rjieba.cut(han)
        elif kana:
            if len(kana) == 1:
                yield kana
            else:
                yield from (kana[i : i + 2] for i in range(len(kana) - 1))
        elif other:
            yield stem(other)


def index_terms(text: str) -> list[str]:
    """The terms of an article's text, in order, for the index."""
    return [w for w in _words(text, for_index=True) if w not in STOP_WORDS and len(w) <= MAX_TERM]


Group = tuple[str, ...]


def query_groups(text: str) -> list[Group]:
    """A query as groups of alternatives: an article must match one term of every group.

    A Chinese word of three or more characters is also looked for as the shorter
    words inside it, because the segmenter may cut the article differently: 网速慢
    ("slow network") finds 网速变慢, and 开发票 ("issue an invoice") finds 发票.
    """
    groups: dict[Group, None] = {}
    for word in _words(text, for_index=False):
        if word in STOP_WORDS or len(word) > MAX_TERM:
            continue
        group: Group = (word,)
        if len(word) >= 3 and _HAN_WORD.match(word):
            inner = [w for w in rjieba.cut_for_search(word) if w != word and len(w) >= 2]
            group = (word, *dict.fromkeys(w for w in inner if w not in STOP_WORDS))
        groups.setdefault(group, None)
    return list(groups)


def query_terms(text: str) -> list[str]:
    """The distinct terms of a query (every alternative), in the order typed."""
    return list(dict.fromkeys(term for group in query_groups(text) for term in group))


def index_text(text: str) -> str:
    return " ".join(index_terms(text))


def matched_terms(terms: list[str], text: str) -> list[str]:
    """Which of ``terms`` the text contains as index terms, in the order given."""
    present = set(index_terms(text))
    return [term for term in terms if term in present]
