"""CTI ingest benchmark: our AMI client against ``asterisk-ami`` and ``panoramisk``.

Run::

    .venv/bin/python -m bench.ingest [--runs 5] [--repeat 20] [--write-docs]

Workload: every ``Event`` frame Asterisk wrote in the recordings
(``shared/ami/recordings``), with fresh ids per repetition so the tracker sees
distinct calls, repeated ``--repeat`` times, plus one frame carrying ``Zoë``.
A small AMI server in a child process (so it does not compete with the client
for the GIL) answers Login and then writes that byte stream in 64 KiB writes,
one write boundary falling inside the ``ë``, and closes.

Each contender reads the same stream end to end and hands the frames of the
events the desk reads (:data:`cti.normalise.EVENT_NAMES`, plus the benchmark's
own ``UserEvent`` end marker), as :class:`cti.frames.Frame`, to the same
downstream: ``normalise`` then ``CallTracker.apply``.  Every contender skips the
other events by name as early as its library allows: ours in the parser (the
production path: ``AmiClient(events=...)``), asterisk-ami and panoramisk in the
event callback, before converting anything, after the library has built its
own object for the frame.  Wall time runs from connect to the last frame
processed; runs are interleaved, and each starts with the normaliser's channel
memory empty (``forget_channels``): the stream is the same in every run, and a
channel remembered from the run before would be a hit no live PBX gives.

Separately, and untimed, the script checks the correctness facts the choice
depends on: split UTF-8, list responses, a raising callback, a quiet link and
unanswered Pings.  ``--write-docs`` writes the results into
``docs/benchmarks.md`` between ``<!-- ingest:begin -->`` and ``<!-- ingest:end -->``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import logging
import multiprocessing
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

from bench.report import DOC, cpu_model, library_versions, load_average, write_section
from cti.ami import AmiClient, LinkState, LinkStatus
from cti.frames import Frame
from cti.normalise import EVENT_NAMES, forget_channels, normalise
from cti.recordings import FreshIds, load_recording, recording_names, refresh_ids
from cti.tracker import CallTracker
from cti.wire import FrameParser

try:
    from asterisk.ami import (  # type: ignore[import-untyped]
        AMIClient,
        AutoReconnect,
        SimpleAction,
    )
    from panoramisk import Manager  # type: ignore[import-untyped]
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise SystemExit(
        f"bench.ingest compares against asterisk-ami and panoramisk ({exc}); "
        "install them: .venv/bin/pip install asterisk-ami panoramisk"
    ) from exc

HOST = "127.0.0.1"
SECRET = "bench"
TRUNKS = frozenset({"PJSIP/trunk"})
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
CHUNK = 64 * 1024
RUN_LIMIT = 60.0  # one contender's timed run
SESSION_LIMIT = RUN_LIMIT + 10.0  # one server session
SERVER_LIFETIME = 600.0  # the child process ends by itself after this, whatever happens
QUIET_S = 4.0  # silence before the server speaks in the quiet-link check
PING_WINDOW = 5.0
UTF8_NAME = "Zoë Mustermann"
UTF8_FRAME = (
    "Event: UserEvent\r\nPrivilege: user,all\r\nUserEvent: BenchUtf8\r\n"
    f"CallerIDName: {UTF8_NAME}\r\n\r\n"
)
CONTENDERS = ("ours", "asterisk-ami", "panoramisk")
# What the ingest consumer reads: the events normalise uses, and UserEvent, the end
# marker that carries the Zoë check.  Every contender skips the rest by name.
WANTED = EVENT_NAMES | {"userevent"}

log = logging.getLogger("bench.ingest")


# -- workload --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Workload:
    stream: bytes
    frames: int
    wanted: int  # frames whose event is in WANTED
    split_at: int  # byte offset inside the UTF-8 ``ë``: a write boundary
    recordings: int
    per_repeat: int
    repeat: int
    list_action_id: str
    list_reply: tuple[str, ...]  # the recorded CoreShowChannels answer


def build_workload(repeat: int) -> Workload:
    """The recorded event mix ``repeat`` times with fresh ids, then the ``Zoë`` frame."""
    recordings = [load_recording(name) for name in recording_names()]
    mixes = [
        [chunk.data.decode("utf-8") for chunk in rec.recv if chunk.data.startswith(b"Event: ")]
        for rec in recordings
    ]
    per_repeat = sum(len(mix) for mix in mixes)
    ids = FreshIds()
    parts: list[str] = []
    for _ in range(repeat):
        for mix in mixes:
            parts.extend(refresh_ids(mix, ids))
    parts.append(UTF8_FRAME)
    wanted = sum(part[7 : part.index("\r\n")].lower() in WANTED for part in parts)
    stream = "".join(parts).encode("utf-8")
    split_at = stream.rindex("ë".encode()) + 1
    snapshot = load_recording("resync_snapshot_after_reconnect")
    action_id = next(
        sent.frame.action_id or ""
        for sent in snapshot.sent
        if sent.frame.get("Action") == "CoreShowChannels"
    )
    reply = tuple(
        chunk.data.decode("utf-8")
        for chunk in snapshot.recv
        if f"ActionID: {action_id}\r\n".encode() in chunk.data
    )
    return Workload(
        stream=stream,
        frames=len(parts),
        wanted=wanted,
        split_at=split_at,
        recordings=len(recordings),
        per_repeat=per_repeat,
        repeat=repeat,
        list_action_id=action_id,
        list_reply=reply,
    )


# -- the AMI server (child process) ----------------------------------------------------


def _encode(*pairs: tuple[str, str]) -> bytes:
    return Frame(pairs).encode()


def _user_event(name: str) -> bytes:
    return _encode(("Event", "UserEvent"), ("Privilege", "user,all"), ("UserEvent", name))


def _reply(action_id: str | None, response: str, *extra: tuple[str, str]) -> bytes:
    aid = () if action_id is None else (("ActionID", action_id),)
    return _encode(("Response", response), *aid, *extra)


class _BenchPbx:
    """Answers Login, Ping, CoreShowChannels and Logoff; the Username picks the script.

    ``stream`` writes the workload and closes; ``utf8``, ``raise``, ``quiet``,
    ``noping`` and ``list`` drive the correctness checks.
    """

    def __init__(self, workload: Workload) -> None:
        self.workload = workload

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(SESSION_LIMIT):
                await self._session(reader, writer)
        except (OSError, TimeoutError):
            pass  # the client went away or overstayed
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(BANNER)
        parser = FrameParser(expect_banner=False)
        script: asyncio.Task[None] | None = None
        mode = ""
        try:
            for _ in range(100_000):  # actions per session; far above any check's needs
                data = await reader.read(65536)
                if not data:
                    return
                for action in parser.feed(data):
                    name = (action.get("Action") or "").lower()
                    aid = action.action_id
                    if name == "login":
                        mode = action.get("Username") or ""
                        writer.write(_reply(aid, "Success", ("Message", "Authentication accepted")))
                        if script is None:
                            script = asyncio.create_task(self._script(mode, writer))
                    elif name == "ping":
                        if mode != "noping":
                            stamp = ("Timestamp", f"{time.time():.6f}")
                            writer.write(_reply(aid, "Success", ("Ping", "Pong"), stamp))
                    elif name == "coreshowchannels":
                        old = f"ActionID: {self.workload.list_action_id}\r\n"
                        new = f"ActionID: {aid}\r\n"
                        writer.write(
                            "".join(t.replace(old, new) for t in self.workload.list_reply).encode()
                        )
                    elif name == "logoff":
                        bye = ("Message", "Thanks for all the fish.")
                        writer.write(_reply(aid, "Goodbye", bye))
                        return
                    else:
                        writer.write(_reply(aid, "Error", ("Message", "Invalid/unknown command")))
        finally:
            if script is not None:
                script.cancel()
                await asyncio.gather(script, return_exceptions=True)

    async def _script(self, mode: str, writer: asyncio.StreamWriter) -> None:
        if mode == "stream":
            data, split = self.workload.stream, self.workload.split_at
            cuts = [*range(0, split, CHUNK), split, len(data)]
            for start, end in itertools.pairwise(cuts):
                writer.write(data[start:end])
                await writer.drain()
            writer.close()
        elif mode == "utf8":
            raw = UTF8_FRAME.encode()
            cut = raw.index("ë".encode()) + 1
            writer.write(raw[:cut])
            await writer.drain()
            await asyncio.sleep(0.3)  # the client surely read the first half on its own
            writer.write(raw[cut:] + _user_event("End"))
        elif mode == "raise":
            writer.write(_user_event("A") + _user_event("Boom") + _user_event("C"))
            await asyncio.sleep(0.3)
            writer.write(_user_event("D"))
            await asyncio.sleep(0.3)
            writer.write(_user_event("End"))
        elif mode == "quiet":
            await asyncio.sleep(QUIET_S)
            writer.write(_user_event("End"))
        elif mode == "noping":
            for _ in range(int(PING_WINDOW * 4)):  # keeps the link busy, so only Ping matters
                writer.write(_user_event("Tick"))
                await asyncio.sleep(0.5)


def _serve(workload: Workload, conn: Connection) -> None:
    """Child process entry: serve on a free port, report it, live at most SERVER_LIFETIME."""

    async def main() -> None:
        pbx = _BenchPbx(workload)
        server = await asyncio.start_server(pbx.handle, HOST, 0)
        conn.send(server.sockets[0].getsockname()[1])
        conn.close()
        async with server:
            await asyncio.sleep(SERVER_LIFETIME)

    asyncio.run(main())


@contextlib.contextmanager
def bench_server(workload: Workload) -> Iterator[int]:
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_serve, args=(workload, sender), daemon=True)
    process.start()
    try:
        if not receiver.poll(30):
            raise RuntimeError("the benchmark AMI server did not start")
        port: int = receiver.recv()
        yield port
    finally:
        process.terminate()
        process.join(5)


# -- the shared downstream -------------------------------------------------------------


def from_asterisk_ami(event: Any) -> Frame:
    """asterisk-ami's Event (name + dict; ``*ChanVariable`` as a nested dict) as a Frame."""
    pairs: list[tuple[str, str]] = [("Event", event.name)]
    for key, value in event.keys.items():
        if isinstance(value, dict):
            pairs.extend((key, f"{k}={v}") for k, v in value.items())
        else:
            pairs.append((key, value))
    return Frame(tuple(pairs))


