"""AMI frames: the one shape raw AMI data has inside calldesk.

A frame is an ordered list of ``(key, value)`` pairs exactly as Asterisk sent
them.  Keys repeat (``ChanVariable``, ``Variable``) and values can be empty
(``AccountCode: ``), so a plain ``dict`` would lose data.  Look-ups ignore key
case because Asterisk has changed key capitalisation between versions.

Frames read off the wire keep their text and split it only when a field is
asked for; most of the stream (``VarSet``, ``Newexten``, ...) is dropped by
``cti.wire`` after a look at the event name, before any frame is built.
Only ``cti.normalise`` and the AMI client look inside frames.

A reader that wants the same few fields from thousands of frames names them
once in a :class:`FieldSet` and calls :meth:`Frame.pick`.  Asterisk writes
every event of one kind with the same keys in the same order, so the layout of
a well-formed frame is learned once per event name (and field set) and later
frames are read by one precompiled pattern instead of being split line by
line; a frame that does not fit a learned layout is read the careful way.
Either way ``pick`` returns exactly what :meth:`Frame.get` would.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from operator import itemgetter
from typing import Any

Pairs = tuple[tuple[str, str], ...]
Picked = tuple[str | None, ...]


class FieldSet:
    """Field names (any case) that a reader picks from many frames, in its order."""

    __slots__ = ("_layouts", "names")

    def __init__(self, *names: str) -> None:
        self.names = tuple(name.lower() for name in names)
        # Readers of the layouts learned for these fields, by event name (see _LayoutBook).
        self._layouts: dict[str, list[_Reader]] = {}

    def __repr__(self) -> str:
        return f"FieldSet{self.names!r}"


class Frame:
    """One AMI message (response, event or action); read-only once built."""

    __slots__ = ("_event", "_index", "_pairs", "_text")

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._pairs: Pairs | None = tuple(pairs)
        self._text: str | None = None
        self._index: dict[str, str] | None = None
        self._event: str | None = None

    @classmethod
    def of(cls, **fields: str) -> Frame:
        return cls(tuple(fields.items()))

    @classmethod
    def from_text(cls, text: str, event: str | None = None) -> Frame:
        """A frame over one complete frame's decoded text (lines ending in CRLF).

        ``event``: the name on the first line (``Event: <name>``), when the
        caller has already read it.
        """
        frame = cls.__new__(cls)
        frame._text = text
        frame._pairs = None
        frame._index = None
        frame._event = event
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

    def pick(self, fields: FieldSet) -> Picked:
        """The value of each of ``fields`` as :meth:`get` finds it (None where absent)."""
        text = self._text
        if self._index is None and self._pairs is None and text is not None:
            event = self.event
            if event is not None:
                # Inline, the usual case: the frame fits the layout its kind had last time.
                readers = fields._layouts.get(event)
                if readers:
                    fullmatch, getter = readers[0]
                    match = fullmatch(text)
                    if match is not None:
                        return getter(match.groups())
                values = _LAYOUTS.pick(text, event, fields, readers)
                if values is not None:
                    return values
        return tuple(map(self._lookup().get, fields.names))

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
        if self._event is not None:
            return self._event
        text = self._text
        if text is not None and text.startswith("Event: "):
            return _first_line(text, 7)
        pairs = self._pairs
        if pairs and pairs[0][0].lower() == "event":
            return pairs[0][1]  # the first pair is the first occurrence get() would find
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
    """The rest of the first line from ``start``, without its CRLF or LF."""
    eol = text.find("\n")
    if eol < 0:
        return text[start:]
    return text[start : eol - 1 if text[eol - 1] == "\r" else eol]


def _index_text(text: str) -> dict[str, str] | None:
    """Fields by lower-case key straight from well-formed text (the hot path of every
    event the normaliser reads); None when the text needs the careful :func:`split_pairs`."""
    lines = text.split("\r\n")
    if text.count("\n") >= len(lines) or text.startswith(_FOLLOWS):
        return None  # a bare LF or command output: split_pairs reads those differently
    index: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition(": ")
        if sep:
            key = key.lower()
            if key not in index:
                index[key] = value
        elif line:
            return None  # a bare-LF line, a key without a space, command output
    return index


_FOLLOWS = "Response: Follows"


def split_pairs(text: str) -> Pairs:
    if text.startswith(_FOLLOWS):
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


# -- learned layouts -------------------------------------------------------------------

# Layouts kept per kind (event name and field set: Asterisk writes a few variants, e.g.
# DialBegin with and without a calling channel) and kinds kept; bounds for a hostile peer.
_LAYOUTS_PER_KIND = 4
_KINDS_WITH_LAYOUTS = 256
# Once a kind has its full set of layouts, only every n-th misfit may replace one,
# so a peer alternating layouts cannot make every frame pay for a compile.
_RELEARN_EVERY = 64
# A group that never takes part in a match: where a picked field is absent, the
# reader fetches this group and gets None, as ``dict.get`` would.
_ABSENT = "(?:(?!)())?"


_Reader = tuple[Callable[[str], "re.Match[str] | None"], Callable[[Any], Picked]]


def _reader(keys: tuple[str, ...], fields: FieldSet) -> _Reader:
    """A pattern over a whole frame laid out as ``keys`` (exactly as written) that
    captures the first line of each of ``fields``, and the getter putting them in order."""
    wanted = set(fields.names)
    group: dict[str, int] = {}
    lines = []
    for key in keys:
        name = key.lower()
        # ``.`` stops at LF, so each value stays on its line, CR included as str.split
        # keeps it; any blank, key-less or bare-LF line makes the match fail.
        if name in wanted and name not in group:
            group[name] = len(group)
            lines.append(re.escape(key) + ": (.*)")
        else:
            lines.append(re.escape(key) + ": .*")
    fullmatch = re.compile("\r\n".join(lines) + _ABSENT).fullmatch
    at = [group.get(name, len(group)) for name in fields.names]
    if len(at) == 1:
        only = at[0]
        return fullmatch, lambda groups: (groups[only],)
    return fullmatch, itemgetter(*at)


def _layout_of(text: str) -> tuple[str, ...] | None:
    """The keys of a frame made only of ``Key: value`` CRLF lines, else None."""
    if "\n" in text.replace("\r\n", ""):
        return None
    keys = []
    for line in text.split("\r\n"):
        key, sep, _ = line.partition(": ")
        if not sep:
            return None
        keys.append(key)
    return tuple(keys)


class _LayoutBook:
    """Learns layouts; each kind's readers live in its FieldSet, most recently matched first."""

    __slots__ = ("_kinds", "_misfits")

    def __init__(self) -> None:
        self._kinds = 0
        self._misfits: dict[tuple[str, FieldSet], int] = {}

    def pick(
        self, text: str, event: str, fields: FieldSet, readers: list[_Reader] | None
    ) -> Picked | None:
        """Values by a reader of ``readers`` other than the first (which did not fit), or by
        a reader learned from ``text``; None where no reader fits."""
        if readers:
            for position in range(1, len(readers)):
                fullmatch, getter = readers[position]
                match = fullmatch(text)
                if match is not None:
                    readers.insert(0, readers.pop(position))
                    return getter(match.groups())
        reader = self._learn(text, event, fields, readers)
        if reader is None:
            return None
        match = reader[0](text)
        return None if match is None else reader[1](match.groups())

    def _learn(
        self, text: str, event: str, fields: FieldSet, readers: list[_Reader] | None
    ) -> _Reader | None:
        if readers is None:
            if self._kinds >= _KINDS_WITH_LAYOUTS:
                return None
            self._kinds += 1
            readers = fields._layouts[event] = []
        elif len(readers) >= _LAYOUTS_PER_KIND:
            kind = (event, fields)
            misfits = self._misfits[kind] = self._misfits.get(kind, 0) + 1
            if misfits % _RELEARN_EVERY:
                return None
        keys = _layout_of(text)
        if keys is None:
            return None
        reader = _reader(keys, fields=fields)
        if len(readers) >= _LAYOUTS_PER_KIND:
            readers.pop()
        readers.insert(0, reader)
        return reader


_LAYOUTS = _LayoutBook()
