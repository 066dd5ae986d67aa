from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from cti.recordings import recordings_dir
from desk.auth import authenticate
from desk.clock import FakeClock
from desk.customers import match_phone
from desk.demo_data import (
    DEMO_CUSTOMERS,
    DEMO_PASSWORD,
    SHARED_NUMBER,
    DemoSummary,
    demo_customers,
    seed_demo,
)
from desk.events import EventBus
from desk.models import Customer, Team, User

RECORDING_CALLERS = [
    "+4930123456789",
    "+4930555000111",
    "03099887766",
    "+14155550100",
    "+33142685300",
    "+4940987654",
    "+4930123450001",
    *(f"+4930111000{n:02d}" for n in range(1, 7)),
]


async def seed(database: Any, bus: EventBus, clock: FakeClock) -> DemoSummary:
    return await seed_demo(sessions=database.sessions, bus=bus, region="DE", now=clock.now())


async def test_the_four_agents_get_their_pbx_extension_interface_team_and_skill(
    database: Any, bus: EventBus, clock: FakeClock
) -> None:
    await seed(database, bus, clock)

    async with database.sessions() as session:
        teams = {t.id: t.name for t in (await session.scalars(select(Team))).all()}
        agents = {}
        for user in (await session.scalars(select(User).where(User.role == "agent"))).all():
            assert user.agent is not None
            skills = [s.skill.name for s in user.agent.skills]
            team = teams[user.agent.team_id] if user.agent.team_id else None
            agents[user.username] = (user.agent.extension, user.agent.interface, team, skills)
    assert agents == {
        "alice": ("1001", "PJSIP/1001", "Support", ["support"]),
        "bob": ("1002", "PJSIP/1002", "Support", ["support"]),
        "carol": ("1003", "PJSIP/1003", "Sales", ["sales"]),
        "dave": ("1004", "PJSIP/1004", "Sales", ["sales"]),
    }


async def test_alice_leads_support_and_carol_leads_sales(
    database: Any, bus: EventBus, clock: FakeClock
) -> None:
    await seed(database, bus, clock)

    async with database.sessions() as session:
        rows = await session.execute(
            select(Team.name, User.username).join(User, User.id == Team.lead_user_id)
        )
        assert dict(rows.all()) == {"Support": "alice", "Sales": "carol"}


@pytest.mark.parametrize(("username", "role"), [("sam", "supervisor"), ("admin", "admin")])
async def test_the_supervisor_and_admin_sign_in_with_the_demo_password(
    database: Any, bus: EventBus, clock: FakeClock, username: str, role: str
) -> None:
    await seed(database, bus, clock)

    async with database.sessions() as session:
        user = await authenticate(session, username, DEMO_PASSWORD)
        assert (user.role, user.agent) == (role, None)


async def test_about_two_hundred_customers_are_created(
    database: Any, bus: EventBus, clock: FakeClock
) -> None:
    summary = await seed(database, bus, clock)

    async with database.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(Customer))
        with_org = await session.scalar(
            select(func.count()).select_from(Customer).where(Customer.organisation_id.is_not(None))
        )
    assert summary.customers_created == count == DEMO_CUSTOMERS == 200
    assert with_org and with_org > 20


async def test_each_recorded_caller_pops_exactly_one_customer(
    database: Any, bus: EventBus, clock: FakeClock
) -> None:
    await seed(database, bus, clock)

    async with database.sessions() as session:
        for caller in RECORDING_CALLERS:
            match = await match_phone(session, caller, region="DE")
            assert len(match.candidates) == 1, caller


async def test_the_national_caller_matches_the_customer_stored_in_e164(
    database: Any, bus: EventBus, clock: FakeClock
) -> None:
    await seed(database, bus, clock)

    async with database.sessions() as session:
        match = await match_phone(session, "03099887766", region="DE")
        (customer,) = match.candidates
        assert [p.number_e164 for p in customer.phones] == ["+493099887766"]
        assert customer.phones[0].number_raw != "03099887766"


async def test_erika_mustermann_is_a_platinum_customer(
    database: Any, bus: EventBus, clock: FakeClock
) -> None:
    await seed(database, bus, clock)

    async with database.sessions() as session:
        (erika,) = (await match_phone(session, "+4930123456789", region="DE")).candidates
    assert (erika.name, erika.tier) == ("Erika Mustermann", "platinum")


async def test_the_shared_number_offers_two_candidates(
    database: Any, bus: EventBus, clock: FakeClock
) -> None:
    await seed(database, bus, clock)

    async with database.sessions() as session:
        match = await match_phone(session, SHARED_NUMBER, region="DE")
    assert sorted(c.name for c in match.candidates) == ["Anna Schneider", "Thomas Schneider"]


async def test_seeding_twice_creates_nothing_the_second_time(
    database: Any, bus: EventBus, clock: FakeClock
) -> None:
    await seed(database, bus, clock)

    again = await seed(database, bus, clock)

    assert (again.teams_created, again.users_created, again.customers_created) == (0, 0, 0)
    async with database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Customer)) == DEMO_CUSTOMERS
        assert await session.scalar(select(func.count()).select_from(User)) == 6


def test_the_generated_customers_are_the_same_every_time_and_typed_in_mixed_formats() -> None:
    customers = demo_customers("DE")
    raw = [number for customer in customers for number in customer.phones]

    assert demo_customers("DE") == customers
    assert {number[:1] for number in raw} >= {"+", "0", "("}
    assert any(number.startswith("00") for number in raw)
    assert any("-" in number for number in raw)
    assert {number[:3] for number in raw} >= {"+1 ", "+44", "+33"}


def test_outside_germany_every_demo_number_still_reads_as_the_same_customer() -> None:
    from desk.phones import read_number

    german = [read_number(n, "DE").e164 for c in demo_customers("DE") for n in c.phones]
    american = [read_number(n, "US").e164 for c in demo_customers("US") for n in c.phones]

    assert american == german
    assert None not in american


def test_every_caller_in_the_ami_recordings_is_among_the_callers_checked_here() -> None:
    directory = recordings_dir()
    numbers = set()
    for path in directory.glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            raw = json.loads(line)["raw"]
            numbers.update(re.findall(r"^CallerIDNum: ([+0]\d{6,})\r$", raw, flags=re.M))

    assert numbers == set(RECORDING_CALLERS)
