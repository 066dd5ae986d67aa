"""Who has a ticket open right now, so two agents on one ticket see each other.

A registry of plain values: the socket.io handlers in ``web.realtime`` feed it
and send each change to the users watching that ticket.  Presence is what this
process's sockets report; it is not stored, and a disconnect clears it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Viewer:
    user_id: int
    name: str
    since: datetime
    composing: bool = False


class TicketPresence:
    def __init__(self) -> None:
        self._by_ticket: dict[int, dict[str, Viewer]] = {}  # ticket -> socket -> viewer
        self._by_socket: dict[str, set[int]] = {}

    def opened(self, sid: str, ticket_id: int, viewer: Viewer) -> bool:
        """``sid`` shows ``ticket_id``; True if what others see changed."""
        sockets = self._by_ticket.setdefault(ticket_id, {})
        before = self.viewers(ticket_id)
        known = sockets.get(sid)
        # Re-opening (or starting to type) keeps the time the user first looked.
        sockets[sid] = viewer if known is None else _replace(known, viewer)
        self._by_socket.setdefault(sid, set()).add(ticket_id)
        return self.viewers(ticket_id) != before

    def closed(self, sid: str, ticket_id: int) -> bool:
        sockets = self._by_ticket.get(ticket_id)
        if sockets is None or sid not in sockets:
            return False
        before = self.viewers(ticket_id)
        del sockets[sid]
        if not sockets:
            del self._by_ticket[ticket_id]
        tickets = self._by_socket.get(sid)
        if tickets is not None:
            tickets.discard(ticket_id)
            if not tickets:
                del self._by_socket[sid]
        return self.viewers(ticket_id) != before

    def disconnected(self, sid: str) -> list[int]:
        """Forget a socket; the tickets whose viewers changed."""
        changed = []
        for ticket_id in sorted(self._by_socket.get(sid, set())):
            if self.closed(sid, ticket_id):
                changed.append(ticket_id)
        return changed

    def viewers(self, ticket_id: int) -> list[Viewer]:
        """One entry per user (several tabs count once), earliest first."""
        per_user: dict[int, Viewer] = {}
        for viewer in self._by_ticket.get(ticket_id, {}).values():
            seen = per_user.get(viewer.user_id)
            per_user[viewer.user_id] = viewer if seen is None else _merge(seen, viewer)
        return sorted(per_user.values(), key=lambda v: (v.since, v.user_id))

    def watching(self, ticket_id: int) -> set[int]:
        return {viewer.user_id for viewer in self._by_ticket.get(ticket_id, {}).values()}

    def payload(self, ticket_id: int) -> dict[str, Any]:
        return {
            "ticket_id": ticket_id,
            "viewers": [
                {
                    "user_id": v.user_id,
                    "name": v.name,
                    "since": v.since.isoformat(),
                    "composing": v.composing,
                }
                for v in self.viewers(ticket_id)
            ],
        }


def _replace(known: Viewer, new: Viewer) -> Viewer:
    return Viewer(known.user_id, known.name, known.since, new.composing)


def _merge(a: Viewer, b: Viewer) -> Viewer:
    first = a if a.since <= b.since else b
    return Viewer(first.user_id, first.name, first.since, a.composing or b.composing)
