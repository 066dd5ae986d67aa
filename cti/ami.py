"""Asyncio AMI client: one TCP link to Asterisk, kept logged in and alive.

Reading is done by an :class:`asyncio.Protocol`, so bytes are parsed and
dispatched as soon as the event loop sees them; nothing in the read path
awaits.  Asterisk drops a manager session that stops reading, so a slow
consumer must never be able to stall the socket.

Actions are matched to replies by ActionID.  A reply carrying
``EventList: start`` opens a list: the events with that ActionID up to the
``...Complete`` event belong to the caller of :meth:`AmiClient.send_list_action`
and are not passed to ``on_frame``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
import random
import secrets
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from cti.frames import Frame
from cti.wire import FrameParser

__all__ = [
    "AmiClient",
    "AmiError",
    "AmiLinkLostError",
    "AmiNotConnectedError",
    "AmiTimeoutError",
    "LinkState",
    "LinkStatus",
    "ListResult",
]

log = logging.getLogger(__name__)


class LinkStatus(enum.StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    AUTH_FAILED = "auth_failed"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class LinkState:
    """Health of the PBX link, as shown on the health endpoint.

    ``reconnects`` counts connection attempts after the first one;
    ``last_error`` keeps the reason of the last failure (``"authentication
    failed"`` for refused credentials) until a login succeeds.
    """

    status: LinkStatus = LinkStatus.STOPPED
    last_error: str | None = None
    reconnects: int = 0
    connected_since: datetime | None = None
    banner: str | None = None


@dataclass(frozen=True, slots=True)
class ListResult:
    """The reply to a list action and the events that made up the list."""

    response: Frame
    events: tuple[Frame, ...]
    complete: Frame | None

    @property
    def ok(self) -> bool:
        return (self.response.response or "").lower() == "success"


class AmiError(Exception):
    pass


class AmiNotConnectedError(AmiError, ConnectionError):
    pass


class AmiLinkLostError(AmiError, ConnectionError):
    pass


class AmiTimeoutError(AmiError, TimeoutError):
    pass


class _AuthFailedError(AmiError):
    pass


FieldValue = str | Sequence[str]


class _Pending:
    __slots__ = ("events", "future", "response", "want_list")

    def __init__(self, future: asyncio.Future[Frame | ListResult], *, want_list: bool) -> None:
        self.future = future
        self.want_list = want_list
        self.response: Frame | None = None
        self.events: list[Frame] = []


class _Protocol(asyncio.Protocol):
    def __init__(self, client: AmiClient, loop: asyncio.AbstractEventLoop) -> None:
        self._client = client
        self.parser = FrameParser(events=client._event_filter())
        self.banner: asyncio.Future[str] = loop.create_future()
        self.closed: asyncio.Future[Exception | None] = loop.create_future()

    def data_received(self, data: bytes) -> None:
        skipped = self.parser.frames_skipped
        frames = self.parser.feed(data)
        self._client._frames_received += self.parser.frames_skipped - skipped
        if not self.banner.done() and self.parser.banner is not None:
            self.banner.set_result(self.parser.banner)
        if frames:
            self._client._dispatch(frames)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(exc)


class AmiClient:
    """A self-healing AMI session: call :meth:`start`, then :meth:`stop` on shutdown."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        on_frame: Callable[[Frame], None],
        on_state: Callable[[LinkState], None] | None = None,
        on_connected: Callable[[], Awaitable[None]] | None = None,
        ping_interval: float = 15.0,
        pong_timeout: float = 5.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        connect_timeout: float = 5.0,
        action_timeout: float = 10.0,
        events: Collection[str] | None = None,
    ) -> None:
        """``events``: lower-case names of the events ``on_frame`` wants; the parser drops
        every other event unbuilt.  None: every frame."""
        self.host, self.port = host, port
        self._events = events
        self._lists_open = 0
        self._parser: FrameParser | None = None
        self._username, self._secret = username, secret
        self._on_frame, self._on_state, self._on_connected = on_frame, on_state, on_connected
        self.ping_interval, self.pong_timeout = ping_interval, pong_timeout
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.connect_timeout, self.action_timeout = connect_timeout, action_timeout
        self._state = LinkState()
        self._frames_received = 0
        self._frame_errors = 0
        # A per-client prefix keeps ActionIDs unique across clients sharing one PBX.
        self._id_prefix = f"desk-{secrets.token_hex(3)}-"
        self._ids = itertools.count(1)
        self._pending: dict[str, _Pending] = {}
        self._listing: dict[str, _Pending] = {}
        self._transport: asyncio.Transport | None = None
        self._logged_in = False
        self._loss_reason: str | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def state(self) -> LinkState:
        return self._state

    @property
    def frames_received(self) -> int:
        return self._frames_received

    @property
    def frame_errors(self) -> int:
        """How many times ``on_frame`` raised."""
        return self._frame_errors

    @property
    def connected(self) -> bool:
        return self._logged_in

    def start(self) -> None:
        """Begin connecting in the background (needs a running event loop)."""
        if self._supervisor is not None:
            raise RuntimeError("AmiClient already started")
        self._stopping = False
        self._supervisor = asyncio.get_running_loop().create_task(self._run(), name="ami-link")

    async def stop(self) -> None:
        """Log off if logged in, close the link and wait for every task to finish."""
        task, self._supervisor = self._supervisor, None
        if task is None:
            return
        self._stopping = True
        if self._logged_in:
            with contextlib.suppress(AmiError):
                await self.send_action("Logoff", reply_timeout=min(1.0, self.action_timeout))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        self._set_state(replace(self._state, status=LinkStatus.STOPPED, connected_since=None))

    async def send_action(
        self, action: str, *, reply_timeout: float | None = None, **fields: FieldValue
    ) -> Frame:
        """Send an action and return its Response frame (``Response: Error`` included).

        A list-valued field is sent once per item (``Variable``).  Raises
        :class:`AmiNotConnectedError`, :class:`AmiTimeoutError` or
        :class:`AmiLinkLostError`.
        """
        result = await self._request(action, fields, reply_timeout, want_list=False)
        assert isinstance(result, Frame)
        return result

    async def send_list_action(
        self, action: str, *, reply_timeout: float | None = None, **fields: FieldValue
    ) -> ListResult:
        """Send a list action (CoreShowChannels, QueueStatus, ...) and collect its events.

        The timeout covers the whole list, up to its ``...Complete`` event.
        """
        result = await self._request(action, fields, reply_timeout, want_list=True)
        assert isinstance(result, ListResult)
        return result

    # -- requests and dispatch -------------------------------------------------------

    async def _request(
        self,
        action: str,
        fields: dict[str, FieldValue],
        reply_timeout: float | None,
        *,
        want_list: bool,
        logging_in: bool = False,
    ) -> Frame | ListResult:
        transport = self._transport
        if transport is None or transport.is_closing() or not (self._logged_in or logging_in):
            raise AmiNotConnectedError(f"AMI link to {self.host}:{self.port} is not up")
        action_id = f"{self._id_prefix}{next(self._ids)}"
        pairs = [("Action", action), ("ActionID", action_id)]
        for key, value in fields.items():
            pairs.extend([(key, value)] if isinstance(value, str) else ((key, v) for v in value))
        future: asyncio.Future[Frame | ListResult] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = _Pending(future, want_list=want_list)
        self._lists_open += want_list
        self._refilter()
        transport.write(Frame(tuple(pairs)).encode())
        timeout = self.action_timeout if reply_timeout is None else reply_timeout
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise AmiTimeoutError(f"no reply to {action} within {timeout:g}s") from None
        finally:
            self._pending.pop(action_id, None)
            self._listing.pop(action_id, None)
            self._lists_open -= want_list
            self._refilter()

    def _event_filter(self) -> Collection[str] | None:
        # A list's events answer our own action, whatever their names: while one is
        # open, every event gets through so that send_list_action can collect them.
        return None if self._lists_open else self._events

    def _refilter(self) -> None:
        if self._parser is not None and self._parser.events is not self._event_filter():
            self._parser.events = self._event_filter()

    def _dispatch(self, frames: list[Frame]) -> None:
        self._frames_received += len(frames)
        pending, listing, on_frame = self._pending, self._listing, self._on_frame
        for frame in frames:
            # A frame can be ours only while an action awaits its reply or a list is open;
            # the rest of the time, which is nearly always, each goes straight to on_frame.
            if (pending or listing) and self._claimed(frame):
                continue
            try:
                on_frame(frame)
            except Exception:
                self._frame_errors += 1
                # A consumer bug fails on every frame; logging 1st, 2nd, 4th, 8th... keeps
                # the traceback visible without flooding the log at event rate.
                if self._frame_errors & (self._frame_errors - 1) == 0:
                    log.exception(
                        "on_frame failed for %s (%d failures so far); link continues",
                        frame.event,
                        self._frame_errors,
                    )

    def _claimed(self, frame: Frame) -> bool:
        """Whether ``frame`` answers one of our actions (and was handed to its caller)."""
        if not frame.is_event:
            entry = self._pending.get(frame.action_id or "")
            if entry is not None:
                self._on_reply(frame, entry)
                return True
        elif self._listing:
            # Only while a list is open: most frames never need their ActionID looked up.
            action_id = frame.action_id or ""
            list_entry = self._listing.get(action_id)
            if list_entry is not None:
                self._on_list_event(action_id, frame, list_entry)
                return True
        return False

    def _on_reply(self, frame: Frame, entry: _Pending) -> None:
        action_id = frame.action_id or ""
        del self._pending[action_id]
        if entry.want_list and (frame.get("EventList") or "").lower() == "start":
            entry.response = frame
            self._listing[action_id] = entry
        elif not entry.future.done():
            entry.future.set_result(ListResult(frame, (), None) if entry.want_list else frame)

    def _on_list_event(self, action_id: str, frame: Frame, entry: _Pending) -> None:
        marker = (frame.get("EventList") or "").lower()
        if marker not in ("complete", "cancelled") and not (frame.event or "").endswith("Complete"):
            entry.events.append(frame)
            return
        del self._listing[action_id]
        if entry.want_list and entry.response is not None and not entry.future.done():
            entry.future.set_result(ListResult(entry.response, tuple(entry.events), frame))

    # -- link lifecycle --------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while True:
            self._set_state(replace(self._state, status=LinkStatus.CONNECTING))
            try:
                await self._session()
                if self._stopping:
                    return
                failures = 0
                status, error = LinkStatus.DISCONNECTED, self._loss_reason or "connection closed"
            except _AuthFailedError:
                status, error = LinkStatus.AUTH_FAILED, "authentication failed"
            except (OSError, TimeoutError, AmiError) as exc:
                status, error = LinkStatus.DISCONNECTED, str(exc) or type(exc).__name__
            delay = min(self.backoff_max, self.backoff_initial * 2**failures)
            # Jitter spreads reconnects of many desks after a PBX restart.
            delay *= random.uniform(0.5, 1.0)
            failures += 1
            log.warning("AMI link %s:%d: %s; retrying in %.2fs", self.host, self.port, error, delay)
            self._set_state(
                replace(self._state, status=status, last_error=error, connected_since=None)
            )
            await asyncio.sleep(delay)
            self._set_state(replace(self._state, reconnects=self._state.reconnects + 1))

    async def _session(self) -> None:
        """One connection: log in, serve until the link is lost, then clean up."""
        loop = asyncio.get_running_loop()
        self._loss_reason = None
        transport, protocol = await asyncio.wait_for(
            loop.create_connection(lambda: _Protocol(self, loop), self.host, self.port),
            self.connect_timeout,
        )
        self._transport = transport
        self._parser = protocol.parser
        tasks: list[asyncio.Task[None]] = []
        try:
            done, _ = await asyncio.wait(
                (protocol.banner, protocol.closed),
                timeout=self.connect_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if protocol.banner not in done:
                raise AmiError("no AMI banner from the server")
            reply = await self._request(
                "Login",
                {"Username": self._username, "Secret": self._secret, "Events": "on"},
                self.connect_timeout,
                want_list=False,
                logging_in=True,
            )
            assert isinstance(reply, Frame)
            if (reply.response or "").lower() != "success":
                message = reply.get("Message") or "login refused"
                if "auth" in message.lower():
                    raise _AuthFailedError(message)
                raise AmiError(f"login refused: {message}")
            self._logged_in = True
            self._set_state(
                replace(
                    self._state,
                    status=LinkStatus.CONNECTED,
                    last_error=None,
                    connected_since=datetime.now(UTC),
                    banner=protocol.banner.result(),
                )
            )
            tasks.append(loop.create_task(self._keepalive(transport), name="ami-ping"))
            if self._on_connected is not None:
                tasks.append(loop.create_task(self._resync(), name="ami-resync"))
            exc = await protocol.closed
            if exc is not None and self._loss_reason is None:
                self._loss_reason = str(exc) or type(exc).__name__
        finally:
            self._logged_in = False
            self._transport = None
            self._parser = None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            transport.abort()
            await asyncio.shield(protocol.closed)
            self._fail_pending()

    async def _keepalive(self, transport: asyncio.Transport) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            try:
                await self.send_action("Ping", reply_timeout=self.pong_timeout)
            except AmiTimeoutError:
                self._loss_reason = f"no reply to Ping within {self.pong_timeout:g}s"
                log.warning(
                    "AMI link %s:%d looks dead: %s", self.host, self.port, self._loss_reason
                )
                transport.abort()
                return
            except AmiError:
                return  # the link is already gone; _session notices

    async def _resync(self) -> None:
        assert self._on_connected is not None
        try:
            await self._on_connected()
        except AmiError as exc:
            log.warning("on_connected resync interrupted: %s", exc)
        except Exception:
            log.exception("on_connected hook failed")

    def _fail_pending(self) -> None:
        entries = [*self._pending.values(), *self._listing.values()]
        self._pending.clear()
        self._listing.clear()
        for entry in entries:
            if not entry.future.done():
                entry.future.set_exception(AmiLinkLostError("AMI link lost"))

    def _set_state(self, new: LinkState) -> None:
        if new == self._state:
            return
        self._state = new
        if self._on_state is not None:
            try:
                self._on_state(new)
            except Exception:
                log.exception("on_state callback failed")