def from_panoramisk(message: Any) -> Frame:
    """panoramisk's Message (case-insensitive dict; repeated keys as lists) as a Frame."""
    pairs: list[tuple[str, str]] = []
    for key, value in message.items():
        if key == "content":
            continue  # the response body slot panoramisk adds to every message
        if isinstance(value, list):
            pairs.extend((key, v) for v in value)
        else:
            pairs.append((key, value))
    return Frame(tuple(pairs))


class _Sink:
    """Counts what it is handed; done after ``expected`` items of a ``frames``-frame stream."""

    __slots__ = (
        "count",
        "events",
        "expected",
        "facts",
        "finished_at",
        "frames",
        "last",
        "on_done",
    )

    def __init__(self, frames: int, expected: int, on_done: Callable[[], object]) -> None:
        self.frames = frames
        self.expected = expected
        self.on_done = on_done
        self.count = self.events = self.facts = 0
        self.finished_at: float | None = None
        self.last: Frame | None = None


class Downstream(_Sink):
    """normalise + CallTracker for every frame handed over (the WANTED ones)."""

    __slots__ = ("tracker",)

    def __init__(self, frames: int, expected: int, on_done: Callable[[], object]) -> None:
        super().__init__(frames, expected, on_done)
        self.tracker = CallTracker(trunks=TRUNKS)

    def __call__(self, frame: Frame) -> None:
        self.last = frame
        event = normalise(frame, received_at=datetime.now(UTC))
        if event is not None:
            self.events += 1
            self.facts += len(self.tracker.apply(event))
        self.count += 1
        if self.count == self.expected:
            self.finished_at = time.perf_counter()
            self.on_done()


