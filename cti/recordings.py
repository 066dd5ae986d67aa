"""Recorded Asterisk AMI sessions: loading them and re-issuing their ids.

The recordings (``shared/ami/recordings/*.jsonl``, see its README) are the
ground truth for the parser tests, the PBX simulator and the benchmarks.
Each line is ``{"t": seconds, "dir": "recv" | "send", "raw": frame}``.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cti.frames import Frame
from cti.wire import FrameParser

__all__ = [
    "ENV_VAR",
    "FreshIds",
    "RecordedEvent",
    "Recording",
    "RecordingsNotFoundError",
    "RecvChunk",
    "SentFrame",
    "load_recording",
    "recording_names",
    "recordings_dir",
    "refresh_ids",
]

ENV_VAR = "DESK_AMI_RECORDINGS"

# Events a real server sends to one session right after its login, not to everybody.
_SESSION_START_EVENTS = frozenset({"FullyBooted", "SuccessfulAuth"})
_SESSION_START_WINDOW = 0.05


class RecordingsNotFoundError(FileNotFoundError):
    """The recordings directory or a named recording does not exist."""


@dataclass(frozen=True, slots=True)
class RecvChunk:
    """Bytes the recording client read, at ``t`` seconds into the session."""

    t: float
    data: bytes


@dataclass(frozen=True, slots=True)
class SentFrame:
    """An action the recording client sent."""

    t: float
    frame: Frame


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event from the recording, with the recording client's ActionID if it carried one."""

    t: float
    text: str
    frame: Frame
    reply_to: str | None


@dataclass(frozen=True, slots=True)
class Recording:
    name: str
    path: Path
    recv: tuple[RecvChunk, ...]
    sent: tuple[SentFrame, ...]

    def stream(self) -> bytes:
        """The exact TCP byte stream the recording client read."""
        return b"".join(chunk.data for chunk in self.recv)

    def events(self) -> list[RecordedEvent]:
        """Events in stream order, minus those only the recording's own login caused."""
        action_ids = {sent.frame.action_id for sent in self.sent} - {None}
        login_answered_at: float | None = None
        result: list[RecordedEvent] = []
        for chunk in self.recv:
            parsed = FrameParser(expect_banner=False).feed(chunk.data)
            if len(parsed) != 1:
                continue  # the banner
            frame = parsed[0]
            name = frame.event
            if name is None:
                if frame.get("Message") == "Authentication accepted":
                    login_answered_at = chunk.t
                continue
            if (
                name in _SESSION_START_EVENTS
                and login_answered_at is not None
                and chunk.t - login_answered_at <= _SESSION_START_WINDOW
            ):
                continue
            aid = frame.action_id
            text = chunk.data.decode("utf-8")
            result.append(RecordedEvent(chunk.t, text, frame, aid if aid in action_ids else None))
        return result


def recordings_dir() -> Path:
    """``$DESK_AMI_RECORDINGS``, else ``shared/ami/recordings`` beside the repository."""
    override = os.environ.get(ENV_VAR)
    if override:
        path = Path(override).expanduser()
    else:
        path = Path(__file__).resolve().parent.parent.parent / "shared" / "ami" / "recordings"
    if not path.is_dir():
        raise RecordingsNotFoundError(
            f"AMI recordings not found at {path}; set {ENV_VAR} to the directory "
            "holding the *.jsonl recordings"
        )
    return path


def recording_names() -> list[str]:
    return sorted(path.stem for path in recordings_dir().glob("*.jsonl"))


