"""Incremental AMI stream parser: TCP bytes in, :class:`Frame` objects out.

Reads arrive cut at arbitrary byte boundaries, so bytes are buffered and only
a *complete* frame is decoded (a UTF-8 character may straddle two reads).
This sits on the hot path of every event the PBX emits, so the work per read
is a handful of C-level searches plus one decode and one split per frame;
nothing walks the data byte by byte in Python.

A consumer that uses only some events names them (``events``): an event frame
with any other name is counted and dropped on sight of its first line, before
a :class:`Frame` is built.  Once the filter has seen each first line of a read
(``Event: VarSet``, ...), the read is sorted by C-level ``map`` and ``compress``
alone, so the bulk of a PBX's chatter (VarSet, Newexten, DeviceStateChange, ...)
runs no Python code per frame.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from itertools import compress, repeat
from operator import itemgetter

from cti.frames import Frame

__all__ = ["DEFAULT_MAX_FRAME_BYTES", "FrameParser"]

log = logging.getLogger(__name__)

DEFAULT_MAX_FRAME_BYTES = 1 << 20

_CRLF_END = b"\r\n\r\n"
# A bare-LF blank line.  A pattern, not bytes.find: in CRLF text every line ends in a
# partial match of b"\n\n", which makes find crawl; the regex scan takes half the time.
_LF_END = re.compile(rb"\n\n")
# Splits decoded CRLF frames: the pattern's literal scan beats str.split's by 15 % on
# AMI text, where every line end is a partial match of the separator.
_CRLF_SPLIT = re.compile("\r\n\r\n").split
# Fallback only when a read contains bare-LF blank lines; CRLF-only streams never hit it.
_ANY_END = re.compile(rb"\r?\n\r?\n")
# Legacy ``Response: Follows`` command output may contain blank lines, so its
# end is this marker rather than the first blank line.
_FOLLOWS = b"Response: Follows"
_FOLLOWS_TEXT = _FOLLOWS.decode()
_END_COMMAND = b"--END COMMAND--"
# Longest terminator minus one: how far back a terminator split across reads can start.
_OVERLAP = 3
# Distinct spellings of event names remembered by the event filter; more are looked up.
_NAMES_REMEMBERED = 1024
# For _wanted's C-level reading of first lines.
_first = itemgetter(0)


class FrameParser:
    """Turns a byte stream from an AMI socket into frames.

    Feed every read to :meth:`feed`; it returns the frames completed by that
    read.  The banner line (``Asterisk Call Manager/11.0.0``) is not a frame:
    it is exposed as :attr:`banner`.  Frames larger than ``max_frame_bytes``
    are dropped (counted in :attr:`frames_dropped`) and parsing resumes at the
    next blank line, so a misbehaving peer costs memory only up to that limit.

    ``events``: lower-case names of the events to return; other events are
    counted in :attr:`frames_skipped` and never built.  None returns every
    frame.  Responses are always returned.
    """

    __slots__ = (
        "_await_banner",
        "_buf",
        "_events",
        "_kept",
        "_max",
        "_skipping",
        "banner",
        "frames_dropped",
        "frames_skipped",
    )

    def __init__(
        self,
        *,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        expect_banner: bool = True,
        events: Collection[str] | None = None,
    ) -> None:
        self._max = max_frame_bytes
        self._buf = bytearray()
        self._await_banner = expect_banner
        self._skipping = False
        self._events = events
        # "Event: <name>" as spelled -> the name if wanted, else "".  One name object per
        # spelling: the normaliser's look-ups by it then reuse its hash.
        self._kept: dict[str, str] = {}
        self.banner: str | None = None
        self.frames_dropped = 0
        self.frames_skipped = 0

    @property
    def events(self) -> Collection[str] | None:
        return self._events

    @events.setter
    def events(self, events: Collection[str] | None) -> None:
        """Change the filter from the next read on (the AMI client lifts it during lists)."""
        self._events = events
        self._kept = {}

    def feed(self, data: bytes) -> list[Frame]:
        """Consume one read and return the frames it completed, in stream order."""
        buf = self._buf
        # Only bytes near the old tail can start a terminator not yet seen.
        scan = max(len(buf) - _OVERLAP, 0)
        buf += data
        pos = 0
        if self._skipping:
            pos = self._skip_oversized(buf, scan)
            if pos < 0:
                return []
            scan = pos
        if self._await_banner:
            pos = self._take_banner(buf, pos)
            if pos < 0:
                return []
            scan = max(scan, pos)
        last = buf.rfind(_CRLF_END, scan)
        if last >= 0 and last - pos <= self._max and _LF_END.search(buf, scan) is None:
            # Common case: CRLF frames only, all small: decode them in one go.
            if self._events is None:
                if buf.find(_FOLLOWS, pos) >= 0:
                    return self._feed_slowly(buf, pos, scan)
                text = buf[pos:last].decode("utf-8", "replace")
                del buf[: last + 4]
                return [frame for chunk in _CRLF_SPLIT(text) if chunk and (frame := _frame(chunk))]
            frames = self._wanted(_CRLF_SPLIT(buf[pos:last].decode("utf-8", "replace")))
            if frames is None:
                return self._feed_slowly(buf, pos, scan)
            del buf[: last + 4]
            return frames
        return self._feed_slowly(buf, pos, scan)

    def _wanted(self, chunks: list[str]) -> list[Frame] | None:
        """Frames from complete frame texts, skipping events nobody asked for; None when
        legacy command output is among them (its body may hold blank lines, so these
        texts are not its frames: :meth:`_feed_slowly` reads it)."""
        # The filter knows each event by its first line as spelled, so a read of events
        # seen before is sorted without running Python code per frame.  Such a read has
        # no ``Response: Follows`` either: that is never a remembered first line.
        lines = list(map(_first, map(str.partition, chunks, repeat("\r\n"))))
        keep = list(map(self._kept.get, lines))
        if None in keep:
            if any(map(str.startswith, chunks, repeat(_FOLLOWS_TEXT))):
                return None
            # An event not seen before, a response, or a first line to read carefully.
            return self._sift(chunks)
        frames = list(map(from_text, compress(chunks, keep), filter(None, keep)))
        self.frames_skipped += len(chunks) - len(frames)
        return frames

    def _sift(self, chunks: list[str]) -> list[Frame]:
        frames: list[Frame] = []
        kept = self._kept
        skipped = 0
        for chunk in chunks:
            if chunk.startswith("Event: "):
                # "Event: <name>" where the name is what Frame.event reads: the first
                # line without CR/LF.
                eol = chunk.find("\n")
                end = eol if eol < 0 or chunk[eol - 1] != "\r" else eol - 1
                line = chunk[:end] if eol >= 0 else chunk
                known = kept.get(line)
                keep = self._remember(line[7:]) if known is None else bool(known)
                if keep:
                    frames.append(from_text(chunk, line[7:]))
                else:
                    skipped += 1
            elif chunk and (frame := _frame(chunk)):
                if self._wants(frame):
                    frames.append(frame)
                else:
                    skipped += 1
        self.frames_skipped += skipped
        return frames

    def _remember(self, name: str) -> bool:
        events = self._events
        keep = events is None or name.lower() in events
        # A name with an LF would never be a chunk's first line up to its CRLF, as _wanted
        # reads it; keeping it out makes sure a line found in _kept is the whole name.
        # An empty name could not say "wanted" here; it is read the careful way each time.
        if "\n" not in name and name and len(self._kept) < _NAMES_REMEMBERED:
            self._kept["Event: " + name] = name if keep else ""
        return keep

    def _wants(self, frame: Frame) -> bool:
        if self._events is None:
            return True
        name = frame.event
        return name is None or self._remember(name)

    def _feed_slowly(self, buf: bytearray, pos: int, scan: int) -> list[Frame]:
        """Frame by frame: bare-LF blank lines, legacy command output, oversized frames."""
        frames: list[Frame] = []
        while True:
            if buf.startswith(_FOLLOWS, pos):
                body_end = buf.find(_END_COMMAND, pos)
                if body_end < 0:
                    break
                scan = max(scan, body_end)
            match = _ANY_END.search(buf, scan)
            if match is None:
                break
            end, nxt = match.span()
            if end - pos > self._max:
                self._drop(end - pos)
            elif end > pos and (frame := _frame(buf[pos:end].decode("utf-8", "replace"))):
                if self._wants(frame):
                    frames.append(frame)
                else:
                    self.frames_skipped += 1
            pos = scan = nxt
        if len(buf) - pos > self._max:
            # No terminator in sight and already over the limit: stop buffering.
            self._drop(len(buf) - pos)
            self._skipping = True
            del buf[: len(buf) - _OVERLAP]
        elif pos:
            del buf[:pos]
        return frames

    def _take_banner(self, buf: bytearray, pos: int) -> int:
        """Strip the banner line; return where frames start, or -1 to wait for more."""
        eol = buf.find(b"\n", pos)
        if eol < 0:
            if len(buf) - pos > self._max:
                self._drop(len(buf) - pos)
                self._await_banner = False
                self._skipping = True
                del buf[: len(buf) - _OVERLAP]
            return -1
        line = bytes(buf[pos:eol]).rstrip(b"\r")
        if not line:
            return self._take_banner(buf, eol + 1)
        self._await_banner = False
        # A stream that starts straight with a frame (no banner) is parsed as frames.
        if b": " in line:
            return pos
        self.banner = line.decode("utf-8", "replace")
        return eol + 1

    def _skip_oversized(self, buf: bytearray, scan: int) -> int:
        """Discard the rest of an oversized frame; return where the next frame starts."""
        match = _ANY_END.search(buf, scan)
        if match is None:
            del buf[: max(len(buf) - _OVERLAP, 0)]
            return -1
        self._skipping = False
        return match.end()

    def _drop(self, size: int) -> None:
        self.frames_dropped += 1
        log.warning("dropped an AMI frame of %d+ bytes (limit %d)", size, self._max)


def _frame(text: str) -> Frame | None:
    if text[0] in "\r\n":
        # Extra blank lines between frames are noise, not part of the next frame.
        text = text.lstrip("\r\n")
        if not text:
            return None
    return from_text(text)


from_text = Frame.from_text