class Tally(_Sink):
    """AMI layer alone: counts whatever the library hands over, converts and parses nothing."""

    __slots__ = ()

    def __call__(self, item: object) -> None:
        self.count += 1
        if self.count == self.expected:
            self.finished_at = time.perf_counter()
            self.on_done()


def _sink(workload: Workload, on_done: Callable[[], object], *, full: bool) -> Downstream | Tally:
    if full:
        return Downstream(workload.frames, workload.wanted, on_done)
    return Tally(workload.frames, workload.frames, on_done)


@dataclass(frozen=True, slots=True)
class RunResult:
    contender: str
    full: bool  # False: the AMI layer alone
    seconds: float | None
    frames: int  # in the stream: each contender read and parsed all of them
    delivered: int
    expected: int
    events: int
    facts: int
    utf8: str | None
    error: str | None

    @property
    def fps(self) -> float | None:
        return None if self.seconds is None else self.frames / self.seconds


def _result(name: str, sink: _Sink, start: float, ended: Sequence[str]) -> RunResult:
    return RunResult(
        contender=name,
        full=isinstance(sink, Downstream),
        seconds=None if sink.finished_at is None else sink.finished_at - start,
        frames=sink.frames,
        delivered=sink.count,
        expected=sink.expected,
        events=sink.events,
        facts=sink.facts,
        utf8=None if sink.last is None else sink.last.get("CallerIDName"),
        error=None if sink.finished_at is not None else ("; ".join(ended) or "incomplete"),
    )


# -- timed runs ------------------------------------------------------------------------


async def _ours_run(port: int, workload: Workload, *, full: bool) -> RunResult:
    done = asyncio.Event()
    sink = _sink(workload, done.set, full=full)
    ended: list[str] = []

    def on_state(state: LinkState) -> None:
        if state.status in (LinkStatus.DISCONNECTED, LinkStatus.AUTH_FAILED):
            ended.append(f"link ended: {state.last_error}")
            done.set()

    client = AmiClient(
        HOST,
        port,
        "stream",
        SECRET,
        on_frame=sink,
        on_state=on_state,
        backoff_initial=RUN_LIMIT,
        events=WANTED if full else None,
    )
    start = time.perf_counter()
    client.start()
    try:
        async with asyncio.timeout(RUN_LIMIT):
            await done.wait()
    except TimeoutError:
        ended.append(f"timed out after {RUN_LIMIT:g} s")
    finally:
        await client.stop()
    return _result("ours", sink, start, ended)


