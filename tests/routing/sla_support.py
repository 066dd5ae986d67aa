"""What the SLA tests share: a Berlin office calendar, people, and a small
world that opens and changes tickets through desk's real services with a
real ``SlaClockKeeper``, a real database and a FakeClock."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select

from desk.clock import FakeClock
from desk.customers import CustomerDraft, PhoneIn, create_customer
from desk.events import DomainEvent, EventBus, UnitOfWork
from desk.models import MessageKind, Role, SlaTimer, Ticket, TicketChange, TicketClock, Tier
from desk.settings import Settings, load_settings
from desk.ticket_changes import TicketPatch, add_message, change_ticket
from desk.tickets import TicketDraft, open_ticket
from desk.users import AgentIn, TeamDraft, UserDraft, create_team, create_user, get_user
from routing.sla_config import SlaSetup, sla_setup_from_config
from routing.sla_keeper import SlaClockKeeper, ticket_clocks, ticket_timers
from routing.watcher import SlaWatcher
from tests.conftest import TEST_SECRET, Database

BERLIN = ZoneInfo("Europe/Berlin")
HANS_PHONE = "+4930123456789"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
OFFICE: dict[str, Any] = {
    "time_zone": "Europe/Berlin",
    "hours": {day: ["08:00-18:00"] for day in WEEKDAYS},
    "holidays": {"country": "DE", "subdivision": "BE"},
}
ALWAYS: dict[str, Any] = {
    "time_zone": "UTC",
    "hours": {day: ["00:00-24:00"] for day in (*WEEKDAYS, "sat", "sun")},
}
STANDARD: dict[str, Any] = {
    "name": "Standard",
    "tiers": ["standard", "gold", "platinum"],
    "priorities": ["low", "normal", "high", "urgent"],
    "calendar": "office",
    "targets": {
        "first_response": {"target": "8h", "warn_before": "20%"},
        "next_response": {"target": "8h", "warn_before": "1h"},
        "resolution": {"target": "30h", "warn_before": "15m"},
    },
}
LEVELS: dict[str, Any] = {
    "levels": [
        {"who": "assignee", "past": "breach", "after": "0m"},
        {"who": "team_lead", "past": "breach", "after": "2h", "email": True},
        {"who": "supervisors", "past": "breach", "after": "10h", "email": True},
    ]
}
# A 24/7 policy: due times, warnings and breaches are plain arithmetic from the clock.
ROUND_THE_CLOCK: dict[str, Any] = {
    "name": "Round the clock",
    "tiers": ["standard", "gold", "platinum"],
    "priorities": ["low", "normal", "high", "urgent"],
    "calendar": "always",
    "targets": {
        "first_response": {"target": "2h", "warn_before": "30m"},
        "resolution": {"target": "8h", "warn_before": "1h"},
    },
}
E = TypeVar("E", bound=DomainEvent)


def berlin(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=BERLIN)


def round_the_clock_settings(database_url: str) -> Settings:
    """Test settings of a running desk with only the 24/7 policy and ``LEVELS``."""
    return load_settings(
        environ={},
        overrides={
            "mode": "test",
            "secret_key": TEST_SECRET,
            "database_url": database_url,
            "phone_region": "DE",
            "sla_calendars": {"always": ALWAYS},
            "sla_policies": [ROUND_THE_CLOCK],
            "sla_escalation": LEVELS,
        },
    )


def setup(
    policies: Sequence[Mapping[str, Any]] = (STANDARD,),
    escalation: Mapping[str, Any] = LEVELS,
    calendars: Mapping[str, Any] | None = None,
) -> SlaSetup:
    return sla_setup_from_config(
        calendars=calendars or {"office": OFFICE, "always": ALWAYS},
        policies=list(policies),
        escalation=escalation,
    )


@dataclass
class World:
    database: Database
    clock: FakeClock
    keeper: SlaClockKeeper
    bus: EventBus
    ids: dict[str, int]
    events: list[DomainEvent] = field(default_factory=list)

    @classmethod
    async def create(
        cls, database: Database, clock: FakeClock, sla: SlaSetup | None = None
    ) -> World:
        world = cls(database, clock, SlaClockKeeper(sla or setup()), EventBus(), {})

        async def keep(event: DomainEvent) -> None:
            world.events.append(event)

        world.bus.subscribe(DomainEvent, keep)
        world.ids = await _seed(database, clock)
        return world

    def uow(self) -> UnitOfWork:
        return UnitOfWork(sessions=self.database.sessions, bus=self.bus)

    def watcher(self, **options: Any) -> SlaWatcher:
        return SlaWatcher(
            sessions=self.database.sessions,
            bus=self.bus,
            clock=self.clock,
            setup=self.keeper.setup,
            **options,
        )

    def of(self, kind: type[E]) -> list[E]:
        return [event for event in self.events if isinstance(event, kind)]

    async def open(self, **fields: Any) -> int:
        draft = {
            "subject": "Router is down",
            "customer_id": self.ids["customer"],
            "assignee_id": self.ids["alice"],
            "team_id": self.ids["team"],
            **fields,
        }
        async with self.uow() as uow:
            ticket, event = await open_ticket(
                uow.session,
                TicketDraft.model_validate_json(json.dumps(draft)),
                actor_id=self.ids["alice"],
                now=self.clock.now(),
                sla=self.keeper,
            )
            uow.record(event)
            await uow.commit()
            return ticket.id

    async def change(self, ticket_id: int, who: str = "alice", **fields: Any) -> None:
        async with self.uow() as uow:
            actor = await get_user(uow.session, self.ids[who])
            version = (await ticket_version(uow, ticket_id)) or 0
            _, events = await change_ticket(
                uow.session,
                ticket_id,
                TicketPatch.model_validate_json(json.dumps({"version": version, **fields})),
                actor=actor,
                now=self.clock.now(),
                sla=self.keeper,
            )
            for event in events:
                uow.record(event)
            await uow.commit()

    async def message(self, ticket_id: int, kind: MessageKind, who: str | None) -> None:
        async with self.uow() as uow:
            author = await get_user(uow.session, self.ids[who]) if who else None
            _, events = await add_message(
                uow.session,
                ticket_id,
                kind=kind,
                body="...",
                author=author,
                now=self.clock.now(),
                sla=self.keeper,
            )
            for event in events:
                uow.record(event)
            await uow.commit()

    async def customer_says(self, ticket_id: int) -> None:
        await self.message(ticket_id, MessageKind.CUSTOMER_MESSAGE, None)

    async def reply(self, ticket_id: int, who: str = "alice") -> None:
        await self.message(ticket_id, MessageKind.PUBLIC_REPLY, who)

    async def clocks(self, ticket_id: int) -> dict[str, TicketClock]:
        async with self.database.sessions() as session:
            return {row.clock: row for row in await ticket_clocks(session, ticket_id)}

    async def timers(self, ticket_id: int) -> list[SlaTimer]:
        async with self.database.sessions() as session:
            return await ticket_timers(session, ticket_id)

    async def pending(self, ticket_id: int) -> list[tuple[str, str, int, datetime]]:
        """Unfired timers as (clock, kind, level, due_at)."""
        return [
            (t.clock, t.kind, t.level, t.due_at)
            for t in await self.timers(ticket_id)
            if t.fired_at is None
        ]

    async def sla_history(self, ticket_id: int) -> list[tuple[str, str | None]]:
        async with self.database.sessions() as session:
            rows = await session.scalars(
                select(TicketChange)
                .where(TicketChange.ticket_id == ticket_id, TicketChange.field.like("sla:%"))
                .order_by(TicketChange.id)
            )
            return [(row.field, row.new) for row in rows]


async def ticket_version(uow: UnitOfWork, ticket_id: int) -> int | None:
    return await uow.session.scalar(select(Ticket.version).where(Ticket.id == ticket_id))


async def _seed(database: Database, clock: FakeClock) -> dict[str, int]:
    now = clock.now()
    async with UnitOfWork(sessions=database.sessions, bus=EventBus()) as uow:
        session = uow.session
        tom = await create_user(
            session,
            UserDraft(
                username="tom",
                display_name="Tom Lead",
                password="long enough",
                email="tom@example.com",
                agent=AgentIn(extension="1000"),
            ),
            now=now,
        )
        team = await create_team(session, TeamDraft(name="Support", lead_user_id=tom.id), now=now)
        alice = await create_user(
            session,
            UserDraft(
                username="alice",
                display_name="Alice",
                password="long enough",
                email="alice@example.com",
                agent=AgentIn(extension="1001", team_id=team.id),
            ),
            now=now,
        )
        sam = await create_user(
            session,
            UserDraft(
                username="sam",
                display_name="Sam",
                password="long enough",
                email="sam@example.com",
                role=Role.SUPERVISOR,
            ),
            now=now,
        )
        customer = await create_customer(
            uow,
            CustomerDraft(name="Hans", tier=Tier.STANDARD, phones=[PhoneIn(number=HANS_PHONE)]),
            region="DE",
            now=now,
        )
        gold = await create_customer(
            uow, CustomerDraft(name="Goldie", tier=Tier.GOLD), region="DE", now=now
        )
        await uow.commit()
        assert alice.agent is not None and tom.agent is not None
        return {
            "tom": tom.id,
            "tom_agent": tom.agent.id,
            "alice": alice.id,
            "alice_agent": alice.agent.id,
            "sam": sam.id,
            "team": team.id,
            "customer": customer.id,
            "gold": gold.id,
        }
