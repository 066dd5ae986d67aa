from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from desk.caller_card import ClockStatus, caller_card, clock_status, worst_status
from desk.clock import FakeClock
from desk.customers import CustomerDraft, PhoneIn, create_customer
from desk.events import EventBus, UnitOfWork
from desk.models import TicketStatus, Tier
from desk.tickets import TicketDraft, open_ticket
from tests.conftest import Database


async def _customer(database: Database, clock: FakeClock, name: str, number: str) -> int:
    async with UnitOfWork(sessions=database.sessions, bus=EventBus()) as uow:
        customer = await create_customer(
            uow,
            CustomerDraft(name=name, tier=Tier.GOLD, phones=[PhoneIn(number=number)], tags=["vip"]),
            region="DE",
            now=clock.now(),
        )
        await uow.commit()
        return customer.id


async def test_the_card_of_a_known_caller_shows_tier_tags_and_open_tickets_only(
    database: Database, clock: FakeClock
) -> None:
    customer_id = await _customer(database, clock, "Erika", "+4930123456789")
    async with database.sessions() as session:
        open_one, _ = await open_ticket(
            session,
            TicketDraft(subject="Still broken", customer_id=customer_id),
            actor_id=None,
            now=clock.now(),
        )
        solved, _ = await open_ticket(
            session,
            TicketDraft(subject="Old", customer_id=customer_id),
            actor_id=None,
            now=clock.now(),
        )
        solved.status = TicketStatus.SOLVED.value
        await session.commit()
        card = await caller_card(session, "030 123456789", region="DE", now=clock.now())
    assert card["caller"] == {
        "number_raw": "030 123456789",
        "number_e164": "+4930123456789",
        "status": "valid",
    }
    assert card["customer"]["tier"] == "gold"
    assert card["customer"]["tags"] == ["vip"]
    assert [t["id"] for t in card["customer"]["open_tickets"]] == [open_one.id]
    assert card["candidates"] == []


async def test_a_shared_number_gives_candidates_and_no_customer(
    database: Database, clock: FakeClock
) -> None:
    await _customer(database, clock, "Thomas", "+493070080090")
    await _customer(database, clock, "Anna", "030 70080090")
    async with database.sessions() as session:
        card = await caller_card(session, "+493070080090", region="DE", now=clock.now())
    assert card["customer"] is None
    assert sorted(c["name"] for c in card["candidates"]) == ["Anna", "Thomas"]


async def test_an_unknown_number_offers_its_e164_for_a_new_customer_form(
    database: Database, clock: FakeClock
) -> None:
    async with database.sessions() as session:
        card = await caller_card(session, "0044 20 7946 0958", region="DE", now=clock.now())
    assert card["customer"] is None and card["candidates"] == []
    assert card["caller"]["number_e164"] == "+442079460958"


async def test_a_withheld_number_is_anonymous(database: Database, clock: FakeClock) -> None:
    async with database.sessions() as session:
        card = await caller_card(session, "anonymous", region="DE", now=clock.now())
    assert card["caller"]["status"] == "withheld"
    assert card["caller"]["number_e164"] is None and card["customer"] is None


NOW = datetime(2026, 11, 24, 9, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("state", "due_at", "warn_at", "breached_at", "expected"),
    [
        ({"running_since": "x"}, NOW + HOUR, NOW + HOUR / 2, None, ClockStatus.ON_TRACK),
        ({"running_since": "x"}, NOW + HOUR, NOW, None, ClockStatus.AT_RISK),
        ({"running_since": "x"}, NOW, NOW - HOUR, None, ClockStatus.BREACHED),
        ({"running_since": "x"}, NOW + HOUR, None, None, ClockStatus.ON_TRACK),
        ({"paused_since": "x"}, None, None, None, ClockStatus.PAUSED),
        ({"paused_since": "x"}, None, None, NOW - HOUR, ClockStatus.BREACHED),
        ({"stopped_at": "x"}, None, None, None, ClockStatus.MET),
        ({"stopped_at": "x"}, None, None, NOW - HOUR, ClockStatus.BREACHED),
        ({}, None, None, None, ClockStatus.PAUSED),
    ],
    ids=[
        "running-before-warning",
        "running-at-warning",
        "running-at-due",
        "running-without-warning",
        "paused",
        "paused-after-a-breach",
        "stopped-in-time",
        "stopped-late",
        "not-started",
    ],
)
def test_a_clock_stands_as_its_state_and_times_say(
    state: dict[str, str],
    due_at: datetime | None,
    warn_at: datetime | None,
    breached_at: datetime | None,
    expected: ClockStatus,
) -> None:
    status = clock_status(
        state=state, due_at=due_at, warn_at=warn_at, breached_at=breached_at, now=NOW
    )
    assert status is expected


def test_a_tickets_badge_is_its_worst_clock() -> None:
    assert worst_status([ClockStatus.MET, ClockStatus.AT_RISK, ClockStatus.ON_TRACK]) is (
        ClockStatus.AT_RISK
    )
    assert worst_status([]) is None
