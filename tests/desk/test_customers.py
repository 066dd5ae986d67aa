from __future__ import annotations

import pytest

from desk.clock import FakeClock
from desk.customers import CustomerDraft, PhoneIn, create_customer, match_phone
from desk.events import EventBus, UnitOfWork
from desk.phones import NumberStatus
from tests.conftest import Database


async def _add(
    database: Database, bus: EventBus, clock: FakeClock, name: str, *numbers: str
) -> int:
    async with UnitOfWork(sessions=database.sessions, bus=bus) as uow:
        draft = CustomerDraft(name=name, phones=[PhoneIn(number=n) for n in numbers])
        customer = await create_customer(uow, draft, region="DE", now=clock.now())
        await uow.commit()
        return customer.id


@pytest.mark.parametrize(
    "incoming", ["+4930123456789", "004930123456789", "030123456789", "030 123-456 789"]
)
async def test_a_caller_is_matched_whatever_format_the_pbx_sends(
    database: Database, bus: EventBus, clock: FakeClock, incoming: str
) -> None:
    erika = await _add(database, bus, clock, "Erika Mustermann", "030 1234 56789")
    async with database.sessions() as session:
        match = await match_phone(session, incoming, region="DE")
    assert [c.id for c in match.candidates] == [erika]


async def test_a_number_shared_by_several_customers_returns_every_candidate(
    database: Database, bus: EventBus, clock: FakeClock
) -> None:
    first = await _add(database, bus, clock, "Reception ACME", "+49 40 1234567")
    second = await _add(database, bus, clock, "Jan at ACME", "040 1234567")
    await _add(database, bus, clock, "Somebody Else", "+49 40 7654321")
    async with database.sessions() as session:
        match = await match_phone(session, "0049401234567", region="DE")
    assert [c.id for c in match.candidates] == [first, second]


@pytest.mark.parametrize("incoming", ["anonymous", "<unknown>", "", "1001", "garbage"])
async def test_withheld_or_invalid_numbers_match_nobody(
    database: Database, bus: EventBus, clock: FakeClock, incoming: str
) -> None:
    await _add(database, bus, clock, "Someone", "+491001")
    async with database.sessions() as session:
        match = await match_phone(session, incoming, region="DE")
    assert match.candidates == ()
    assert match.number.status in (NumberStatus.WITHHELD, NumberStatus.INVALID)


async def test_an_unknown_number_matches_nobody_but_reads_as_valid(
    database: Database, bus: EventBus, clock: FakeClock
) -> None:
    await _add(database, bus, clock, "Someone", "+4930123456789")
    async with database.sessions() as session:
        match = await match_phone(session, "+14155550100", region="DE")
    assert match.candidates == ()
    assert match.number.e164 == "+14155550100"


async def test_the_same_number_given_twice_in_two_formats_is_stored_once(
    database: Database, bus: EventBus, clock: FakeClock
) -> None:
    customer_id = await _add(database, bus, clock, "Twice", "+4930123456789", "030123456789")
    async with database.sessions() as session:
        match = await match_phone(session, "+4930123456789", region="DE")
    assert [c.id for c in match.candidates] == [customer_id]
    assert len(match.candidates[0].phones) == 1
