from __future__ import annotations

from desk.caller_card import caller_card
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
        card = await caller_card(session, "030 123456789", region="DE")
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
        card = await caller_card(session, "+493070080090", region="DE")
    assert card["customer"] is None
    assert sorted(c["name"] for c in card["candidates"]) == ["Anna", "Thomas"]


async def test_an_unknown_number_offers_its_e164_for_a_new_customer_form(
    database: Database, clock: FakeClock
) -> None:
    async with database.sessions() as session:
        card = await caller_card(session, "0044 20 7946 0958", region="DE")
    assert card["customer"] is None and card["candidates"] == []
    assert card["caller"]["number_e164"] == "+442079460958"


async def test_a_withheld_number_is_anonymous(database: Database, clock: FakeClock) -> None:
    async with database.sessions() as session:
        card = await caller_card(session, "anonymous", region="DE")
    assert card["caller"]["status"] == "withheld"
    assert card["caller"]["number_e164"] is None and card["customer"] is None