def _asterisk_ami_run(port: int, workload: Workload, *, full: bool) -> RunResult:
    done = threading.Event()
    sink = _sink(workload, done.set, full=full)
    ended: list[str] = []

    def on_disconnect(source: Any, error: object = None) -> None:
        ended.append("connection closed" if error is None else f"listener died: {error!r}")
        done.set()

    def convert(event: Any, source: Any) -> None:
        if event.name.lower() in WANTED:
            sink(from_asterisk_ami(event))

    def tally(event: Any, source: Any) -> None:
        sink(event)

    client = AMIClient(address=HOST, port=port)  # library defaults: 3 s timeout, 1 KiB reads
    client.add_listener(on_disconnect=on_disconnect)
    client.add_event_listener(convert if full else tally)
    start = time.perf_counter()
    try:
        client.login(username="stream", secret=SECRET)
        if not done.wait(RUN_LIMIT):
            ended.append(f"timed out after {RUN_LIMIT:g} s")
    except OSError as exc:
        ended.append(repr(exc))
    finally:
        client.disconnect()
    return _result("asterisk-ami", sink, start, ended)


async def _panoramisk_run(port: int, workload: Workload, *, full: bool) -> RunResult:
    done = asyncio.Event()
    sink = _sink(workload, done.set, full=full)
    ended: list[str] = []

    def on_disconnect(manager: Any, exc: object) -> None:
        ended.append(f"connection lost: {exc!r}")
        done.set()

    def convert(manager: Any, message: Any) -> None:
        if message.event.lower() in WANTED:
            sink(from_panoramisk(message))

    def tally(manager: Any, message: Any) -> None:
        sink(message)

    manager = Manager(
        host=HOST,
        port=port,
        username="stream",
        secret=SECRET,
        loop=asyncio.get_running_loop(),
        on_disconnect=on_disconnect,
        reconnect_timeout=3600,
    )
    manager.register_event("*", convert if full else tally)
    start = time.perf_counter()
    manager.connect()
    try:
        async with asyncio.timeout(RUN_LIMIT):
            await done.wait()
    except TimeoutError:
        ended.append(f"timed out after {RUN_LIMIT:g} s")
    finally:
        manager.close()
    return _result("panoramisk", sink, start, ended)


def run_contender(name: str, port: int, workload: Workload, *, full: bool) -> RunResult:
    # Every run replays the same ids; none may find the channels of the run before it.
    forget_channels()
    gc.collect()
    if name == "ours":
        return asyncio.run(_ours_run(port, workload, full=full))
    if name == "asterisk-ami":
        return _asterisk_ami_run(port, workload, full=full)
    return asyncio.run(_panoramisk_run(port, workload, full=full))


# -- correctness checks (untimed) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    contender: str
    ok: bool
    detail: str


async def _until(predicate: Callable[[], bool], limit: float) -> bool:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def _until_sync(predicate: Callable[[], bool], limit: float) -> bool:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _user_events(frames: Sequence[Frame]) -> list[str]:
    return [name for f in frames if (name := f.get("UserEvent")) is not None]


def _has_end(frames: Sequence[Frame]) -> Callable[[], bool]:
    return lambda: "End" in _user_events(frames)


@contextlib.asynccontextmanager
async def _ours(
    port: int,
    user: str,
    on_frame: Callable[[Frame], None],
    states: list[LinkState],
    *,
    ping_interval: float = 15.0,
    pong_timeout: float = 5.0,
) -> AsyncIterator[AmiClient]:
    connected = asyncio.Event()

    def on_state(state: LinkState) -> None:
        states.append(state)
        if state.status is LinkStatus.CONNECTED:
            connected.set()

    client = AmiClient(
        HOST, port, user, SECRET, on_frame=on_frame, on_state=on_state, backoff_initial=30.0,
        ping_interval=ping_interval, pong_timeout=pong_timeout,
    )  # fmt: skip
    client.start()
    try:
        async with asyncio.timeout(5):
            await connected.wait()
        yield client
    finally:
        await client.stop()


@contextlib.asynccontextmanager
async def _panoramisk(
    port: int,
    user: str,
    on_frame: Callable[[Frame], None],
    lost: list[object],
    **config: object,
) -> AsyncIterator[Any]:
    logged_in = asyncio.Event()
    manager = Manager(
        host=HOST,
        port=port,
        username=user,
        secret=SECRET,
        loop=asyncio.get_running_loop(),
        on_login=lambda _m: logged_in.set(),
        on_disconnect=lambda _m, exc: lost.append(exc),
        **{"reconnect_timeout": 30, **config},
    )
    manager.register_event("*", lambda _m, message: on_frame(from_panoramisk(message)))
    manager.connect()
    try:
        async with asyncio.timeout(5):
            await logged_in.wait()
        yield manager
    finally:
        manager.close()


