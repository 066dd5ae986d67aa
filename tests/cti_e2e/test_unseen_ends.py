"""Calls that ended while no process watched the PBX: a process killed after the
caller hung up but before writing it leaves the call open in the log. The next
process to link lists the live channels and closes what the PBX no longer has."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from desk.calls import CallStart, log_call_answered, log_call_started
from desk.models import CallDirection
from desk.settings import Settings
from tests.conftest import Database
from tests.cti_e2e.conftest import running_desk


async def _left_open(database: Database, call_id: str, *, answered: bool) -> datetime:
    started_at = datetime.now(UTC) - timedelta(minutes=2)
    async with database.sessions() as session:
        call = await log_call_started(
            session,
            CallStart(
                call_id=call_id,
                direction=CallDirection.INBOUND,
                caller_raw="+4930123450001",
                caller_name="",
                queue="support",
                started_at=started_at,
            ),
            region="DE",
        )
        if answered:
            await log_call_answered(
                session, call, agent_id=None, answered_at=started_at + timedelta(seconds=8)
            )
        await session.commit()
    return started_at


async def test_calls_a_dead_process_left_open_are_closed_by_the_next_link_resync(
    settings: Settings, database: Database
) -> None:
    await _left_open(database, "1795460000.1", answered=True)
    await _left_open(database, "1795460000.7", answered=False)

    async with running_desk(settings, database, browsers=()) as desk:
        await desk.settle()
        rows = {call.call_id: call for call in await desk.calls()}

    talked, waited = rows["1795460000.1"], rows["1795460000.7"]
    assert talked.outcome == "answered" and talked.ended_at is not None
    assert waited.outcome == "missed" and waited.ended_at is not None
    # Closed as of the resync: after they began, not before the desk started.
    assert talked.talk_seconds is not None and talked.talk_seconds >= 110
