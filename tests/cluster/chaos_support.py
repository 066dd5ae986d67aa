"""What the chaos test (tests/cluster/test_chaos.py) measures with, and how it
decides which calls the desk could know.

Asterisk does not replay events: a desk learns of a call from the events written
to its AMI session while it is logged in, and from the resync lists it asks for
after each login (the channels live at that moment).  So the simulator here keeps
its own record of every AMI session (logged in, resync answered, closed) and of
every call (first and last frame written), and :func:`classify` decides from
those alone, not from anything the desk says.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import socketio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from cti.frames import Frame
from cti.simulator import PbxSimulator
from desk.models import Call

# The last of the lists PbxLink asks for after a login (cti/link.py RESYNC_LISTS): the
# resync is applied once all of them have been answered.
LAST_RESYNC_LIST = "queuesummary"


@dataclass
class AmiSession:
    """One AMI connection to the simulator, in ``time.monotonic()`` seconds."""

    opened: float
    logged_in: float | None = None
    resynced: float | None = None  # the last resync list answered
    closed: float | None = None


@dataclass
class CallSpan:
    """A generated call: when its first and last frame were written."""

    first: float
    last: float


class WatchedSimulator(PbxSimulator):
    """A PbxSimulator that records its AMI sessions and the life of every call."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sessions: dict[asyncio.StreamWriter, AmiSession] = {}
        self.calls: dict[str, CallSpan] = {}
        self.cuts = 0

    def _broadcast(self, text: str, frame: Frame) -> None:
        linkedid = frame.get("Linkedid")
        if linkedid:
            now = time.monotonic()
            span = self.calls.get(linkedid)
            if span is None:
                self.calls[linkedid] = CallSpan(now, now)
            else:
                span.last = now
        super()._broadcast(text, frame)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        record = self.sessions[writer] = AmiSession(opened=time.monotonic())
        try:
            await super()._serve(reader, writer)
        finally:
            if record.closed is None:
                record.closed = time.monotonic()

    async def _login(self, session: Any, frame: Frame, aid: list[tuple[str, str]]) -> None:
        await super()._login(session, frame, aid)
        record = self.sessions.get(session.writer)
        if record is not None and session.logged_in:
            record.logged_in = time.monotonic()

    def _send_list(
        self, session: Any, action: str, frame: Frame, aid: list[tuple[str, str]]
    ) -> None:
        super()._send_list(session, action, frame, aid)
        record = self.sessions.get(session.writer)
        if record is not None and action == LAST_RESYNC_LIST and record.resynced is None:
            record.resynced = time.monotonic()

    def cut_link(self) -> bool:
        """Cut every connection (``drop_link``); whether a logged-in one was among them."""
        now = time.monotonic()
        cut = False
        for writer, record in self.sessions.items():
            if record.closed is None and not writer.transport.is_closing():
                record.closed = now
                cut = cut or record.logged_in is not None
        self.cuts += cut
        self.drop_link()
        return cut

    def resynced_since(self) -> float | None:
        """When the open session that is logged in got its resync lists answered."""
        for record in list(self.sessions.values()):
            if record.closed is None and record.resynced is not None:
                return record.resynced
        return None


@dataclass(frozen=True)
class Window:
    """From a session's resync to its end: every call live in it reached the desk."""

    start: float
    end: float


@dataclass(frozen=True)
class Verdict:
    """Each generated call, by what the desk could know of it."""

    expected: frozenset[str]  # overlapped a window: must be in the call log
    at_risk: frozenset[str]  # reached a desk only just before its link or process died
    in_gaps: frozenset[str]  # began and ended while no desk was linked: invisible


def windows(
    sessions: Iterable[AmiSession], kills: Sequence[float], *, grace: float
) -> list[Window]:
    """Each resynced session's window, ended ``grace`` seconds early.

    A cut ends a session, not its process: what the process saw it still writes,
    but frames in flight when the link was cut may be lost.  A SIGKILL ends the
    process holding the link, and with it every session it had (only the holder
    connects, and the holder changes only when it dies): what it saw and had not
    yet written is gone, and Asterisk sends none of it again.  So a killed
    process's windows all end ``grace`` seconds before its death at the latest.
    """
    out = []
    for session in sessions:
        if session.resynced is None or session.logged_in is None:
            continue
        end = session.closed if session.closed is not None else float("inf")
        death = min((k for k in kills if k >= session.logged_in), default=float("inf"))
        out.append(Window(session.resynced, min(end, death) - grace))
    return out


def classify(
    calls: dict[str, CallSpan],
    sessions: Iterable[AmiSession],
    kills: Sequence[float],
    *,
    grace: float,
) -> Verdict:
    sessions = list(sessions)
    sure = windows(sessions, kills, grace=grace)
    ever = windows(sessions, kills, grace=0.0)

    def overlaps(span: CallSpan, spans: list[Window]) -> bool:
        return any(span.first < w.end and span.last >= w.start for w in spans)

    expected = {c for c, span in calls.items() if overlaps(span, sure)}
    seen = {c for c, span in calls.items() if overlaps(span, ever)}
    return Verdict(
        expected=frozenset(expected),
        at_risk=frozenset(seen - expected),
        in_gaps=frozenset(set(calls) - seen),
    )


@dataclass
class PopCounter:
    """An agent's browser: socket.io over websocket, reconnecting by itself when its
    process goes (a replacement comes up on the same port), counting every
    ``screen_pop`` by (call, phase)."""

    who: str
    url: str
    token: str
    pops: Counter[tuple[str, str]] = field(default_factory=Counter)
    boards: int = 0
    connects: int = 0
    sio: socketio.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.sio = socketio.AsyncClient(
            reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1.0
        )
        self.sio.on("screen_pop", self._on_pop)
        self.sio.on("board", self._on_board)
        self.sio.on("connect", self._on_connect)

    async def _on_pop(self, data: dict[str, Any]) -> None:
        self.pops[(str(data["call_id"]), str(data["phase"]))] += 1

    async def _on_board(self, _data: object) -> None:
        self.boards += 1

    async def _on_connect(self) -> None:
        self.connects += 1

    async def connect(self) -> None:
        await self.sio.connect(
            self.url, auth={"token": self.token}, transports=["websocket"], wait_timeout=10
        )

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.sio.disconnect()

    def twice(self) -> list[tuple[str, str]]:
        return [key for key, n in self.pops.items() if n > 1]


class EndsWritten:
    """When each call's end first shows in the call log (polled every ``every``
    seconds): how far the process holding the link ran behind the PBX, which is what
    a SIGKILL can lose."""

    def __init__(self, engine: AsyncEngine, *, every: float = 0.5) -> None:
        self._engine, self._every = engine, every
        self.seen: dict[str, float] = {}

    async def run(self) -> None:
        while True:
            async with self._engine.connect() as conn:
                ended = await conn.scalars(select(Call.call_id).where(Call.ended_at.is_not(None)))
                now = time.monotonic()
                for call_id in ended:
                    self.seen.setdefault(call_id, now)
            await asyncio.sleep(self._every)

    def behind(self, calls: dict[str, CallSpan]) -> list[float]:
        """Seconds from each call's last frame to its end in the log, sorted."""
        return sorted(at - calls[c].last for c, at in self.seen.items() if c in calls)