@contextlib.contextmanager
def _asterisk_ami(
    port: int, user: str, on_frame: Callable[[Frame], None], died: list[tuple[float, object]]
) -> Iterator[Any]:
    client = AMIClient(address=HOST, port=port)
    start = time.monotonic()

    def on_disconnect(source: Any, error: object = None) -> None:
        died.append((time.monotonic() - start, error))

    def on_event(event: Any, source: Any) -> None:
        on_frame(from_asterisk_ami(event))

    client.add_listener(on_disconnect=on_disconnect)
    client.add_event_listener(on_event)
    try:
        reply = client.login(username=user, secret=SECRET).response
        if reply is None or reply.is_error():
            raise RuntimeError("asterisk-ami: login got no reply")
        yield client
    finally:
        client.disconnect()


def _died(died: Sequence[tuple[float, object]]) -> str:
    if not died:
        return "listener still running"
    after, error = died[0]
    return f"listener ended after {after:.1f} s ({error!r})"


# split UTF-8


def _utf8_finding(contender: str, frames: Sequence[Frame]) -> Finding:
    value = next((f.get("CallerIDName") for f in frames if f.get("UserEvent") == "BenchUtf8"), None)
    return Finding("split UTF-8", contender, value == UTF8_NAME, f"decoded {value!r}")


async def _utf8_ours(port: int) -> Finding:
    frames: list[Frame] = []
    async with _ours(port, "utf8", frames.append, []):
        await _until(_has_end(frames), 3)
    return _utf8_finding("ours", frames)


def _utf8_asterisk_ami(port: int) -> Finding:
    frames: list[Frame] = []
    with _asterisk_ami(port, "utf8", frames.append, []):
        _until_sync(_has_end(frames), 3)
    return _utf8_finding("asterisk-ami", frames)


async def _utf8_panoramisk(port: int) -> Finding:
    frames: list[Frame] = []
    async with _panoramisk(port, "utf8", frames.append, []):
        await _until(_has_end(frames), 3)
    return _utf8_finding("panoramisk", frames)


# list responses


async def _list_ours(port: int) -> Finding:
    frames: list[Frame] = []
    async with _ours(port, "list", frames.append, []) as client:
        result = await client.send_list_action("CoreShowChannels", reply_timeout=3)
    names = [e.event for e in result.events]
    complete = result.complete.event if result.complete else None
    ok = names == ["CoreShowChannel"] * 2 and complete == "CoreShowChannelsComplete"
    detail = f"send_list_action returned the Response, {len(names)} CoreShowChannel and {complete}"
    return Finding("list response collected", "ours", ok, detail)


def _list_asterisk_ami(port: int) -> Finding:
    frames: list[Frame] = []
    with _asterisk_ami(port, "list", frames.append, []) as client:
        reply = client.send_action(SimpleAction("CoreShowChannels")).response
        _until_sync(lambda: any(f.event == "CoreShowChannelsComplete" for f in frames), 2)
    aid = None if reply is None else reply.keys.get("ActionID")
    loose = [f.event for f in frames if f.action_id == aid]
    status = None if reply is None else f"{reply.status}: {reply.keys.get('Message')}"
    detail = (
        f"the action's future holds only the Response ({status}); the {len(loose)} list events "
        f"({', '.join(sorted(set(map(str, loose))))}) arrive on the general event listener, "
        "left to the caller to match by ActionID"
    )
    return Finding("list response collected", "asterisk-ami", False, detail)


async def _list_panoramisk(port: int) -> Finding:
    frames: list[Frame] = []
    async with _panoramisk(port, "list", frames.append, []) as manager:
        result = await asyncio.wait_for(manager.send_action({"Action": "CoreShowChannels"}), 3)
    messages = result if isinstance(result, list) else [result]
    names = [m.get("Event") for m in messages if "event" in m]
    ok = names == ["CoreShowChannel", "CoreShowChannel", "CoreShowChannelsComplete"]
    detail = f"send_action returned {len(messages)} messages: Response + {', '.join(names)}"
    return Finding("list response collected", "panoramisk", ok, detail)


# a raising callback


def _raiser(frames: list[Frame]) -> Callable[[Frame], None]:
    def on_frame(frame: Frame) -> None:
        frames.append(frame)
        if frame.get("UserEvent") == "Boom":
            raise RuntimeError("bug in the event callback")

    return on_frame


def _raise_finding(contender: str, frames: Sequence[Frame], link: str) -> Finding:
    seen = _user_events(frames)
    after = seen[seen.index("Boom") + 1 :] if "Boom" in seen else []
    ok = after == ["C", "D", "End"]
    got = ", ".join(after) or "none"
    detail = f"events after the failing callback: {got} (sent: C, D, End); {link}"
    return Finding("reader survives a raising callback", contender, ok, detail)


async def _raise_ours(port: int) -> Finding:
    frames: list[Frame] = []
    states: list[LinkState] = []
    async with _ours(port, "raise", _raiser(frames), states) as client:
        await _until(_has_end(frames), 2)
        link = f"link {client.state.status.value}, frame_errors={client.frame_errors}"
    return _raise_finding("ours", frames, link)


