"""Built-in PBX simulator: a real AMI server over TCP that replays recordings.

It answers the actions calldesk sends (Login, Ping, QueuePause, Originate,
Hangup, the resync lists, Logoff) the way the recorded Asterisk 22 did, and
broadcasts recorded call scenarios to every logged-in client.  Its channel and
queue state follows what it has replayed, so a client that resyncs sees the
calls that are live in the simulation, not a stale snapshot.

Run standalone for the demo::

    python -m cti.simulator --port 5038 --scenario support_ringall_answered --loop
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import re
import time
from collections import deque
from collections.abc import Coroutine, Iterable, Sequence
from typing import Any

from cti.frames import Frame
from cti.recordings import FreshIds, RecordedEvent, Recording, load_recording, refresh_ids
from cti.wire import FrameParser

__all__ = ["CALL_SCENARIOS", "PbxSimulator", "main"]

log = logging.getLogger(__name__)

CALL_SCENARIOS = (
    "support_ringall_answered",
    "support_abandoned",
    "sales_rrmemory_ring_no_answer",
    "direct_call_to_agent",
)
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
_SNAPSHOT = "resync_snapshot_after_reconnect"
_ORIGINATE = "click_to_call"
_LIST_MESSAGES = {
    "coreshowchannels": ("Channels will follow", "CoreShowChannelsComplete"),
    "queuestatus": ("Queue status will follow", "QueueStatusComplete"),
    "queuesummary": ("Queue summary will follow", "QueueSummaryComplete"),
    "status": ("Channel status will follow", "StatusComplete"),
}
_CHANNEL_KEYS = (
    "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
    "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context",
    "Exten", "Priority", "Uniqueid", "Linkedid",
)  # fmt: skip
# Field order of Asterisk's QueueMemberPause, filled from the member's QueueStatus record.
_PAUSE_KEYS = (
    "Queue", "MemberName", "Interface", "StateInterface", "Membership", "Penalty",
    "CallsTaken", "LastCall", "LastPause", "LoginTime", "InCall", "Status", "Paused",
    "PausedReason", "Ringinuse", "Wrapuptime",
)  # fmt: skip
_MEMBER_ALIASES = {"Name": "MemberName", "Location": "Interface"}
# Recorded Originate: agent PJSIP/1001 (Alice) calls +4940987654.
_RECORDED_AGENT, _RECORDED_NAME, _RECORDED_NUMBER = "1001", "Alice", "+4940987654"
_YIELD_EVERY = 64
_CHANNEL_NAME = re.compile(r"PJSIP/\S+-[0-9a-f]{8}")

Pairs = list[tuple[str, str]]


class _Session:
    __slots__ = ("events_on", "logged_in", "peer", "stalled", "writer")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.peer = str(writer.get_extra_info("peername"))
        self.logged_in = False
        self.events_on = True
        self.stalled = False


class _PbxState:
    """Live channels and queues, kept up to date from every event broadcast."""

    def __init__(self, snapshot: Recording) -> None:
        self.channels: dict[str, dict[str, str]] = {}
        self.started: dict[str, float] = {}
        self.callers: dict[str, dict[str, float]] = {}
        self.params: dict[str, dict[str, str]] = {}
        self.members: dict[str, dict[str, dict[str, str]]] = {}
        for event in snapshot.events():
            fields = {k: v for k, v in event.frame.pairs[1:] if k.lower() != "actionid"}
            if event.frame.event == "QueueParams":
                self.params[fields["Queue"]] = fields
                self.callers[fields["Queue"]] = {}
            elif event.frame.event == "QueueMember":
                self.members.setdefault(fields["Queue"], {})[fields["Location"]] = fields

    def observe(self, frame: Frame) -> None:
        name, uid, queue = frame.event, frame.get("Uniqueid") or "", frame.get("Queue") or ""
        if name == "Newchannel" and uid:
            self.channels[uid] = {"Application": "", "ApplicationData": "", "BridgeId": ""}
            self.started[uid] = time.monotonic()
        elif name == "Hangup" and uid:
            self.channels.pop(uid, None)
            self.started.pop(uid, None)
        elif name in ("QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon") and uid:
            callers = self.callers.setdefault(queue, {})
            if name == "QueueCallerJoin":
                callers[uid] = time.monotonic()
            else:
                callers.pop(uid, None)
        elif name in ("QueueMemberStatus", "QueueMemberPause"):
            member = self.members.get(queue, {}).get(frame.get("Interface") or "", {})
            for key in member:
                if (value := frame.get(_MEMBER_ALIASES.get(key, key))) is not None:
                    member[key] = value
        if name in ("AgentComplete", "QueueCallerAbandon") and queue in self.params:
            key = "Completed" if name == "AgentComplete" else "Abandoned"
            self.params[queue][key] = str(int(self.params[queue].get(key, "0")) + 1)
        channel = self.channels.get(uid)
        if channel is None:
            return
        channel.update((k, v) for k in _CHANNEL_KEYS if (v := frame.get(k)) is not None)
        if name == "Newexten":
            channel["Application"] = frame.get("Application") or ""
            channel["ApplicationData"] = frame.get("AppData") or ""
        elif name == "BridgeEnter":
            channel["BridgeId"] = frame.get("BridgeUniqueid") or ""
        elif name == "BridgeLeave":
            channel["BridgeId"] = ""

    def list_events(self, action: str, frame: Frame) -> list[Pairs]:
        now = time.monotonic()
        if action == "coreshowchannels":
            return [
                [
                    ("Event", "CoreShowChannel"),
                    *self._channel_pairs(uid),
                    ("Application", ch["Application"]),
                    ("ApplicationData", ch["ApplicationData"]),
                    ("Duration", _hms(now - self.started[uid])),
                    ("BridgeId", ch["BridgeId"]),
                ]
                for uid, ch in self.channels.items()
            ]
        if action == "status":
            return [self._status_pairs(uid, now) for uid in self.channels]
        wanted = frame.get("Queue")
        result: list[Pairs] = []
        for queue, params in self.params.items():
            if wanted and wanted != queue:
                continue
            members = self.members.get(queue, {}).values()
            if action == "queuestatus":
                live = {**params, "Calls": str(len(self.callers.get(queue, {})))}
                result.append([("Event", "QueueParams"), *live.items()])
                result.extend([("Event", "QueueMember"), *m.items()] for m in members)
            else:
                waits = [now - joined for joined in self.callers.get(queue, {}).values()]
                available = [m for m in members if m["Status"] == "1" and m["Paused"] == "0"]
                result.append([
                    ("Event", "QueueSummary"), ("Queue", queue),
                    ("LoggedIn", str(len(members))), ("Available", str(len(available))),
                    ("Callers", str(len(waits))), ("HoldTime", params.get("Holdtime", "0")),
                    ("TalkTime", params.get("TalkTime", "0")),
                    ("LongestHoldTime", str(int(max(waits, default=0)))),
                ])  # fmt: skip
        return result

    def _channel_pairs(self, uid: str) -> Pairs:
        channel = self.channels[uid]
        return [(key, channel.get(key, "")) for key in _CHANNEL_KEYS]

    def _status_pairs(self, uid: str, now: float) -> Pairs:
        ch = self.channels[uid]
        return [
            ("Event", "Status"), ("Privilege", "Call"), *self._channel_pairs(uid),
            ("Type", ch.get("Channel", "PJSIP/").split("/")[0]), ("DNID", ""),
            ("EffectiveConnectedLineNum", ch.get("ConnectedLineNum", "")),
            ("EffectiveConnectedLineName", ch.get("ConnectedLineName", "")),
            ("TimeToHangup", "0"), ("BridgeID", ch["BridgeId"]),
            ("Application", ch["Application"]), ("Data", ch["ApplicationData"]),
            ("Nativeformats", "(ulaw)"), ("Readformat", "ulaw"), ("Readtrans", ""),
            ("Writeformat", "ulaw"), ("Writetrans", ""), ("Callgroup", "0"),
            ("Pickupgroup", "0"), ("Seconds", str(int(now - self.started[uid]))),
        ]  # fmt: skip


def _hms(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _encode(pairs: Iterable[tuple[str, str]]) -> bytes:
    return Frame(tuple(pairs)).encode()


class PbxSimulator:
    """An AMI server on ``host:port`` (port 0 picks a free one; see :attr:`port`)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = "desk",
        secret: str = "change-me",
        auth_failure_delay: float = 0.0,
        reply_jitter: float = 0.0,
        max_write_buffer: int = 8 << 20,
        originate_speed: float = 1.0,
    ) -> None:
        self.host = host
        self._port = port
        self.username = username
        self.secret = secret
        # Asterisk sleeps 1 s before refusing a login; tests keep it at 0.
        self.auth_failure_delay = auth_failure_delay
        # > 0: each action is answered after a random delay, so replies overtake each other.
        self.reply_jitter = reply_jitter
        self.max_write_buffer = max_write_buffer
        # Scales ringing and tear-down of originated calls; the talk phase lasts until a
        # Hangup action or the recorded talk time, so a client always has time to act.
        self.originate_speed = originate_speed
        self.login_attempts = 0
        self.actions_received: deque[Frame] = deque(maxlen=10_000)
        self._server: asyncio.Server | None = None
        self._sessions: set[_Session] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._recordings: dict[str, tuple[Recording, list[RecordedEvent]]] = {}
        self._ids = FreshIds()
        self._hangups: dict[str, asyncio.Event] = {}
        self._state: _PbxState | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def clients(self) -> int:
        """Logged-in sessions."""
        return sum(session.logged_in for session in self._sessions)

    async def start(self) -> None:
        self._state = _PbxState(self._scenario(_SNAPSHOT)[0])
        self._server = await asyncio.start_server(self._serve, self.host, self._port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for session in list(self._sessions):
            session.writer.transport.abort()
        # Connection handlers end by themselves once their socket is gone; cancelling
        # them instead makes asyncio's stream machinery log spurious errors.
        handlers = list(self._handlers)
        await asyncio.gather(*tasks, *handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def drop_link(self) -> None:
        """Cut every client connection abruptly, in the middle of a frame."""
        for session in list(self._sessions):
            with contextlib.suppress(Exception):
                session.writer.write(b"Event: Newchannel\r\nPrivilege: call,al")
            session.writer.transport.abort()

    def stall_links(self) -> None:
        """Make current connections a black hole (a half-open TCP link); new ones work."""
        for session in self._sessions:
            session.stalled = True

    def broadcast_raw(self, data: bytes) -> None:
        """Send ``data`` as is to every logged-in client: garbage, huge or odd frames.

        For fault injection; the simulated PBX state does not follow these bytes.
        """
        for session in list(self._sessions):
            if session.logged_in and session.events_on:
                self._send(session, data)

    async def play(self, name: str, *, speed: float | None = None) -> int:
        """Broadcast a recorded scenario; ``speed`` None = as fast as possible, 1.0 = real time.

        Returns the number of events sent.
        """
        _, events = self._scenario(name)
        timeline = [(e.t, e.text, e.frame) for e in events if e.reply_to is None]
        return await self._replay(timeline, speed)

    async def generate_load(
        self,
        calls_per_second: float,
        *,
        duration: float | None = None,
        count: int | None = None,
        speed: float | None = 1.0,
        scenarios: Sequence[str] = CALL_SCENARIOS,
        new_callers: bool = True,
    ) -> int:
        """Start recorded calls at a steady rate, each with fresh ids and caller number.

        ``new_callers=False`` keeps the recorded callers (the demo's customers).

        Stops after ``count`` calls or ``duration`` seconds, waits until every
        started call has been replayed, and returns the number of calls.
        """
        if duration is None and count is None:
            raise ValueError("give duration or count")
        loop = asyncio.get_running_loop()
        started_at, started = loop.time(), 0
        calls: list[asyncio.Task[int]] = []
        try:
            while (count is None or started < count) and (
                duration is None or loop.time() - started_at < duration
            ):
                events = self._scenario(scenarios[started % len(scenarios)])[1]
                texts = refresh_ids([e.text for e in events], self._ids, new_callers=new_callers)
                timeline = [(e.t, text) for e, text in zip(events, texts, strict=True)]
                calls.append(self._spawn(self._replay_texts(timeline, speed)))
                started += 1
                await asyncio.sleep(max(0.0, started_at + started / calls_per_second - loop.time()))
            await asyncio.gather(*calls)
        finally:
            for call in calls:
                call.cancel()
        return started

    # -- connections -----------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        session = _Session(writer)
        self._sessions.add(session)
        parser = FrameParser(expect_banner=False)
        try:
            writer.write(BANNER)
            while data := await reader.read(65536):
                if session.stalled:
                    continue
                for frame in parser.feed(data):
                    self.actions_received.append(frame)
                    if self.reply_jitter > 0:
                        self._spawn(self._answer_later(session, frame))
                    else:
                        await self._answer(session, frame)
        except (ConnectionError, OSError):
            pass
        finally:
            self._sessions.discard(session)
            writer.transport.abort()
            if task is not None:
                self._handlers.discard(task)

    async def _answer_later(self, session: _Session, frame: Frame) -> None:
        await asyncio.sleep(random.uniform(0, self.reply_jitter))
        await self._answer(session, frame)

    def _send(self, session: _Session, data: bytes) -> None:
        transport = session.writer.transport
        if session.stalled or transport.is_closing():
            return
        transport.write(data)
        if transport.get_write_buffer_size() > self.max_write_buffer:
            # Asterisk drops a client that does not read (writetimeout), and so do we.
            log.warning("dropping AMI client %s: not reading", session.peer)
            transport.abort()

    def _broadcast(self, text: str, frame: Frame) -> None:
        assert self._state is not None
        self._state.observe(frame)
        data = text.encode("utf-8")
        for session in list(self._sessions):
            if session.logged_in and session.events_on:
                self._send(session, data)

    def _broadcast_pairs(self, pairs: Pairs) -> None:
        frame = Frame(tuple(pairs))
        self._broadcast(frame.encode().decode("utf-8"), frame)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- actions ---------------------------------------------------------------------

    def _reply(self, session: _Session, aid: Pairs, response: str, *extra: tuple[str, str]) -> None:
        self._send(session, _encode([("Response", response), *aid, *extra]))

    async def _answer(self, session: _Session, frame: Frame) -> None:
        action = (frame.get("Action") or "").lower()
        aid = [("ActionID", a)] if (a := frame.action_id) is not None else []
        if action == "login":
            await self._login(session, frame, aid)
        elif action == "logoff":
            self._reply(session, aid, "Goodbye", ("Message", "Thanks for all the fish."))
            session.writer.close()
        elif not session.logged_in:
            self._reply(session, aid, "Error", ("Message", "Permission denied"))
        elif action == "ping":
            self._reply(
                session, aid, "Success", ("Ping", "Pong"), ("Timestamp", f"{time.time():.6f}")
            )
        elif action in _LIST_MESSAGES:
            self._send_list(session, action, frame, aid)
        elif action == "queuepause":
            self._queue_pause(session, frame, aid)
        elif action == "originate":
            self._originate(session, frame, aid)
        elif action == "hangup":
            self._hangup(session, frame, aid)
        else:
            name = frame.get("Action") or ""
            message = f"Invalid/unknown command: {name}. Use Action: ListCommands to show them."
            self._reply(session, aid, "Error", ("Message", message))

    async def _login(self, session: _Session, frame: Frame, aid: Pairs) -> None:
        self.login_attempts += 1
        if frame.get("Username") != self.username or frame.get("Secret") != self.secret:
            await asyncio.sleep(self.auth_failure_delay)
            self._reply(session, aid, "Error", ("Message", "Authentication failed"))
            session.writer.close()  # Asterisk ends the session after a failed login
            return
        session.logged_in = True
        session.events_on = (frame.get("Events") or "on").lower() != "off"
        self._reply(session, aid, "Success", ("Message", "Authentication accepted"))
        if session.events_on:
            booted = [("Event", "FullyBooted"), ("Privilege", "system,all"), ("Uptime", "217")]
            self._send(
                session, _encode([*booted, ("LastReload", "114"), ("Status", "Fully Booted")])
            )

    def _send_list(self, session: _Session, action: str, frame: Frame, aid: Pairs) -> None:
        assert self._state is not None
        message, complete = _LIST_MESSAGES[action]
        start = [("Response", "Success"), *aid, ("EventList", "start"), ("Message", message)]
        out = [_encode(start)]
        items = self._state.list_events(action, frame)
        for pairs in items:
            # Asterisk puts the ActionID second in channel lists, last in queue lists.
            out.append(
                _encode(
                    [pairs[0], *aid, *pairs[1:]] if action == "coreshowchannels" else pairs + aid
                )
            )
        count = [("ListItems", str(len(items)))]
        if action == "status":
            count.append(("Items", str(len(items))))
        out.append(_encode([("Event", complete), *aid, ("EventList", "Complete"), *count]))
        self._send(session, b"".join(out))

    def _queue_pause(self, session: _Session, frame: Frame, aid: Pairs) -> None:
        assert self._state is not None
        interface, queue = frame.get("Interface") or "", frame.get("Queue")
        paused = (frame.get("Paused") or "").lower() in ("true", "yes", "1", "on")
        members = [
            member
            for name, by_interface in self._state.members.items()
            if queue in (None, name) and (member := by_interface.get(interface)) is not None
        ]
        if not members:
            self._reply(session, aid, "Error", ("Message", "Interface not found"))
            return
        verb = "paused" if paused else "unpaused"
        self._reply(session, aid, "Success", ("Message", f"Interface {verb} successfully"))
        for member in members:
            fields = {_MEMBER_ALIASES.get(k, k): v for k, v in member.items()}
            fields.update(Paused=str(int(paused)), Ringinuse="1")
            fields["PausedReason"] = (frame.get("Reason") or "") if paused else ""
            if paused:
                fields["LastPause"] = str(int(time.time()))
            device = ("Device", f"Queue:{member['Queue']}_pause_{interface}")
            state = ("State", "INUSE" if paused else "NOT_INUSE")
            self._broadcast_pairs(
                [("Event", "DeviceStateChange"), ("Privilege", "call,all"), device, state]
            )
            pause = [("Event", "QueueMemberPause"), ("Privilege", "agent,all")]
            self._broadcast_pairs(pause + [(k, fields.get(k, "")) for k in _PAUSE_KEYS])

    def _originate(self, session: _Session, frame: Frame, aid: Pairs) -> None:
        assert self._state is not None
        channel, number = frame.get("Channel"), frame.get("Exten")
        if not channel or not number:
            self._reply(session, aid, "Error", ("Message", "Channel not specified"))
            return
        self._reply(session, aid, "Success", ("Message", "Originate successfully queued"))
        recording, events = self._scenario(_ORIGINATE)
        hangup_at = next((s.t for s in recording.sent if s.frame.get("Action") == "Hangup"), 1e9)
        agent = channel.split("/", 1)[-1]
        names = [
            m["Name"]
            for ms in self._state.members.values()
            for m in ms.values()
            if m["Location"] == channel
        ]
        replacements = {
            _RECORDED_NUMBER: number,
            _RECORDED_AGENT: agent,
            _RECORDED_NAME: names[0] if names else agent,
        }
        pattern = re.compile(
            "|".join(rf"(?<![\w.+]){re.escape(old)}(?![\w.])" for old in replacements)
        )
        texts = [pattern.sub(lambda m: replacements[m.group(0)], e.text) for e in events]
        texts = refresh_ids(texts, self._ids, new_callers=False)
        new_aid = "".join(f"ActionID: {value}\r\n" for _, value in aid)
        timeline = [
            (
                e.t,
                text
                if e.reply_to is None
                else text.replace(f"ActionID: {e.reply_to}\r\n", new_aid),
            )
            for e, text in zip(events, texts, strict=True)
        ]
        self._spawn(self._run_originated(timeline, hangup_at))

    async def _run_originated(self, timeline: list[tuple[float, str]], hangup_at: float) -> None:
        """Replay the call up to the recorded hang-up, then wait for a Hangup or that time."""
        setup = [(t, text) for t, text in timeline if t < hangup_at]
        teardown = [(t, text) for t, text in timeline if t >= hangup_at]
        hung_up = asyncio.Event()
        names = {m.group(0) for _, text in setup for m in _CHANNEL_NAME.finditer(text)}
        for channel in names:
            self._hangups[channel] = hung_up
        try:
            await self._replay_texts(setup, speed=self.originate_speed)
            if setup and teardown:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(hung_up.wait(), hangup_at - setup[-1][0])
            await self._replay_texts(teardown, speed=self.originate_speed)
        finally:
            for channel in names:
                self._hangups.pop(channel, None)

    def _hangup(self, session: _Session, frame: Frame, aid: Pairs) -> None:
        assert self._state is not None
        channel = frame.get("Channel") or ""
        if not any(ch.get("Channel") == channel for ch in self._state.channels.values()):
            self._reply(session, aid, "Error", ("Message", "No such channel"))
            return
        self._reply(session, aid, "Success", ("Message", "Channel Hungup"))
        if (hung_up := self._hangups.get(channel)) is not None:
            hung_up.set()

    # -- replay ----------------------------------------------------------------------

    def _scenario(self, name: str) -> tuple[Recording, list[RecordedEvent]]:
        if name not in self._recordings:
            recording = load_recording(name)
            self._recordings[name] = (recording, recording.events())
        return self._recordings[name]

    async def _replay_texts(
        self, timeline: Sequence[tuple[float, str]], speed: float | None
    ) -> int:
        parsed: list[tuple[float, str, Frame]] = []
        for t, text in timeline:
            frames = FrameParser(expect_banner=False).feed(text.encode("utf-8"))
            parsed.extend((t, text, frame) for frame in frames)
        return await self._replay(parsed, speed)

    async def _replay(
        self, timeline: Sequence[tuple[float, str, Frame]], speed: float | None
    ) -> int:
        loop = asyncio.get_running_loop()
        started_at = loop.time()
        first = timeline[0][0] if timeline else 0.0
        for sent, (t, text, frame) in enumerate(timeline):
            if speed:
                # Absolute schedule, so sleeping late never accumulates drift.
                delay = started_at + (t - first) / speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif sent % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
            self._broadcast(text, frame)
        return len(timeline)


async def _run(args: argparse.Namespace) -> None:
    sim = PbxSimulator(host=args.host, port=args.port, username=args.username,
                       secret=args.secret, auth_failure_delay=1.0)  # fmt: skip
    await sim.start()
    log.info("PBX simulator listening on %s:%d", args.host, sim.port)
    speed = args.speed or None
    try:
        while True:
            if args.load:
                await sim.generate_load(args.load, duration=args.load_duration, speed=speed)
            for name in args.scenario or CALL_SCENARIOS:
                log.info("playing %s", name)
                await sim.play(name, speed=speed)
                await asyncio.sleep(args.pause)
            if not args.loop:
                break
    finally:
        await sim.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m cti.simulator", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5038)
    parser.add_argument("--username", default="desk")
    parser.add_argument("--secret", default="change-me")
    parser.add_argument("--scenario", action="append", help="recording name (repeatable)")
    parser.add_argument("--loop", action="store_true", help="repeat until interrupted")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="1 = real time, 0 = as fast as possible"
    )
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between scenarios")
    parser.add_argument("--load", type=float, default=0.0, help="also generate N calls per second")
    parser.add_argument("--load-duration", type=float, default=10.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(args))


if __name__ == "__main__":
    main()