def load_recording(path_or_name: str | os.PathLike[str]) -> Recording:
    """Load a recording by path, or by scenario name from :func:`recordings_dir`."""
    path = Path(path_or_name)
    if path.suffix != ".jsonl" and len(path.parts) == 1:
        path = recordings_dir() / f"{path.name}.jsonl"
    if not path.is_file():
        raise RecordingsNotFoundError(f"AMI recording {path} does not exist")
    recv: list[RecvChunk] = []
    sent: list[SentFrame] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                t, direction, raw = float(entry["t"]), entry["dir"], entry["raw"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not a recording line: {exc}") from exc
            if direction == "recv":
                recv.append(RecvChunk(t, raw.encode("utf-8")))
            elif direction == "send":
                frames = FrameParser(expect_banner=False).feed(raw.encode("utf-8"))
                sent.extend(SentFrame(t, frame) for frame in frames)
            else:
                raise ValueError(f"{path}:{number}: unknown direction {direction!r}")
    return Recording(path.stem, path, tuple(recv), tuple(sent))


class FreshIds:
    """Hands out ids no recording and no earlier generated call has used."""

    def __init__(self) -> None:
        self._epoch = int(time.time())
        self._sequence = itertools.count(1)
        self._channel = itertools.count(0x100000)
        self._caller = itertools.count(1)

    def uniqueid(self) -> str:
        return f"{self._epoch}.{next(self._sequence)}"

    def channel_suffix(self) -> str:
        return f"{next(self._channel):08x}"

    def caller_number(self, like: str) -> str:
        """A new number in the same shape (international ``+`` or national ``0``)."""
        serial = next(self._caller) % 10**7
        return f"+49301{serial:07d}" if like.startswith("+") else f"0301{serial:07d}"


_UNIQUEID = re.compile(r"\d+\.\d+")
_CHANNEL_SUFFIX = re.compile(r"(?<=[\w/])-([0-9a-f]{8})\b")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_PHONE = re.compile(r"[+0]\d{6,}")


def _lookup(table: dict[str, str]) -> Callable[[re.Match[str]], str]:
    return lambda match: table[match.group(0)]


def refresh_ids(texts: Sequence[str], ids: FreshIds, *, new_callers: bool = True) -> list[str]:
    """Rewrite one call's frames so it is a new, distinct call.

    Uniqueid/Linkedid (and Dest*), channel-name suffixes, bridge ids and (with
    ``new_callers``) the trunk caller's number are each mapped to fresh values
    consistently across all ``texts``, so the frames still describe one
    coherent call.
    """
    uniqueids: dict[str, str] = {}
    callers: dict[str, str] = {}
    for text in texts:
        on_trunk = "Channel: PJSIP/trunk-" in text
        for line in text.split("\r\n"):
            key, _, value = line.partition(": ")
            lowered = key.lower()
            if lowered.endswith(("uniqueid", "linkedid")) and _UNIQUEID.fullmatch(value):
                uniqueids.setdefault(value, "")
            elif new_callers and on_trunk and lowered == "calleridnum" and _PHONE.fullmatch(value):
                callers.setdefault(value, "")
    for old in uniqueids:
        uniqueids[old] = ids.uniqueid()
    for old in callers:
        callers[old] = ids.caller_number(like=old)
    suffixes: dict[str, str] = {}
    bridges: dict[str, str] = {}

    def new_suffix(match: re.Match[str]) -> str:
        old = match.group(1)
        if old not in suffixes:
            suffixes[old] = ids.channel_suffix()
        return "-" + suffixes[old]

    def new_bridge(match: re.Match[str]) -> str:
        return bridges.setdefault(match.group(0), str(uuid.uuid4()))

    substitutions: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
        (_CHANNEL_SUFFIX, new_suffix),
        (_UUID, new_bridge),
    ]
    for mapping in (uniqueids, callers):
        if mapping:
            alternatives = "|".join(
                re.escape(old) for old in sorted(mapping, key=len, reverse=True)
            )
            pattern = re.compile(rf"(?<![\w.+])(?:{alternatives})(?![\w.])")
            substitutions.append((pattern, _lookup(mapping)))
    result = []
    for text in texts:
        for pattern, replace in substitutions:
            text = pattern.sub(replace, text)
        result.append(text)
    return result