def _raise_asterisk_ami(port: int) -> Finding:
    frames: list[Frame] = []
    died: list[tuple[float, object]] = []
    with _asterisk_ami(port, "raise", _raiser(frames), died) as client:
        _until_sync(_has_end(frames), 2)
        looks_up = not client.finished.is_set() and client._socket.fileno() != -1
    state = "client still looks connected, socket open" if looks_up else "client closed"
    return _raise_finding("asterisk-ami", frames, f"{_died(died)}; {state}")


async def _raise_panoramisk(port: int) -> Finding:
    frames: list[Frame] = []
    lost: list[object] = []
    async with _panoramisk(port, "raise", _raiser(frames), lost):
        await _until(_has_end(frames), 2)
    link = f"asyncio closed the link ({lost[0]!r})" if lost else "link up"
    return _raise_finding("panoramisk", frames, link)


# a quiet link


def _quiet_finding(contender: str, frames: Sequence[Frame], link: str) -> Finding:
    got = "End" in _user_events(frames)
    verdict = "received" if got else "NOT received"
    detail = f"event sent after {QUIET_S:g} s of silence {verdict}; {link}"
    return Finding(f"survives {QUIET_S:g} s of silence", contender, got, detail)


async def _quiet_ours(port: int) -> Finding:
    frames: list[Frame] = []
    states: list[LinkState] = []
    async with _ours(port, "quiet", frames.append, states) as client:
        await _until(_has_end(frames), QUIET_S + 1.5)
        link = f"link {client.state.status.value}"
    return _quiet_finding("ours", frames, link)


def _quiet_asterisk_ami(port: int) -> Finding:
    frames: list[Frame] = []
    died: list[tuple[float, object]] = []
    with _asterisk_ami(port, "quiet", frames.append, died):
        _until_sync(_has_end(frames), QUIET_S + 1.5)
    return _quiet_finding("asterisk-ami", frames, _died(died))


async def _quiet_panoramisk(port: int) -> Finding:
    frames: list[Frame] = []
    lost: list[object] = []
    async with _panoramisk(port, "quiet", frames.append, lost):
        await _until(_has_end(frames), QUIET_S + 1.5)
    return _quiet_finding("panoramisk", frames, "link lost" if lost else "link up")


# unanswered Pings


async def _ping_ours(port: int) -> Finding:
    states: list[LinkState] = []
    async with _ours(port, "noping", lambda f: None, states, ping_interval=0.5, pong_timeout=0.5):
        start = time.monotonic()
        dead = await _until(lambda: states[-1].status is LinkStatus.DISCONNECTED, PING_WINDOW - 0.5)
        after = time.monotonic() - start
    if dead:
        detail = (
            f"link declared dead {after:.1f} s after login ({states[-1].last_error}) "
            "with ping_interval=0.5, pong_timeout=0.5"
        )
    else:
        detail = "missing Pong not noticed"
    return Finding("notices unanswered Ping", "ours", dead, detail)


def _ping_asterisk_ami(port: int) -> Finding:
    client = AMIClient(address=HOST, port=port)
    noticed: list[float] = []
    relogins: list[object] = []
    start = time.monotonic()
    keeper = AutoReconnect(
        client,
        delay=0.5,
        on_disconnect=lambda _c, _r: noticed.append(time.monotonic() - start),
        on_reconnect=lambda _c, r: relogins.append(r),
    )
    keeper.daemon = True
    try:
        if client.login(username="noping", secret=SECRET).response is None:
            raise RuntimeError("asterisk-ami: login got no reply")
        sock = client._socket
        _until_sync(lambda: bool(noticed), PING_WINDOW)
        _until_sync(lambda: bool(relogins), 1.0)
        same = "the same socket" if client._socket is sock else "a new socket"
    finally:
        if keeper.finished is not None:
            keeper.finished.set()
        client.disconnect()
    if noticed:
        detail = (
            "AMIClient itself sends no Ping; its AutoReconnect helper (delay=0.5) noticed "
            f"the missing Pong after {noticed[0]:.1f} s (it blocks up to the 3 s timeout per "
            f"Ping), then logged in again on {same} ({len(relogins)} re-login)"
        )
    else:
        detail = "AMIClient sends no Ping; AutoReconnect did not notice in time"
    return Finding("notices unanswered Ping", "asterisk-ami", bool(noticed), detail)


async def _ping_panoramisk(port: int) -> Finding:
    lost: list[object] = []
    async with _panoramisk(
        port, "noping", lambda f: None, lost, ping_delay=1, ping_interval=1
    ) as manager:
        await asyncio.sleep(PING_WINDOW - 0.5)
        pending = {
            id(action)
            for action in manager.protocol.responses.values()
            if str(action.get("Action", "")).lower() == "ping"
        }
    ok = bool(lost)
    detail = (
        f"{len(pending)} Pings sent, none answered; after {PING_WINDOW - 0.5:g} s "
        f"{'the link was dropped' if lost else 'the link still counts as up'} "
        "(ping_delay=1, ping_interval=1)"
    )
    return Finding("notices unanswered Ping", "panoramisk", ok, detail)


