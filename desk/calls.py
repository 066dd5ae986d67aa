"""The call log and screen-pop bookkeeping.

``cti`` tells this module what the PBX did, in plain values; it keeps every call
once (keyed by the PBX's Linkedid) and each (call, agent, phase) pop once, so a
reconnect, a duplicated event or a second process never logs or pops twice.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from desk.customers import add_to_timeline, match_phone
from desk.errors import NotFound
from desk.models import Call, CallDirection, CallOutcome, ScreenPop
from desk.surveys import survey_after_call


@dataclass(frozen=True, slots=True)
class CallStart:
    call_id: str
    direction: CallDirection
    caller_raw: str
    caller_name: str
    queue: str | None
    started_at: datetime


async def call_by_pbx_id(session: AsyncSession, call_id: str) -> Call | None:
    return await session.scalar(select(Call).where(Call.call_id == call_id))


async def log_call_started(session: AsyncSession, start: CallStart, *, region: str) -> Call:
    """The call's row, created on first sight; later sightings return the same row.

    Two writers may see a new call at once (the pop and the call log, or two
    processes): the insert yields to whichever row landed first.
    """
    existing = await call_by_pbx_id(session, start.call_id)
    if existing is not None:
        if existing.queue is None and start.queue is not None:
            existing.queue = start.queue
        return existing
    match = await match_phone(session, start.caller_raw, region=region)
    values: dict[str, Any] = {
        "call_id": start.call_id,
        "direction": start.direction.value,
        "caller_raw": start.caller_raw[:64],
        "caller_e164": match.number.e164,
        "caller_name": start.caller_name[:200],
        # A number shared by several customers is not guessed; the agent chooses.
        "customer_id": match.candidates[0].id if len(match.candidates) == 1 else None,
        "queue": start.queue,
        "agents": [],
        "started_at": start.started_at,
    }
    await session.execute(
        _insert(session)(Call).values(**values).on_conflict_do_nothing(index_elements=["call_id"])
    )
    call = await call_by_pbx_id(session, start.call_id)
    assert call is not None  # inserted now, or by the writer that won
    return call


async def call_row_id(
    session: AsyncSession,
    start: CallStart,
    *,
    caller_e164: str | None,
    customer_id: int | None,
) -> int:
    """The id of the call's row, inserting it if new, with the caller already matched
    (the pop has matched the number for its caller card)."""
    values: dict[str, Any] = {
        "call_id": start.call_id,
        "direction": start.direction.value,
        "caller_raw": start.caller_raw[:64],
        "caller_e164": caller_e164,
        "caller_name": start.caller_name[:200],
        "customer_id": customer_id,
        "queue": start.queue,
        "agents": [],
        "started_at": start.started_at,
    }
    inserted = await session.scalar(
        _insert(session)(Call)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["call_id"])
        .returning(Call.id)
    )
    if inserted is not None:
        return int(inserted)
    existing = await session.scalar(select(Call.id).where(Call.call_id == start.call_id))
    assert existing is not None  # the conflicting row
    return int(existing)


def _insert(session: AsyncSession) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def note_agent(call: Call, agent_id: int) -> None:
    if agent_id not in call.agents:
        # Reassign, not append: JSON columns only notice a new value.
        call.agents = [*call.agents, agent_id]


async def log_call_answered(
    session: AsyncSession, call: Call, *, agent_id: int | None, answered_at: datetime
) -> None:
    if call.answered_at is None:
        call.answered_at = answered_at
        call.wait_seconds = max(0.0, (answered_at - call.started_at).total_seconds())
    if agent_id is not None:
        call.agent_id = agent_id
        note_agent(call, agent_id)


async def log_call_ended(
    session: AsyncSession,
    call: Call,
    *,
    outcome: CallOutcome,
    ended_at: datetime,
    wait_seconds: float | None = None,
    talk_seconds: float | None = None,
    survey: bool = True,
) -> bool:
    """Close the call's row once; returns False if it was already closed.

    ``survey=False``: the end was not seen, so its talk time is a guess and the
    caller is not asked how the call went."""
    if call.ended_at is not None:
        return False
    call.ended_at = ended_at
    call.outcome = outcome.value
    if wait_seconds is not None:
        call.wait_seconds = wait_seconds
    elif call.wait_seconds is None:
        call.wait_seconds = max(0.0, (ended_at - call.started_at).total_seconds())
    if talk_seconds is not None:
        call.talk_seconds = talk_seconds
    elif call.answered_at is not None:
        call.talk_seconds = max(0.0, (ended_at - call.answered_at).total_seconds())
    if call.customer_id is not None:
        add_to_timeline(
            session,
            customer_id=call.customer_id,
            kind="call",
            ref_id=call.id,
            occurred_at=call.started_at,
            summary=_call_summary(call),
            data={
                "call_id": call.call_id,
                "direction": call.direction,
                "outcome": call.outcome,
                "queue": call.queue,
                "agent_id": call.agent_id,
                "wait_seconds": call.wait_seconds,
                "talk_seconds": call.talk_seconds,
            },
        )
    if survey:
        await survey_after_call(session, call, now=ended_at)  # if answered and surveys are on
    return True


def unseen_outcome(call: Call) -> CallOutcome:
    """How a call whose end nobody saw is logged: answered if an answer was written,
    otherwise missed — whether the caller gave up or an agent answered while the link
    was down cannot be told, so it is neither counted abandoned nor owed a call back."""
    return CallOutcome.ANSWERED if call.answered_at is not None else CallOutcome.MISSED


async def close_calls_ended_unseen(
    session: AsyncSession, *, live: Collection[str], listed_at: datetime
) -> list[Call]:
    """Close the open rows of calls that began before ``listed_at`` and are not among
    the ``live`` calls the PBX listed then; their end is taken as ``listed_at``."""
    rows = await session.scalars(
        select(Call).where(Call.ended_at.is_(None), Call.started_at <= listed_at)
    )
    closed = []
    for call in rows:
        if call.call_id in live:
            continue
        await log_call_ended(
            session, call, outcome=unseen_outcome(call), ended_at=listed_at, survey=False
        )
        closed.append(call)
    return closed


def _call_summary(call: Call) -> str:
    where = f" via {call.queue}" if call.queue else ""
    if call.outcome == CallOutcome.ANSWERED.value:
        return f"{call.direction} call{where}, talked {round(call.talk_seconds or 0)} s"
    return f"{call.direction} call{where}, {call.outcome} after {round(call.wait_seconds or 0)} s"


@dataclass(frozen=True, slots=True)
class PopClaim:
    call_id: str
    agent_id: int
    phase: str


async def claim_pops(
    session: AsyncSession, claims: Sequence[PopClaim], *, now: datetime
) -> dict[PopClaim, int]:
    """Reserve each (call, agent, phase) pop; the sequence number of each one not sent before."""
    if not claims:
        return {}
    rows = [
        {"call_id": c.call_id, "agent_id": c.agent_id, "phase": c.phase, "sent_at": now}
        for c in dict.fromkeys(claims)
    ]
    statement = (
        _insert(session)(ScreenPop)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["call_id", "agent_id", "phase"])
        .returning(ScreenPop.id, ScreenPop.call_id, ScreenPop.agent_id, ScreenPop.phase)
    )
    result = await session.execute(statement)
    return {PopClaim(call_id, agent_id, phase): id_ for id_, call_id, agent_id, phase in result}


async def claimed_pops(session: AsyncSession, claims: Sequence[PopClaim]) -> dict[PopClaim, int]:
    """The sequence numbers of pops claimed earlier (by this process or another)."""
    if not claims:
        return {}
    rows = await session.execute(
        select(ScreenPop.id, ScreenPop.call_id, ScreenPop.agent_id, ScreenPop.phase).where(
            tuple_(ScreenPop.call_id, ScreenPop.agent_id, ScreenPop.phase).in_(
                [(c.call_id, c.agent_id, c.phase) for c in dict.fromkeys(claims)]
            )
        )
    )
    return {PopClaim(call_id, agent_id, phase): id_ for id_, call_id, agent_id, phase in rows}


async def recent_calls(session: AsyncSession, customer_id: int, *, limit: int = 5) -> list[Call]:
    rows = await session.scalars(
        select(Call)
        .where(Call.customer_id == customer_id)
        .order_by(Call.started_at.desc(), Call.id.desc())
        .limit(limit)
    )
    return list(rows.all())


async def list_calls(
    session: AsyncSession,
    *,
    customer_id: int | None = None,
    agent_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Call], int]:
    query = select(Call)
    if customer_id is not None:
        query = query.where(Call.customer_id == customer_id)
    if agent_id is not None:
        query = query.where(Call.agent_id == agent_id)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.scalars(
        query.order_by(Call.started_at.desc(), Call.id.desc()).limit(limit).offset(offset)
    )
    return list(rows.all()), total


async def get_call(session: AsyncSession, call_log_id: int) -> Call:
    call = await session.get(Call, call_log_id)
    if call is None:
        raise NotFound(f"call {call_log_id} not found")
    return call
