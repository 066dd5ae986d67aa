"""Attendance shared by the processes of a cluster, through Redis.

Each process knows only the browsers connected to it, and only the one holding
the PBX link hears phone states (routing/attendance.py merges them).  The relay
is the I/O: every ``interval`` seconds, and promptly after a browser of this
process came or went or a phone changed, it writes this process's facts under a
key of its own, ``calldesk:attendance:<random>``, expiring ``expiry`` seconds
later; reads the keys of the other processes (SCAN, then MGET); and hands what
it read to the ``SharedAttendance`` the assigner routes with.  A process that
dies stops refreshing its key, so its agents count as gone once it expires; one
that stops cleanly deletes it at once.  Agents who became available through
another process (a browser opened there, a phone turned ready) are told to the
assigner, as local connects are.

Values are JSON: ``{"online": [agent ids], "phones": {"<agent id>": "<state>"}}``.
What is read is checked: a value that is not JSON or not of that shape (another
version mid-upgrade, a stray key) is logged once and left out, never a crash.
While Redis cannot be reached the facts last read count until they would have
expired, then are forgotten; the relay tries again every interval.  Keys live in
the Redis database of ``redis_url``, one per deployment, like the PBX link's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from desk.background import OwnedTask
from routing.attendance import AttendanceFacts, SharedAttendance
from routing.router import PhoneState

log = logging.getLogger(__name__)
KEY_PREFIX = "calldesk:attendance:"
# Scanned per round trip; a cluster has a handful of processes.
SCAN_COUNT = 500
# Seconds at least between two rounds, however often this process's attendance changes.
MIN_GAP = 0.1

AgentId = Annotated[int, Field(gt=0)]


class _Published(BaseModel):
    # Unknown fields are left for a newer version of the desk to add.
    model_config = ConfigDict(extra="ignore", frozen=True)

    online: list[Annotated[int, Field(strict=True, gt=0)]]
    phones: dict[AgentId, PhoneState]


def encode_facts(facts: AttendanceFacts) -> str:
    return json.dumps(
        {
            "online": sorted(facts.online),
            "phones": {str(agent_id): phone.value for agent_id, phone in facts.phones.items()},
        }
    )


def decode_facts(raw: bytes | str) -> AttendanceFacts:
    """The facts a process published; ValueError (pydantic's) when they are not."""
    published = _Published.model_validate_json(raw)
    return AttendanceFacts(online=frozenset(published.online), phones=dict(published.phones))


class AttendanceRelay:
    def __init__(
        self,
        *,
        redis: Redis,
        view: SharedAttendance,
        on_available: Callable[[int], None],
        interval: float = 1.0,
        expiry: float = 5.0,
    ) -> None:
        if not 0 < interval < expiry:
            raise ValueError("the attendance key must outlive the interval it is refreshed at")
        self._redis, self._view, self._on_available = redis, view, on_available
        self._interval, self._expiry = interval, expiry
        self.key = f"{KEY_PREFIX}{secrets.token_hex(8)}"
        self._poked = asyncio.Event()
        self._stopping = False
        self._ended = asyncio.Event()
        self._task = OwnedTask("attendance-relay", self._run)
        self._read_at: float | None = None  # time.monotonic() of the last good read
        self._failing = False
        self._bad: set[bytes] = set()  # keys whose value was reported unreadable
        self.rounds = 0

    async def start(self) -> None:
        """Publish and read once (a process counts its peers when start-up ends), then
        keep at it in the background."""
        self._stopping = False
        self._ended.clear()
        await self._round()
        self._task.start()

    async def stop(self) -> None:
        # The loop is asked to end between rounds rather than cancelled: redis-py can
        # swallow a cancellation that lands mid-command, and the stop would then wait
        # out OwnedTask's patience.  A round is bounded by the client's socket timeouts.
        self._stopping = True
        self._poked.set()
        if self._task.running:
            ended = asyncio.ensure_future(self._ended.wait())
            try:
                await asyncio.wait({ended}, timeout=self._expiry)
            finally:
                ended.cancel()
        await self._task.stop()
        try:
            # Gone at once: the other processes need not wait for the expiry.
            await self._redis.delete(self.key)
        except RedisError as exc:  # the key expires by itself in a moment
            log.warning("could not withdraw this process's attendance: %s", exc)
        await self._redis.aclose()

    @property
    def running(self) -> bool:
        return self._task.running

    def poke(self) -> None:
        """This process's attendance changed: publish (and read) now, not at the next tick."""
        self._poked.set()

    async def _run(self) -> None:
        try:
            while not self._stopping:
                poked = asyncio.ensure_future(self._poked.wait())
                try:
                    await asyncio.wait({poked}, timeout=self._interval)
                finally:
                    poked.cancel()
                if self._stopping:
                    return
                self._poked.clear()
                await self._round()
                # Under load (phones changing many times a second on the link holder)
                # rounds follow each other no faster than this.
                await asyncio.sleep(min(MIN_GAP, self._interval))
        finally:
            self._ended.set()

    async def _round(self) -> None:
        self.rounds += 1
        try:
            await self._redis.set(
                self.key,
                encode_facts(self._view.local_facts()),
                px=max(1, round(self._expiry * 1000)),
            )
            peers = await self._read_peers()
        except RedisError as exc:
            if not self._failing:
                log.warning("cannot share attendance through Redis: %s", exc)
            self._failing = True
            stale = self._read_at is None or time.monotonic() - self._read_at >= self._expiry
            # The peers last read may be dead by now too: past the expiry, forget them.
            came = self._view.peers_seen(()) if stale else self._view.refresh()
        else:
            if self._failing:
                log.info("attendance is shared through Redis again")
            self._failing = False
            self._read_at = time.monotonic()
            came = self._view.peers_seen(peers)
        for agent_id in came:
            self._on_available(agent_id)

    async def _read_peers(self) -> list[AttendanceFacts]:
        own = self.key.encode()
        keys = sorted(
            {
                key
                async for key in self._redis.scan_iter(match=f"{KEY_PREFIX}*", count=SCAN_COUNT)
                if key != own
            }
        )
        if not keys:
            self._bad.clear()
            return []
        values = await self._redis.mget(keys)
        peers, bad = [], set()
        for key, raw in zip(keys, values, strict=True):
            if raw is None:  # expired since the scan, or not a string value
                continue
            try:
                peers.append(decode_facts(raw))
            except ValidationError as exc:
                bad.add(key)
                if key not in self._bad:
                    problem = exc.errors()[0]["msg"]
                    log.warning("attendance under %r left out, unreadable: %s", key, problem)
        self._bad = bad
        return peers
