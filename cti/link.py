"""The PBX link: one AMI session feeding the live view of calls, agents and queues.

The AMI reader calls :meth:`PbxLink._on_frame` for every frame; it turns the
frame into a typed event and runs the pure state machines synchronously (they
take microseconds), handing database work to the recorder's queue, so the
reader never waits and Asterisk never sees a slow client.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cti.agent_state import AgentBoard
from cti.ami import AmiClient, AmiError, LinkState
from cti.board import agent_body, board_body
from cti.directory import AgentDirectory
from cti.events import CallEvent, Channel
from cti.frames import Frame
from cti.normalise import EVENT_NAMES, normalise
from cti.notices import AgentStateChanged, BoardChanged
from cti.pops import PopDesk
from cti.queue_state import QueueBoard
from cti.recorder import (
    ArticleSuggester,
    CallbackPolicy,
    CallRecorder,
    LatencyTally,
    Work,
    stop_quietly,
)
from cti.tracker import CallTracker, resync
from desk.background import OwnedTask
from desk.clock import Clock
from desk.events import EventBus
from desk.log_context import about_call
from desk.settings import Settings
from desk.ticket_changes import SlaKeeper

log = logging.getLogger(__name__)
BOARD_MIN_INTERVAL = 0.25
RESYNC_LISTS = ("CoreShowChannels", "QueueStatus", "QueueSummary")


class PbxActionFailed(Exception):
    """The PBX refused or could not take an action; the message says why."""


class PbxLink:
    def __init__(
        self,
        *,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        reads: async_sessionmaker[AsyncSession] | None = None,
        bus: EventBus,
        clock: Clock,
        backoff_initial: float = 0.5,
        sla: SlaKeeper | None = None,
        articles: ArticleSuggester | None = None,
    ) -> None:
        self._settings, self._bus, self._clock = settings, bus, clock
        self._sessions, self._reads, self._sla, self._articles = sessions, reads, sla, articles
        self.directory = AgentDirectory(sessions=sessions)
        # Kept across recorders (a new one each time this process takes the link back),
        # so the latency counts only ever grow, as a Prometheus histogram's must.
        self.pop_latency = LatencyTally()
        self._know_nothing()
        self._started_before = False
        self.client = AmiClient(
            settings.ami_host,
            settings.ami_port,
            settings.ami_username,
            settings.ami_secret.get_secret_value(),
            on_frame=self._on_frame,
            # Events normalise ignores are dropped by the parser, never built.
            events=EVENT_NAMES,
            on_state=self._on_state,
            on_connected=self._resync,
            ping_interval=settings.ami_ping_interval,
            backoff_initial=backoff_initial,
        )
        self.events_applied = 0
        self.resyncs = 0
        self._board_dirty = asyncio.Event()
        self._board_task = OwnedTask("wallboard", self._board_loop)

    def _know_nothing(self) -> None:
        """Calls, agents, queues and pops as before the first login: the resync after
        each login rebuilds them from what the PBX says."""
        settings, queues = self._settings, self._settings.cti_queues
        self.recorder = CallRecorder(
            sessions=self._sessions,
            reads=self._reads,
            bus=self._bus,
            clock=self._clock,
            directory=self.directory,
            region=settings.phone_region,
            callbacks=CallbackPolicy(
                short_abandon_seconds=settings.cti_short_abandon_seconds,
                teams={q: c.team for q, c in queues.items() if c.team},
            )
            if settings.cti_callback_on_abandon
            else None,
            sla=self._sla,
            articles=self._articles,
            pop_latency=self.pop_latency,
        )
        self.tracker = CallTracker(trunks=settings.cti_trunks)
        self.agents = AgentBoard(wrap_up_s={q: c.wrap_up_seconds for q, c in queues.items()})
        self.queues = QueueBoard(
            service_level_s={q: c.service_level_seconds for q, c in queues.items()},
            short_abandon_s=settings.cti_short_abandon_seconds,
        )
        self.pops = PopDesk()
        self._published_agents: dict[str, tuple[str, str]] = {}
        self._published_link: str | None = None
        self._board_fingerprint: str | None = None

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and follow the PBX; again after a stop (cti/link_holder.py: a process
        taking the link back from another), knowing only what the PBX says from then on."""
        if self._started_before:
            self._know_nothing()
        self._started_before = True
        await self.directory.reload(now=self._clock.now())
        self.recorder.start()
        self.client.start()
        self._board_task.start()

    async def stop(self) -> None:
        await self.client.stop()
        await self._board_task.stop()
        await stop_quietly(self.recorder)

    @property
    def state(self) -> LinkState:
        return self.client.state

    def status(self) -> dict[str, Any]:
        state = self.client.state
        return {
            "status": state.status.value,
            "error": state.last_error,
            "reconnects": state.reconnects,
            "connected_since": state.connected_since.isoformat() if state.connected_since else None,
            "frames": self.client.frames_received,
            "events": self.events_applied,
            "resyncs": self.resyncs,
        }

    # -- ingest (runs on the AMI reader: never await here) ---------------------------

    def _on_frame(self, frame: Frame) -> None:
        event = normalise(frame, received_at=self._clock.now())
        if event is not None:
            self.apply(event)

    def apply(self, event: CallEvent) -> None:
        self.events_applied += 1
        # What the tracker and boards log about this event names its call.
        with about_call(_call_of(event)):
            self._apply(event)

    def _apply(self, event: CallEvent) -> None:
        facts = self.tracker.apply(event)
        decisions = [decision for fact in facts for decision in self.pops.apply(fact)]
        board_moved = self.agents.apply(event) is not None
        board_moved = self.queues.apply(event) is not None or board_moved
        if facts or decisions:
            self.recorder.submit(Work(tuple(facts), tuple(decisions)))
        if board_moved or facts:
            self._board_dirty.set()

    def _on_state(self, state: LinkState) -> None:
        if state.status.value != self._published_link:
            self._board_dirty.set()

    async def _resync(self) -> None:
        """After every (re)login: rebuild calls, members and agents from list responses."""
        at = self._clock.now()
        # Calls that start while the lists are on their way are not on them, yet live.
        known_legs = self.tracker.leg_ids()
        frames: list[Frame] = []
        for action in RESYNC_LISTS:
            result = await self.client.send_list_action(action)
            frames.extend(result.events)
            if result.complete is not None:
                frames.append(result.complete)
        events = [e for f in frames if (e := normalise(f, received_at=at)) is not None]
        facts, decisions = resync(
            events,
            tracker=self.tracker,
            agents=self.agents,
            queues=self.queues,
            pops=self.pops,
            at=at,
            known_legs=known_legs,
        )
        if facts or decisions:
            self.recorder.submit(Work(tuple(facts), tuple(decisions)))
        self.resyncs += 1
        self._board_dirty.set()
        log.info(
            "resynced from the PBX: %d calls live, %d corrections",
            len(self.tracker.live_calls()),
            len(facts),
        )

    # -- actions from the desk -------------------------------------------------------

    async def pause(self, interface: str, *, paused: bool, reason: str = "") -> None:
        fields: dict[str, str] = {"Interface": interface, "Paused": "true" if paused else "false"}
        if paused and reason:
            fields["Reason"] = reason
        await self._act("QueuePause", fields)

    async def originate(self, interface: str, number: str, *, caller_id: str) -> str:
        """Ring the agent's phone, then dial ``number``; the ActionID to match the result."""
        reply = await self._act(
            "Originate",
            {
                "Channel": interface,
                "Context": self._settings.cti_originate_context,
                "Exten": number,
                "Priority": "1",
                "CallerID": caller_id,
                "Async": "true",
            },
        )
        return reply.action_id or ""

    async def _act(self, action: str, fields: dict[str, str]) -> Frame:
        try:
            # Field names are AMI keys (Channel, Exten, ...), never reply_timeout.
            reply = await self.client.send_action(action, **fields)  # type: ignore[arg-type]
        except AmiError as exc:
            raise PbxActionFailed(f"the PBX link is down: {exc}") from exc
        if (reply.response or "").lower() != "success":
            raise PbxActionFailed(reply.get("Message") or f"{action} refused by the PBX")
        return reply

    # -- the wallboard ---------------------------------------------------------------

    def board(self) -> dict[str, Any]:
        now = self._clock.now()
        names = set(self.queues.queues()) | set(self._settings.cti_queues)
        agents = [
            (view, self.directory.known(agent.interface))
            for agent in self.agents.agents()
            if (view := self.agents.view(agent.interface, now)) is not None
        ]
        return board_body(
            queues=[self.queues.view(name, now) for name in names],
            agents=agents,
            link={k: v for k, v in self.status().items() if k in ("status", "error")},
            now=now,
        )

    def agent_state(self, interface: str) -> dict[str, Any] | None:
        now = self._clock.now()
        view = self.agents.view(interface, now)
        return None if view is None else agent_body(view, self.directory.known(interface), now)

    async def _board_loop(self) -> None:
        while True:
            try:
                async with asyncio.timeout(1.0):
                    await self._board_dirty.wait()
            except TimeoutError:
                pass  # wrap-up ends without an event: look again every second
            self._board_dirty.clear()
            await self._publish_board()
            await asyncio.sleep(BOARD_MIN_INTERVAL)

    async def _publish_board(self) -> None:
        board = self.board()
        now = self._clock.now()
        events: list[Any] = []
        changed = self._board_dirty_since_publish(board)
        if changed:
            events.append(BoardChanged(occurred_at=now, body=board))
        for agent in board["agents"]:
            key = (agent["status"], agent["pause_reason"])
            if (
                agent["agent_id"] is not None
                and self._published_agents.get(agent["interface"]) != key
            ):
                self._published_agents[agent["interface"]] = key
                events.append(
                    AgentStateChanged(occurred_at=now, agent_id=agent["agent_id"], body=agent)
                )
        if events:
            await self._bus.publish(events)

    def _board_dirty_since_publish(self, board: dict[str, Any]) -> bool:
        # Only the clock moved? Then browsers tick "time in state" themselves.
        fingerprint = repr(
            (
                board["link"],
                [
                    {k: v for k, v in q.items() if k != "longest_wait_seconds"}
                    for q in board["queues"]
                ],
                [
                    (a["interface"], a["status"], a["pause_reason"], a["missed_rings"])
                    for a in board["agents"]
                ],
            )
        )
        if fingerprint == self._board_fingerprint:
            return False
        self._board_fingerprint = fingerprint
        self._published_link = board["link"]["status"]
        return True


def _call_of(event: CallEvent) -> str | None:
    """The Linkedid of the call an event is about; None for an agent's or a queue's."""
    for part in ("channel", "caller", "dest"):
        channel = getattr(event, part, None)
        if isinstance(channel, Channel):
            return channel.linkedid or None
    linkedid = getattr(event, "linkedid", None)
    return linkedid if isinstance(linkedid, str) and linkedid else None
