"""AMI frames: the one shape raw AMI data has inside calldesk.

A frame is an ordered list of ``(key, value)`` pairs exactly as Asterisk sent
them.  Keys repeat (``ChanVariable``, ``Variable``) and values can be empty
(``AccountCode: ``), so a plain ``dict`` would lose data.  Look-ups ignore key
case because Asterisk has changed key capitalisation between versions.

Frames read off the wire keep their text and split it only when a field is
asked for: most of the stream (``VarSet``, ``Newexten``, ...) is dropped after
a look at the event name, which is read straight from the first line.
Only ``cti.normalise`` and the AMI client look inside frames.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

Pairs = tuple[tuple[str, str], ...]


class Frame:
    """One AMI message (response, event or action); read-only once built."""

    __slots__ = ("_index", "_pairs", "_text")

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._pairs: Pairs | None = tuple(pairs)
        self._text: str | None = None
        self._index: dict[str, str] | None = None

    @classmethod
    def of(cls, **fields: str) -> Frame:
        return cls(tuple(fields.items()))

    @classmethod
    def from_text(cls, text: str) -> Frame:
        """A frame over one complete frame's decoded text (lines ending in CRLF)."""
        frame = cls.__new__(cls)
        frame._text = text
        frame._pairs = None
        frame._index = None
        return frame

    @property
    def pairs(self) -> Pairs:
        pairs = self._pairs
        if pairs is None:
            assert self._text is not None
            pairs = self._pairs = split_pairs(self._text)
        return pairs

    def _lookup(self) -> dict[str, str]:
        index = self._index
        if index is None:
            text = self._text
            index = _index_text(text) if self._pairs is None and text is not None else None
            if index is None:
                # Built from the end so the first occurrence wins; getall() sees every one.
                index = {key.lower(): value for key, value in reversed(self.pairs)}
            self._index = index
        return index

    def fields(self) -> Mapping[str, str]:
        """Every field by lower-case key (first occurrence of a repeated key)."""
        return self._lookup()

    def get(self, key: str, default: str | None = None) -> str | None:
        return self._lookup().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return self._lookup()[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._lookup()

    def getall(self, key: str) -> list[str]:
        wanted = key.lower()
        return [value for k, value in self.pairs if k.lower() == wanted]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.pairs)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Frame):
            return self.pairs == other.pairs
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.pairs)

    def __repr__(self) -> str:
        return f"Frame({self.pairs!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return Frame, (self.pairs,)

    @property
    def event(self) -> str | None:
        text = self._text
        if text is not None and text.startswith("Event: "):
            return _first_line(text, 7)
        return self.get("Event")

    @property
    def is_event(self) -> bool:
        """Cheaper than ``event is not None`` for the reader's reply-or-event check."""
        text = self._text
        if text is not None and text.startswith("Event: "):
            return True
        return self.get("Event") is not None

    @property
    def response(self) -> str | None:
        text = self._text
        if text is not None and text.startswith("Response: "):
            return _first_line(text, 10)
        return self.get("Response")

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    def encode(self) -> bytes:
        """Serialise as AMI wire bytes (CRLF lines, blank-line terminator)."""
        body = "".join(f"{key}: {value}\r\n" for key, value in self.pairs)
        return (body + "\r\n").encode("utf-8")


def _first_line(text: str, start: int) -> str:
    eol = text.find("\n")
    if eol < 0:
        return text[start:]
    return text[start : eol - 1 if text[eol - 1] == "\r" else eol]


def _index_text(text: str) -> dict[str, str] | None:
    """Fields by lower-case key straight from well-formed text (the hot path of every
    event the normaliser reads); None when the text needs the careful :func:`split_pairs`."""
    index: dict[str, str] = {}
    for line in text.split("\r\n"):
        key, sep, value = line.partition(": ")
        if sep:
            key = key.lower()
            if key not in index:
                index[key] = value
        elif line:
            return None  # a bare-LF line, a key without a space, command output
    return index


def split_pairs(text: str) -> Pairs:
    if text.startswith("Response: Follows"):
        return _follows_pairs(text)
    lines = text.split("\r\n")
    if text.count("\n") >= len(lines):
        # Some lines end in a bare LF: fall back to splitting on LF alone.
        lines = text.replace("\r\n", "\n").split("\n")
    pairs: list[tuple[str, str]] = []
    append = pairs.append
    for line in lines:
        key, sep, value = line.partition(": ")
        if sep:
            append((key, value))
        elif line:
            append(_odd_line(line))
    return tuple(pairs)


def _odd_line(line: str) -> tuple[str, str]:
    """A line without ``": "``: ``Key:``, ``Key:value`` or a bare output line."""
    key, sep, value = line.partition(":")
    if sep and key and not any(c.isspace() for c in key):
        return key, value.lstrip(" ")
    # Legacy command output has no key; filing it under Output matches what
    # modern Asterisk sends (``Output: <line>``), so readers handle one shape.
    return "Output", line.rstrip("\r")


def _follows_pairs(text: str) -> Pairs:
    """Legacy command output: CRLF headers, LF output lines, ``--END COMMAND--``."""
    pairs: list[tuple[str, str]] = []
    in_headers = True
    for line in text.split("\n"):
        if in_headers and line.endswith("\r"):
            key, sep, value = line[:-1].partition(": ")
            if sep:
                pairs.append((key, value))
                continue
        in_headers = False
        line = line.rstrip("\r")
        if line.endswith("--END COMMAND--"):
            if line := line[: -len("--END COMMAND--")]:
                pairs.append(("Output", line))
            break
        pairs.append(("Output", line))
    return tuple(pairs)