Check = tuple[
    Callable[[int], Awaitable[Finding]],
    Callable[[int], Finding],
    Callable[[int], Awaitable[Finding]],
]
CHECKS: tuple[Check, ...] = (
    (_utf8_ours, _utf8_asterisk_ami, _utf8_panoramisk),
    (_list_ours, _list_asterisk_ami, _list_panoramisk),
    (_raise_ours, _raise_asterisk_ami, _raise_panoramisk),
    (_quiet_ours, _quiet_asterisk_ami, _quiet_panoramisk),
    (_ping_ours, _ping_asterisk_ami, _ping_panoramisk),
)


async def _run_check(check: Check, port: int) -> list[Finding]:
    ours, asterisk_ami, panoramisk = check
    results = await asyncio.gather(
        ours(port), asyncio.to_thread(asterisk_ami, port), panoramisk(port), return_exceptions=True
    )
    findings: list[Finding] = []
    for contender, result in zip(CONTENDERS, results, strict=True):
        if isinstance(result, BaseException):
            name = check[CONTENDERS.index(contender)].__name__
            detail = f"check could not complete: {result!r}"
            findings.append(Finding(name.split("_")[1], contender, False, detail))
        else:
            findings.append(result)
    return findings


async def run_checks(port: int) -> list[Finding]:
    findings: list[Finding] = []
    for check in CHECKS:
        findings.extend(await _run_check(check, port))
    return findings


# -- report ----------------------------------------------------------------------------


def machine_facts(load_at_start: str) -> dict[str, str]:
    return {
        "CPU": cpu_model(),
        "nproc": f"{len(os.sched_getaffinity(0))} (of {os.cpu_count()})",
        "load average (1, 5, 15 min) at start": load_at_start,
        "at end": load_average(),
        "Python": f"{platform.python_version()} ({platform.python_implementation()})",
        "OS": f"{platform.system()} {platform.release()}",
        "libraries": library_versions("asterisk-ami", "panoramisk", absent="(not installed)"),
    }


@dataclass(frozen=True, slots=True)
class Summary:
    contender: str
    runs: list[RunResult]

    @property
    def times(self) -> list[float]:
        return [r.seconds for r in self.runs if r.seconds is not None]

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None

    @property
    def fps(self) -> float | None:
        median = self.median
        return None if median is None else self.runs[0].frames / median


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _ratios(summaries: Sequence[Summary]) -> tuple[list[str], float | None]:
    by_name = {s.contender: s for s in summaries}
    ours = by_name["ours"].fps
    ratios: list[str] = []
    vs_asterisk_ami: float | None = None
    for other in ("asterisk-ami", "panoramisk"):
        theirs = by_name[other].fps
        ratio = None if ours is None or not theirs else ours / theirs
        if other == "asterisk-ami":
            vs_asterisk_ami = ratio
        ratios.append(f"ours / {other} = **{_fmt(ratio, '.2f')}x**")
    return ratios, vs_asterisk_ami


def _table(summaries: Sequence[Summary], *, full: bool) -> list[str]:
    head = "| contender | median s | min s | max s | frames/s (median) | frames handed over "
    rule = "| --- | ---: | ---: | ---: | ---: | ---: "
    if full:
        head += "| call facts | `Zoë` in the timed stream "
        rule += "| ---: | --- "
    lines = [head + "| errors |", rule + "| --- |"]
    for s in summaries:
        times = s.times
        delivered = "/".join(f"{n:,}" for n in sorted({r.delivered for r in s.runs}))
        row = (
            f"| {s.contender} | {_fmt(s.median, '.3f')} | {_fmt(min(times, default=None), '.3f')} "
            f"| {_fmt(max(times, default=None), '.3f')} | {_fmt(s.fps, ',.0f')} "
            f"| {delivered} of {s.runs[0].expected:,} "
        )
        if full:
            facts = "/".join(map(str, sorted({r.facts for r in s.runs})))
            utf8 = ", ".join(sorted({repr(r.utf8) for r in s.runs}))
            row += f"| {facts} | {utf8} "
        errors = "; ".join(sorted({r.error for r in s.runs if r.error})) or "none"
        lines.append(row + f"| {errors} |")
    return lines


