"""Service levels changed through the admin API, without a restart.

config/sla.toml gives the set-up a fresh installation starts with.  An admin may
replace it: the whole ``calendars`` / ``policies`` / ``escalation`` document is
checked exactly as the file is at start-up and stored as a new revision, and
every process picks the newest revision up (at once where it was saved, within
the SLA watcher's interval elsewhere).  Due times already stored stay as they
are; the new policies apply from each ticket's next change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from desk.errors import InvalidInput
from desk.models import SlaConfigRevision
from desk.settings import Settings
from routing.sla_config import SlaConfigError, SlaSetup, sla_setup_from_config

log = logging.getLogger(__name__)
SECTIONS = ("calendars", "policies", "escalation")


def file_config(settings: Settings) -> dict[str, Any]:
    """The set-up config/sla.toml (and DESK_SLA_* variables) describe."""
    return {
        "calendars": settings.sla_calendars,
        "policies": settings.sla_policies,
        "escalation": settings.sla_escalation,
    }


def setup_of(config: dict[str, Any]) -> SlaSetup:
    """Check a whole SLA document; ``InvalidInput`` names the first problem's place."""
    unknown = sorted(set(config) - set(SECTIONS))
    if unknown:
        raise InvalidInput(
            f"unknown SLA section {unknown[0]!r}",
            fields={unknown[0]: f"unknown section; expected {', '.join(SECTIONS)}"},
        )
    calendars, policies = config.get("calendars"), config.get("policies")
    escalation = config.get("escalation", {})
    for name, value, kind in (
        ("calendars", calendars, dict),
        ("policies", policies, list),
        ("escalation", escalation, dict),
    ):
        if not isinstance(value, kind):
            expected = "a list" if kind is list else "an object"
            raise InvalidInput(
                f"{name}: expected {expected}", fields={name: f"expected {expected}"}
            )
    assert isinstance(calendars, dict) and isinstance(policies, list)
    assert isinstance(escalation, dict)
    try:
        return sla_setup_from_config(calendars=calendars, policies=policies, escalation=escalation)
    except SlaConfigError as error:
        where, _, problem = str(error).partition(": ")
        field = where.removeprefix("sla.")
        raise InvalidInput(f"{field}: {problem}", fields={field: problem}) from None


@dataclass(frozen=True)
class Revision:
    number: int | None  # None: the configuration file
    config: dict[str, Any]
    changed_at: datetime | None
    changed_by: int | None
    note: str


async def latest_revision(session: AsyncSession) -> SlaConfigRevision | None:
    return await session.scalar(
        select(SlaConfigRevision).order_by(SlaConfigRevision.id.desc()).limit(1)
    )


async def save_revision(
    session: AsyncSession,
    config: dict[str, Any],
    *,
    actor_id: int,
    note: str,
    now: datetime,
) -> tuple[SlaConfigRevision, SlaSetup]:
    setup = setup_of(config)
    row = SlaConfigRevision(config=config, note=note, changed_at=now, changed_by=actor_id)
    session.add(row)
    await session.flush()
    return row, setup


async def revisions(session: AsyncSession, *, limit: int = 50) -> list[SlaConfigRevision]:
    rows = await session.scalars(
        select(SlaConfigRevision).order_by(SlaConfigRevision.id.desc()).limit(limit)
    )
    return list(rows.all())


class SlaSetupSource:
    """The set-up in force in this process, and who to tell when it changes."""

    def __init__(self, *, setup: SlaSetup, settings: Settings) -> None:
        self.setup = setup
        self.revision: int | None = None
        self._settings = settings
        self._listeners: list[Callable[[SlaSetup], None]] = []

    def on_change(self, listener: Callable[[SlaSetup], None]) -> None:
        self._listeners.append(listener)

    def use(self, setup: SlaSetup, revision: int | None) -> None:
        self.setup, self.revision = setup, revision
        for listener in self._listeners:
            listener(setup)

    async def refresh(self, session: AsyncSession) -> bool:
        """Take the newest stored revision if it is not the one in force; True if so."""
        newest = await session.scalar(select(func.max(SlaConfigRevision.id)))
        if newest is None or newest == self.revision:
            return False
        row = await session.get(SlaConfigRevision, newest)
        assert row is not None
        try:
            setup = setup_of(row.config)
        except InvalidInput as error:
            # Checked when saved; a revision that no longer loads (a calendar's time
            # zone vanished from tzdata) must not stop the service.
            log.error("SLA revision %s cannot be used (%s); keeping the current one", newest, error)
            self.revision = newest
            return False
        self.use(setup, newest)
        return True

    def current(self, row: SlaConfigRevision | None) -> Revision:
        if row is None:
            return Revision(None, file_config(self._settings), None, None, "configuration file")
        return Revision(row.id, row.config, row.changed_at, row.changed_by, row.note)
