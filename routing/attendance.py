"""Attendance across the processes of a cluster — the merge is pure, over values.

Each process knows the browsers connected to it (``routing.assignment.Attendance``)
and only the one holding the PBX link knows phone states.  The web layer
(``web/attendance_relay.py``) publishes each process's ``AttendanceFacts`` in
Redis and reads the other live processes'; ``merge_attendance`` turns them into
the ``Availability`` per agent the router needs, and ``SharedAttendance`` keeps
the result as the assigner's ``AvailabilitySource``.

The merge:

* *online*: a browser of the agent is open on some live process;
* *phone*: the first known state (anything but ``unknown``) in this process's
  facts, then in the peers' in the order given.  Only the process holding the
  PBX link publishes phones, so two disagree only for a moment of a take-over;
* *offline since*: None while the agent is online or on the phone (a state other
  than ``logged_out`` / ``unknown``); ``now`` when the previous merged view had
  them present — the moment this process first saw them gone, whichever process
  they left and however (a tab closed, a phone logged out, a dead process's key
  expired); otherwise what the previous view said.  An agent first seen away has
  None: since when is unknown, so they keep their tickets (as ``Attendance`` does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from desk.clock import Clock
from routing.assignment import PHONE_ABSENT, UNSEEN, Attendance, Availability
from routing.router import PhoneState, Presence


@dataclass(frozen=True, slots=True, kw_only=True)
class AttendanceFacts:
    """What one process knows: agents with a browser open on it, and the phone
    states it heard from the PBX (empty unless it holds the link), by agent id."""

    online: frozenset[int] = frozenset()
    phones: Mapping[int, PhoneState] = field(default_factory=dict)


def merge_attendance(
    local: AttendanceFacts,
    peers: Iterable[AttendanceFacts],
    *,
    previous: Mapping[int, Availability],
    now: datetime,
) -> dict[int, Availability]:
    """The cluster-wide availability of every agent known now or before (rules in
    the module notes).  Feed the result back as ``previous`` next time."""
    facts = [local, *peers]
    online: set[int] = set().union(*(each.online for each in facts))
    phones: dict[int, PhoneState] = {}
    for each in facts:
        for agent_id, phone in each.phones.items():
            if phones.get(agent_id, PhoneState.UNKNOWN) is PhoneState.UNKNOWN:
                phones[agent_id] = phone
    merged: dict[int, Availability] = {}
    for agent_id in online | phones.keys() | previous.keys():
        phone = phones.get(agent_id, PhoneState.UNKNOWN)
        before = previous.get(agent_id)
        since: datetime | None = None
        if agent_id in online or phone not in PHONE_ABSENT or before is None:
            since = None
        elif _present(before):
            since = now
        else:
            since = before.offline_since
        merged[agent_id] = Availability(
            presence=Presence.ONLINE if agent_id in online else Presence.OFFLINE,
            phone=phone,
            offline_since=since,
        )
    return merged


def came_available(
    before: Mapping[int, Availability], after: Mapping[int, Availability]
) -> list[int]:
    """Agents (sorted) who came online or whose phone became ready between two views:
    queued tickets may fit them now."""
    came = []
    for agent_id, seen in after.items():
        was = before.get(agent_id, UNSEEN)
        if (seen.presence is Presence.ONLINE and was.presence is not Presence.ONLINE) or (
            seen.phone is PhoneState.READY and was.phone is not PhoneState.READY
        ):
            came.append(agent_id)
    return sorted(came)


def _present(seen: Availability) -> bool:
    return seen.presence is Presence.ONLINE or seen.phone not in PHONE_ABSENT


class SharedAttendance:
    """The cluster-wide ``AvailabilitySource``: this process's ``Attendance`` merged
    with the facts of the other live processes, as last read (``peers_seen``).

    A local change (a browser here, a phone state) only marks the view stale: the
    next read merges again, so an agent who just connected here is online for the
    assigner at once, and a burst of phone changes under load costs one merge, not
    one each.  The relay reads (and so merges) within moments of every change.
    ``phones_live`` says whether this process's phone states are current (it holds
    the PBX link): a process that let go of the link keeps the last states it
    heard, and they must not outvote the new holder's."""

    def __init__(
        self,
        local: Attendance,
        *,
        clock: Clock,
        phones_live: Callable[[], bool] = lambda: True,
    ) -> None:
        self._local, self._clock, self._phones_live = local, clock, phones_live
        self._peers: tuple[AttendanceFacts, ...] = ()
        self._merged: dict[int, Availability] = {}
        self._stale = True
        local.on_change(self._local_changed)

    def local_facts(self) -> AttendanceFacts:
        """What this process publishes for the others."""
        phones = self._local.phones() if self._phones_live() else {}
        return AttendanceFacts(online=self._local.online(), phones=phones)

    def peers_seen(self, peers: Iterable[AttendanceFacts]) -> list[int]:
        """The other live processes' facts, as just read; the agents who became
        available through them (those who did through a change here, the web layer
        has told the assigner of already)."""
        if self._stale:
            self.refresh()
        self._peers = tuple(peers)
        return self.refresh()

    def refresh(self) -> list[int]:
        """Merge now; the agents who became available since the last merge."""
        before = self._merged
        self._merged = merge_attendance(
            self.local_facts(), self._peers, previous=before, now=self._clock.now()
        )
        self._stale = False
        return came_available(before, self._merged)

    def agent_availability(self) -> dict[int, Availability]:
        if self._stale:
            self.refresh()
        return dict(self._merged)

    def _local_changed(self) -> None:
        self._stale = True