def render(
    full: Sequence[Summary],
    layer: Sequence[Summary],
    findings: Sequence[Finding],
    workload: Workload,
    runs: int,
    command: str,
    load_at_start: str,
) -> str:
    facts = machine_facts(load_at_start)
    full_ratios, vs_asterisk_ami = _ratios(full)
    layer_ratios, _ = _ratios(layer)
    met = vs_asterisk_ami is not None and vs_asterisk_ami >= 4
    lines = [
        f"Generated by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. "
        "Not a timed test: figures vary with the machine and its load.",
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in facts.items()) + ".",
        "",
        f"Workload: every `Event` frame Asterisk wrote in the {workload.recordings} recordings "
        f"({workload.per_repeat} frames), re-issued with fresh ids "
        f"(`cti.recordings.refresh_ids`) {workload.repeat} times so the tracker sees distinct "
        f"calls, plus one frame with `{UTF8_NAME}`: {workload.frames:,} frames, "
        f"{len(workload.stream) / 1e6:.1f} MB. A local AMI server (127.0.0.1, child process) "
        f"answers Login, writes the stream in {CHUNK // 1024} KiB writes (one boundary inside "
        "the `ë`) and closes. Time: connect to last frame processed; "
        f"{runs} runs per contender and table, interleaved, each starting with the "
        "normaliser's channel memory empty (`cti.normalise.forget_channels`: every run "
        "replays the same ids, which a live PBX never sends twice). Library defaults throughout "
        "(asterisk-ami: 1 KiB reads, 3 s socket timeout).",
        "",
        "**Ingest** (the figure that counts): frames/s is all "
        f"{workload.frames:,} frames of the stream over the time to read, parse and process "
        f"them. The consumer reads the {len(EVENT_NAMES)} event names `normalise` reads plus "
        f"`UserEvent` (the end marker carrying `{UTF8_NAME}`): {workload.wanted:,} frames. "
        "Each contender hands exactly those, as a `cti.frames.Frame`, to the same "
        "`normalise` + `CallTracker.apply`, and skips the rest by event name as early as its "
        "library allows. Ours: in the wire parser, before a frame object exists "
        "(`AmiClient(events=...)`, what production runs). asterisk-ami: its reader thread "
        "builds an `Event` for every frame; the event callback checks `event.name` against "
        "the same set before converting. panoramisk: it builds a `Message` for every frame; "
        "the callback registered for `*` checks `message.event` before converting.",
        "",
        *_table(full, full=True),
        "",
        "Ratio of median frames/s: " + "; ".join(full_ratios) + ". "
        f"Target >= 4x asterisk-ami: **{'met' if met else 'NOT met'}**. "
        "(Whether a read really ends inside the `ë` of the timed stream is up to the kernel; "
        "the split UTF-8 check below forces it.)",
        "",
        "**AMI layer alone** (for diagnosis): the callback only counts the library's own "
        "objects (our lazy `Frame`, no event filter; asterisk-ami's `Event`, panoramisk's "
        "`Message`); no conversion, no normalise.",
        "",
        *_table(layer, full=False),
        "",
        "Ratio of median frames/s: " + "; ".join(layer_ratios) + ".",
        "",
        "**Correctness checks** (untimed, same server, library defaults unless stated):",
        "",
        "| check | contender | result | what happened |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {f.check} | {f.contender} | {'pass' if f.ok else 'FAIL'} | {f.detail} |"
        for f in findings
    ]
    return "\n".join(lines) + "\n"


def write_docs(section: str) -> None:
    write_section(key="ingest", title="CTI ingest", section=section)


# -- main ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per contender")
    parser.add_argument("--repeat", type=int, default=40, help="copies of the recorded mix")
    parser.add_argument("--write-docs", action="store_true", help=f"update docs/{DOC.name}")
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 50 or not 1 <= args.repeat <= 500:
        parser.error("--runs must be 1..50 and --repeat 1..500")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Expected noise: link drops at the end of each stream, and the raising-callback check.
    for noisy in ("cti.ami", "asyncio", "panoramisk"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)

    load_at_start = load_average()
    workload = build_workload(args.repeat)
    print(f"workload: {workload.frames:,} frames, {len(workload.stream) / 1e6:.1f} MB", flush=True)
    results: dict[tuple[str, bool], list[RunResult]] = {
        (name, full): [] for name in CONTENDERS for full in (True, False)
    }
    with bench_server(workload) as port:
        for run in range(args.runs):
            order = CONTENDERS[run % 3 :] + CONTENDERS[: run % 3]
            for full in (True, False):
                for name in order:
                    result = run_contender(name, port, workload, full=full)
                    results[name, full].append(result)
                    print(
                        f"run {run + 1}/{args.runs} {'ingest' if full else 'layer '} "
                        f"{name:<13} {_fmt(result.seconds, '.3f')} s "
                        f"{_fmt(result.fps, ',.0f')} frames/s, delivered {result.delivered:,}"
                        + (f", facts {result.facts}" if full else "")
                        + (f" ERROR {result.error}" if result.error else ""),
                        flush=True,
                    )
        print("correctness checks ...", flush=True)
        findings = asyncio.run(run_checks(port))
    command = f"python -m bench.ingest --runs {args.runs} --repeat {args.repeat}"
    if args.write_docs:
        command += " --write-docs"
    section = render(
        [Summary(name, results[name, True]) for name in CONTENDERS],
        [Summary(name, results[name, False]) for name in CONTENDERS],
        findings,
        workload,
        args.runs,
        command,
        load_at_start,
    )
    print()
    print(section)
    if args.write_docs:
        write_docs(section)
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
