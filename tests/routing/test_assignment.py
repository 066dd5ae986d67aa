"""The assigner: tickets reach the fitting available agent through desk's change
path, wait in their team's queue when nobody fits, and move on when an agent
becomes available, frees capacity or stays offline too long."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import event, select

from desk.clock import FakeClock
from desk.events import DomainEvent, EventBus, Recipients, UnitOfWork
from desk.models import Agent, AgentSkill, Ticket, TicketChange, TicketPriority, User
from desk.ticket_changes import TicketChanged, TicketPatch, change_ticket
from desk.tickets import TicketDraft, TicketOpened, open_ticket
from desk.users import AgentIn, SkillIn, TeamDraft, UserDraft, create_team, create_user, get_user
from routing.assignment import Attendance, TicketAssigned, TicketAssigner
from routing.router import Assignment, CategoryRule, PhoneState, QueuedForTeam, RoutingRules
from routing.ticket_automation import TicketAutomation
from tests.conftest import Database

E = TypeVar("E", bound=DomainEvent)
AGENTS: dict[str, tuple[str, dict[str, int]]] = {
    # username: (team, skills)
    "anna": ("Billing", {"billing": 3}),
    "ben": ("Billing", {"billing": 3}),
    "carl": ("Billing", {"billing": 5, "german": 2}),
    "dora": ("Support", {}),
}


@dataclass
class Desk:
    """A real database, bus and clock; agents anna, ben, carl (billing) and dora."""

    database: Database
    clock: FakeClock
    bus: EventBus = field(default_factory=EventBus)
    attendance: Attendance = field(default_factory=Attendance)
    users: dict[str, int] = field(default_factory=dict)
    agents: dict[str, int] = field(default_factory=dict)
    teams: dict[str, int] = field(default_factory=dict)
    events: list[DomainEvent] = field(default_factory=list)

    async def seed(self) -> None:
        async def keep(event: DomainEvent) -> None:
            self.events.append(event)

        self.bus.subscribe(DomainEvent, keep)
        now = self.clock.now()
        async with self.uow() as uow:
            for name in ("Billing", "Support"):
                team = await create_team(uow.session, TeamDraft(name=name), now=now)
                self.teams[name] = team.id
            for index, (username, (team_name, skills)) in enumerate(AGENTS.items()):
                user = await create_user(
                    uow.session,
                    UserDraft(
                        username=username,
                        display_name=username.title(),
                        password="long enough",
                        agent=AgentIn(
                            extension=f"10{index:02d}",
                            team_id=self.teams[team_name],
                            skills=[SkillIn(name=s, level=n) for s, n in skills.items()],
                        ),
                    ),
                    now=now,
                )
                assert user.agent is not None
                self.users[username], self.agents[username] = user.id, user.agent.id
            await uow.commit()

    def uow(self) -> UnitOfWork:
        return UnitOfWork(sessions=self.database.sessions, bus=self.bus)

    def assigner(self, automation: TicketAutomation | None = None, **rules: Any) -> TicketAssigner:
        return TicketAssigner(
            sessions=self.database.sessions,
            bus=self.bus,
            clock=self.clock,
            rules=RoutingRules(
                **{
                    "categories": {
                        "billing": CategoryRule(
                            skills={"billing": 3}, team_id=self.teams["Billing"]
                        ),
                        "sepa": CategoryRule(skills={"billing": 5, "german": 2}),
                    },
                    **rules,
                }
            ),
            availability=self.attendance,
            automation=automation,
        )

    def online(self, *names: str) -> None:
        for name in names:
            self.attendance.connected(self.agents[name], f"sid-{name}")

    def offline(self, name: str) -> None:
        self.attendance.disconnected(self.agents[name], f"sid-{name}", now=self.clock.now())

    async def open(
        self,
        category: str | None = "billing",
        priority: str = "normal",
        by: str | None = None,
        subject: str = "Invoice is wrong",
    ) -> int:
        draft = TicketDraft(
            subject=subject,
            category=category,
            priority=TicketPriority(priority),
            assignee_id=self.users[by] if by else None,
        )
        async with self.uow() as uow:
            ticket, event = await open_ticket(
                uow.session, draft, actor_id=None, now=self.clock.now()
            )
            uow.record(event)
            await uow.commit()
            return ticket.id

    async def change(self, ticket_id: int, who: str, **fields: Any) -> None:
        async with self.uow() as uow:
            version = await uow.session.scalar(select(Ticket.version).where(Ticket.id == ticket_id))
            _, events = await change_ticket(
                uow.session,
                ticket_id,
                TicketPatch.model_validate({"version": version, **fields}, strict=False),
                actor=await get_user(uow.session, self.users[who]),
                now=self.clock.now(),
            )
            for event in events:
                uow.record(event)
            await uow.commit()

    async def ticket(self, ticket_id: int) -> Ticket:
        async with self.database.sessions() as session:
            ticket = await session.get(Ticket, ticket_id)
            assert ticket is not None
            return ticket

    async def holder(self, ticket_id: int) -> str | None:
        user_id = (await self.ticket(ticket_id)).assignee_id
        return next((name for name, id_ in self.users.items() if id_ == user_id), None)

    async def history(self, ticket_id: int) -> list[tuple[str, int | None, str | None]]:
        async with self.database.sessions() as session:
            rows = await session.scalars(
                select(TicketChange)
                .where(TicketChange.ticket_id == ticket_id)
                .order_by(TicketChange.id)
            )
            return [(row.field, row.actor_id, row.new) for row in rows]

    def of(self, kind: type[E]) -> list[E]:
        return [event for event in self.events if isinstance(event, kind)]


async def desk_with(database: Database, clock: FakeClock) -> Desk:
    desk = Desk(database, clock)
    await desk.seed()
    return desk


async def test_a_new_ticket_goes_to_the_available_agent_with_the_skills(
    database: Database, clock: FakeClock
) -> None:
    desk = await desk_with(database, clock)
    desk.online("carl", "dora")  # anna and ben are away; dora lacks the skills
    ticket = await desk.open(category="sepa")

    decision = await desk.assigner().ticket_needs_agent(ticket)

    assert isinstance(decision, Assignment) and decision.agent_id == desk.agents["carl"]
    assert await desk.holder(ticket) == "carl"


async def _entities_built_routing(desk: Desk) -> Counter[str]:
    ticket = await desk.open(category="sepa")
    built: Counter[str] = Counter()

    def loaded(target: object, _context: object) -> None:
        built[type(target).__name__] += 1

    for entity in (Agent, AgentSkill, User):
        event.listen(entity, "load", loaded)
    try:
        decision = await desk.assigner().ticket_needs_agent(ticket)
    finally:
        for entity in (Agent, AgentSkill, User):
            event.remove(entity, "load", loaded)
    assert isinstance(decision, Assignment)
    return built


async def test_routing_a_ticket_builds_no_more_entities_however_many_agents_there_are(
    database: Database, clock: FakeClock
) -> None:
    # Every ticket routed reads every agent: as an entity with its skills each, that
    # cost tens of milliseconds and tens of thousands of objects a ticket with 2,000
    # agents (docs/benchmarks.md, cluster). Only the assignee is loaded, by the change.
    desk = await desk_with(database, clock)
    desk.online("carl")
    with_five = await _entities_built_routing(desk)
    async with desk.uow() as uow:
        for n in range(20):
            await create_user(
                uow.session,
                UserDraft(
                    username=f"extra{n}",
                    display_name=f"Extra {n}",
                    password="long enough",
                    agent=AgentIn(extension=f"20{n:02d}", skills=[SkillIn(name="sepa")]),
                ),
                now=clock.now(),
            )
        await uow.commit()

    with_twenty_five = await _entities_built_routing(desk)

    assert with_twenty_five == with_five


async def test_the_assignment_is_audited_and_the_agent_is_told_after_commit(
    database: Database, clock: FakeClock
) -> None:
    desk = await desk_with(database, clock)
    desk.online("anna")
    ticket = await desk.open()

    await desk.assigner().ticket_needs_agent(ticket)

    history = await desk.history(ticket)
    assert ("assignee_id", None, str(desk.users["anna"])) in history
    routing = [new for name, _, new in history if name == "routing"]
    assert routing == [f"assigned to agent {desk.agents['anna']}: 1 of 4 agents fit; "
                       "excluded: skills 1, offline 2"]  # fmt: skip
    [told] = desk.of(TicketAssigned)
    assert told.recipients == Recipients(agents=(desk.agents["anna"],))
    assert told.payload()["ticket_id"] == ticket
    [changed] = desk.of(TicketChanged)
    assert changed.assignee_agent_id == desk.agents["anna"]


async def test_a_ticket_nobody_fits_waits_in_its_team_queue(
    database: Database, clock: FakeClock
) -> None:
    desk = await desk_with(database, clock)
    desk.online("dora")
    ticket = await desk.open()

    decision = await desk.assigner().ticket_needs_agent(ticket)

    assert isinstance(decision, QueuedForTeam) and decision.team_id == desk.teams["Billing"]
    row = await desk.ticket(ticket)
    assert (row.assignee_id, row.team_id) == (None, desk.teams["Billing"])
    assert desk.of(TicketAssigned) == []


async def test_a_queued_ticket_goes_to_the_agent_who_becomes_available(
    database: Database, clock: FakeClock
) -> None:
    desk = await desk_with(database, clock)
    assigner = desk.assigner()
    ticket = await desk.open()
    await assigner.ticket_needs_agent(ticket)
    assert await desk.holder(ticket) is None

    desk.online("ben")
    made = await assigner.agent_became_available(desk.agents["ben"])

    assert [a.ticket_id for a in made] == [ticket]
    assert await desk.holder(ticket) == "ben"


async def test_an_agent_who_is_not_available_triggers_nothing(
    database: Database, clock: FakeClock
) -> None:
    desk = await desk_with(database, clock)
    ticket = await desk.open()
    desk.attendance.phone_changed(desk.agents["ben"], PhoneState.PAUSED, now=clock.now())

    assert await desk.assigner().agent_became_available(desk.agents["ben"]) == []
    assert await desk.holder(ticket) is None


async def test_the_backlog_is_served_most_urgent_first(
    database: Database, clock: FakeClock
) -> None:
    desk = await desk_with(database, clock)
    assigner = desk.assigner(default_capacity=4)
    normal = await desk.open(priority="normal")
    urgent = await desk.open(priority="urgent")

    desk.online("anna")
    made = await assigner.agent_became_available(desk.agents["anna"])

    assert [a.ticket_id for a in made] == [urgent]  # 4 of 4: no room for the normal one
    assert await desk.holder(normal) is None


async def test_an_agent_at_capacity_gets_more_once_a_ticket_is_solved(
    database: Database, clock: FakeClock
) -> None:
    desk = await desk_with(database, clock)
    desk.online("anna")
    assigner = desk.assigner(default_capacity=2)
    first, second, third = [await desk.open() for _ in range(3)]
    for ticket in (first, second, third):
        await assigner.ticket_needs_agent(ticket)
    assert [await desk.holder(t) for t in (first, second, third)] == ["anna", "anna", None]

    await desk.change(first, "anna", status="solved")
    await assigner.rebalance()

    assert await desk.holder(third) == "anna"


async def test_equal_agents_take_turns(database: Database, clock: FakeClock) -> None:
    desk = await desk_with(database, clock)
    desk.online("anna", "ben")
    assigner = desk.assigner()
    holders = []
    for _ in range(3):
        ticket = await desk.open()
        await assigner.ticket_needs_agent(ticket)
        holders.append(await desk.holder(ticket))
        await desk.change(ticket, "anna", status="solved")  # equal loads again
        clock.advance(60)
    assert holders == ["anna", "ben", "anna"]


async def test_the_lighter_loaded_agent_gets_the_ticket(
    database: Database, clock: FakeClock
) -> None:
    desk = await desk_with(database, clock)
    desk.online("anna", "ben")
    await desk.open(by="anna", priority="high")
    ticket = await desk.open()

    await desk.assigner().ticket_needs_agent(ticket)

    assert await desk.holder(ticket) == "ben"


async def test_an_agent_ready_on_the_phone_counts_without_a_browser(
    database: Database, clock: FakeClock
) -> None:
    desk = await desk_with(database, clock)
    desk.attendance.phone_changed(desk.agents["ben"], PhoneState.READY, now=clock.now())
    ticket = await desk.open()

    await desk.assigner().ticket_needs_agent(ticket)

    assert await desk.holder(ticket) == "ben"


async def test_an_agent_on_a_call_gets_tickets_only_when_allowed(
    database: Database, clock: FakeClock
) -> None:
    desk = await desk_with(database, clock)
    desk.online("ben")
    desk.attendance.phone_changed(desk.agents["ben"], PhoneState.ON_CALL, now=clock.now())
    first, second = await desk.open(), await desk.open()

    await desk.assigner().ticket_needs_agent(first)
    await desk.assigner(allow_on_call=True).ticket_needs_agent(second)

    assert (await desk.holder(first), await desk.holder(second)) == (None, "ben")


async def test_an_offline_agents_tickets_move_on_after_the_grace(
    database: Database, clock: FakeClock
) -> None:
    desk = await desk_with(database, clock)
    desk.online("anna")
    assigner = desk.assigner(reassign_when_offline=True, offline_grace=timedelta(minutes=15))
    ticket = await desk.open()
    await assigner.ticket_needs_agent(ticket)
    desk.offline("anna")
    desk.online("ben")

    clock.advance(timedelta(minutes=14))
    assert await assigner.rebalance() == []
    clock.advance(timedelta(minutes=1))
    made = await assigner.rebalance()

    assert [a.ticket_id for a in made] == [ticket]
    assert await desk.holder(ticket) == "ben"
    [moved] = [e for e in desk.of(TicketAssigned) if e.agent_id == desk.agents["ben"]]
    assert moved.taken_from == desk.agents["anna"]


async def test_offline_agents_keep_their_tickets_unless_configured(
    database: Database, clock: FakeClock
) -> None:
    desk = await desk_with(database, clock)
    desk.online("anna")
    assigner = desk.assigner()
    ticket = await desk.open()
    await assigner.ticket_needs_agent(ticket)
    desk.offline("anna")
    desk.online("ben")

    clock.advance(timedelta(hours=2))
    assert await assigner.rebalance() == []
    assert await desk.holder(ticket) == "anna"


async def test_the_bus_routes_new_and_returned_tickets(
    database: Database, clock: FakeClock
) -> None:
    desk = await desk_with(database, clock)
    desk.online("anna", "ben")
    assigner = desk.assigner()
    desk.bus.subscribe(TicketOpened, assigner.on_ticket_opened)
    desk.bus.subscribe(TicketChanged, assigner.on_ticket_changed)
    assigner.start()
    try:
        ticket = await desk.open()
        await assigner.settled()
        assert await desk.holder(ticket) == "anna"

        await desk.change(ticket, "anna", assignee_id=None)  # anna hands it back
        await assigner.settled()
        assert await desk.holder(ticket) == "ben"
    finally:
        await assigner.stop()


async def test_a_ticket_opened_with_an_assignee_is_left_alone(
    database: Database, clock: FakeClock
) -> None:
    desk = await desk_with(database, clock)
    desk.online("anna")
    ticket = await desk.open(by="dora")

    assert await desk.assigner().ticket_needs_agent(ticket) is None
    assert await desk.holder(ticket) == "dora"


def test_an_agent_is_online_until_their_last_browser_closes(clock: FakeClock) -> None:
    attendance = Attendance()
    assert attendance.connected(7, "tab-1") is True
    assert attendance.connected(7, "tab-2") is False
    assert attendance.disconnected(7, "tab-1", now=clock.now()) is False
    assert attendance.agent_availability()[7].presence == "online"
    assert attendance.disconnected(7, "tab-2", now=clock.now()) is True
    seen = attendance.agent_availability()[7]
    assert (seen.presence, seen.offline_since) == ("offline", clock.now())


def test_an_agent_is_offline_since_they_left_both_browser_and_phone(clock: FakeClock) -> None:
    attendance = Attendance()
    attendance.connected(7, "tab")
    attendance.phone_changed(7, PhoneState.READY, now=clock.now())
    attendance.disconnected(7, "tab", now=clock.now())
    assert attendance.agent_availability()[7].offline_since is None  # still on the phone
    left = clock.advance(300)
    attendance.phone_changed(7, PhoneState.LOGGED_OUT, now=left)
    assert attendance.agent_availability()[7].offline_since == left
