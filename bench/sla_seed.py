"""Seeding for ``bench.sla``: open tickets with their SLA clocks and timers, in bulk.

What a ticket opened through the product writes (``desk.tickets.open_ticket`` with
``routing.sla_keeper.SlaClockKeeper``, as ``POST /api/v1/tickets`` does) is, per ticket:

* the ``tickets`` row (status ``new``);
* a ``ticket_changes`` row for the status, and one per clock the keeper starts
  (``sla:first_response`` "first response started", ``sla:resolution`` …);
* a ``timeline_entries`` row when the ticket has a customer;
* one ``ticket_clocks`` row per target of the chosen policy (first response and
  resolution running, next response idle) with its state JSON, due and warning time;
* the unfired ``sla_timers`` of the running clocks (warning, breach, escalation levels).

Rows are made here by the same functions the keeper calls for a new ticket
(``SlaSetup.choose``, ``clocks_after_status_change``, ``state_to_json``, the keeper's
own ``_due`` / ``_warn``, ``timer_schedule``, ``note_text``), cached per (policy,
creation instant).  ``bench.sla`` first opens a sample of tickets through
``open_ticket`` + ``SlaClockKeeper`` in real transactions (``open_through_product``)
and checks that the rows made here for the same tickets equal what the product
stored (``stored_rows``, ``compare``), column for column as the raw driver returns
them; it refuses to load when they differ.  (Columns not listed in ``TABLES`` take
their defaults.)  The bulk rows then go in with fresh ids: SQLite by ``executemany``
(foreign-key checks off on the loading connection), PostgreSQL by ``COPY`` (with
``session_replication_role = replica``, so foreign-key triggers are skipped; the rows
are consistent by construction).  Secondary indexes of the loaded tables are
dropped first and created again afterwards from their own stored definitions
(checked to be identical), which is much faster than maintaining them row by row.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from desk import auth
from desk.customers import CustomerDraft, create_customer
from desk.db import create_engine, session_factory
from desk.events import EventBus, UnitOfWork
from desk.models import Role, TicketChannel, TicketPriority, TicketStatus, Tier
from desk.tickets import TicketDraft, open_ticket
from desk.users import AgentIn, TeamDraft, UserDraft, create_team, create_user
from routing.escalation import timer_schedule
from routing.sla import SlaPolicy, clocks_after_status_change
from routing.sla_config import SlaSetup
from routing.sla_keeper import (
    AUDIT_PREFIX,
    SlaClockKeeper,
    _due,
    _warn,
    note_text,
    state_from_json,
    state_to_json,
)

PASSWORD = "bench-password-1234"
AGENT_PREFIX = "bench-agent-"
PRIORITIES = [
    (TicketPriority.LOW, 15),
    (TicketPriority.NORMAL, 55),
    (TicketPriority.HIGH, 20),
    (TicketPriority.URGENT, 10),
]
TIERS = [(Tier.STANDARD, 80), (Tier.GOLD, 15), (Tier.PLATINUM, 5)]
CHANNELS = [TicketChannel.PHONE, TicketChannel.WEB, TicketChannel.EMAIL, TicketChannel.API]
TOPICS = [
    "Cannot sign in",
    "Invoice question",
    "Delivery late",
    "Router keeps rebooting",
    "Change of address",
    "Refund request",
    "Contract renewal",
    "App crashes on start",
]
DESCRIPTIONS = [
    "",
    "Customer called twice about this.",
    "See the attached call; the customer expects a call back today.",
    "Happened again after the last update, on two devices.",
]

TICKET_COLUMNS = (
    "id",
    "subject",
    "description",
    "status",
    "priority",
    "category",
    "channel",
    "customer_id",
    "assignee_id",
    "team_id",
    "created_at",
    "updated_at",
    "version",
    "solved_at",
    "closed_at",
)
CHANGE_COLUMNS = ("id", "ticket_id", "at", "actor_id", "field", "old", "new")
CLOCK_COLUMNS = (
    "id",
    "ticket_id",
    "clock",
    "policy",
    "cycle",
    "state",
    "due_at",
    "warn_at",
    "breached_at",
    "escalated_level",
    "updated_at",
)
TIMER_COLUMNS = ("id", "ticket_id", "clock", "cycle", "kind", "level", "due_at", "fired_at")
TIMELINE_COLUMNS = ("id", "customer_id", "kind", "ref_id", "occurred_at", "summary", "data")
TABLES: dict[str, tuple[str, ...]] = {
    "tickets": TICKET_COLUMNS,
    "ticket_changes": CHANGE_COLUMNS,
    "timeline_entries": TIMELINE_COLUMNS,
    "ticket_clocks": CLOCK_COLUMNS,
    "sla_timers": TIMER_COLUMNS,
}


# -- people -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cast:
    """Who the tickets refer to: one team with a lead, agents, customers with tiers."""

    team_id: int
    agent_user_ids: tuple[int, ...]
    agent_usernames: tuple[str, ...]
    customers: tuple[tuple[int, str], ...]  # (id, tier)


async def seed_people(url: str, *, agents: int, customers: int, rng: random.Random) -> Cast:
    """Team, lead, supervisors, agents and customers, through the product's functions."""
    auth.use_cheap_hashing_for_tests()  # sign-in cost is not what this benchmark measures
    engine = create_engine(url)
    sessions = session_factory(engine)
    now = datetime.now(UTC)
    try:
        async with UnitOfWork(sessions=sessions, bus=EventBus()) as uow:
            session = uow.session
            lead = await create_user(
                session,
                UserDraft(
                    username="bench-lead",
                    display_name="Lena Lead",
                    password=PASSWORD,
                    role=Role.SUPERVISOR,
                    email="lead@example.com",
                ),
                now=now,
            )
            for n in range(2):
                await create_user(
                    session,
                    UserDraft(
                        username=f"bench-supervisor-{n}",
                        display_name=f"Supervisor {n}",
                        password=PASSWORD,
                        role=Role.SUPERVISOR,
                        email=f"supervisor{n}@example.com",
                    ),
                    now=now,
                )
            team = await create_team(
                session, TeamDraft(name="Support", lead_user_id=lead.id), now=now
            )
            ids, names = [], []
            for n in range(agents):
                name = f"{AGENT_PREFIX}{n}"
                user = await create_user(
                    session,
                    UserDraft(
                        username=name,
                        display_name=f"Agent {n}",
                        password=PASSWORD,
                        agent=AgentIn(extension=str(2001 + n), team_id=team.id),
                    ),
                    now=now,
                )
                ids.append(user.id)
                names.append(name)
            await uow.commit()
        tiers, weights = zip(*TIERS, strict=True)
        made: list[tuple[int, str]] = []
        for start in range(0, customers, 500):
            async with UnitOfWork(sessions=sessions, bus=EventBus()) as uow:
                for n in range(start, min(customers, start + 500)):
                    tier = rng.choices(tiers, weights)[0]
                    draft = CustomerDraft(name=f"Customer {n:05d}", tier=tier)
                    customer = await create_customer(uow, draft, region="DE", now=now)
                    made.append((customer.id, customer.tier))
                await uow.commit()
        return Cast(team.id, tuple(ids), tuple(names), tuple(made))
    finally:
        await engine.dispose()


# -- what each ticket is ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TicketSpec:
    subject: str
    description: str
    priority: str
    channel: str
    customer_id: int | None
    tier: str
    assignee_id: int | None
    team_id: int | None
    actor_id: int
    created_at: datetime

    def draft(self) -> TicketDraft:
        return TicketDraft(
            subject=self.subject,
            description=self.description,
            priority=TicketPriority(self.priority),
            channel=TicketChannel(self.channel),
            customer_id=self.customer_id,
            assignee_id=self.assignee_id,
            team_id=self.team_id,
        )

    def body(self) -> dict[str, Any]:
        """The same ticket as a ``POST /api/v1/tickets`` body."""
        return self.draft().model_dump(mode="json", exclude_none=True)


def creation_instants(base: datetime, count: int, days: tuple[float, float]) -> list[datetime]:
    """``count`` distinct creation instants, uniformly ``days`` after ``base`` (µs)."""
    rng = random.Random(11)
    lo, hi = (int(d * 86_400_000_000) for d in days)
    micros = sorted(set(rng.randrange(lo, hi) for _ in range(count)))
    return [base + timedelta(microseconds=m) for m in micros]


def ticket_specs(
    cast: Cast, instants: Sequence[datetime], rng: random.Random
) -> Iterator[TicketSpec]:
    priorities, p_weights = zip(*PRIORITIES, strict=True)
    n = 0
    while True:
        n += 1
        customer = rng.choice(cast.customers) if rng.random() < 0.85 else None
        yield TicketSpec(
            subject=f"{rng.choice(TOPICS)} ({n})",
            description=rng.choice(DESCRIPTIONS),
            priority=rng.choices(priorities, p_weights)[0].value,
            channel=rng.choice(CHANNELS).value,
            customer_id=customer[0] if customer else None,
            tier=customer[1] if customer else Tier.STANDARD.value,
            assignee_id=rng.choice(cast.agent_user_ids) if rng.random() < 0.5 else None,
            team_id=cast.team_id,
            actor_id=rng.choice(cast.agent_user_ids),
            created_at=rng.choice(instants),
        )


# -- the rows, made by the keeper's own functions -----------------------------------------


Encode = Callable[[Any], Any]


def _sqlite_time(moment: datetime | None) -> str | None:
    # What SQLAlchemy's SQLite DATETIME stores for desk.db.UTCDateTime (naive UTC).
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _postgres_time(moment: datetime | None) -> datetime | None:
    return moment


@dataclass
class _Opening:
    """A new ticket's clocks, audit notes and timers for one (policy, creation instant)."""

    created: Any
    clocks: list[tuple[Any, ...]]  # (clock, policy, cycle, state, due_at, warn_at)
    notes: list[tuple[str, str]]  # (field, text)
    timers: list[tuple[Any, ...]]  # (clock, cycle, kind, level, due_at)


_Plan = tuple[
    list[tuple[Any, ...]],  # clocks: (clock, policy, cycle, state JSON, due_at, warn_at)
    list[tuple[str, str]],  # audit notes: (field, text)
    list[tuple[Any, ...]],  # timers: (clock, cycle, kind, level, due_at)
]


def opening_plan(setup: SlaSetup, policy: SlaPolicy, created: datetime) -> _Plan:
    """``SlaClockKeeper.ticket_changed`` for a ticket without clock rows, without the
    database: every target gets a row from an empty state; the status change from
    nothing to "new" starts first response and resolution; each start bumps the
    clock's cycle; the running clocks get their timers."""
    now = created.astimezone(UTC)
    calendar = policy.calendar
    states = {target.clock: state_from_json({}) for target in policy.targets}
    change = clocks_after_status_change(
        states, old_status=None, new_status=TicketStatus.NEW, now=now, calendar=calendar
    )
    cycles = dict.fromkeys(states, 0)
    for note in change.notes:
        if note.event == "started":
            cycles[note.clock] += 1
    clocks, timers = [], []
    for target in policy.targets:
        state = change.clocks[target.clock]
        clocks.append(
            (
                target.clock.value,
                policy.name,
                cycles[target.clock],
                json.dumps(state_to_json(state)),
                _due(state, target, calendar),
                _warn(state, target, calendar),
            )
        )
        for planned in timer_schedule(state, target, setup.escalation, calendar=calendar):
            timers.append(
                (
                    target.clock.value,
                    cycles[target.clock],
                    planned.kind.value,
                    planned.level,
                    planned.due_at,
                )
            )
    # The keeper inserts them sorted by (due, level), ties between clocks in set
    # order; the clock name breaks ties here.
    timers.sort(key=lambda t: (t[4], t[3], t[0]))
    notes = [(f"{AUDIT_PREFIX}{note.clock}", note_text(note)) for note in change.notes]
    return clocks, notes, timers


@dataclass
class RowMaker:
    """Rows of newly opened tickets, for one backend's driver (``sqlite`` or ``postgres``).
    ``plans`` may be shared between makers: the keeper's computation does not depend
    on the backend."""

    setup: SlaSetup
    backend: str
    plans: dict[tuple[str, datetime], _Plan] = field(default_factory=dict)
    openings: dict[tuple[str, datetime], _Opening] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.time: Encode = _sqlite_time if self.backend == "sqlite" else _postgres_time

    def policy(self, spec: TicketSpec) -> SlaPolicy:
        policy = self.setup.choose(tier=spec.tier, priority=spec.priority, category=None)
        if policy is None:
            raise RuntimeError(f"no SLA policy for {spec.tier}/{spec.priority}")
        return policy

    def opening(self, policy: SlaPolicy, created: datetime) -> _Opening:
        key = (policy.name, created)
        found = self.openings.get(key)
        if found is not None:
            return found
        plan = self.plans.get(key)
        if plan is None:
            plan = self.plans[key] = opening_plan(self.setup, policy, created)
        clocks, notes, timers = plan
        t = self.time
        made = _Opening(
            created=t(created),
            clocks=[(c, p, cy, s, t(due), t(warn)) for c, p, cy, s, due, warn in clocks],
            notes=notes,
            timers=[(c, cy, k, lv, t(due)) for c, cy, k, lv, due in timers],
        )
        self.openings[key] = made
        return made

    def rows(
        self, specs: Sequence[TicketSpec], first: dict[str, int]
    ) -> dict[str, list[tuple[Any, ...]]]:
        """Rows of ``specs``; ``first`` holds the next id of each table (advanced here)."""
        out: dict[str, list[tuple[Any, ...]]] = {name: [] for name in TABLES}
        tickets, changes, timeline = out["tickets"], out["ticket_changes"], out["timeline_entries"]
        clocks, timers = out["ticket_clocks"], out["sla_timers"]
        ticket_id, change_id, entry_id = (
            first["tickets"],
            first["ticket_changes"],
            first["timeline_entries"],
        )
        clock_id, timer_id = first["ticket_clocks"], first["sla_timers"]
        for spec in specs:
            opening = self.opening(self.policy(spec), spec.created_at)
            at = opening.created
            tickets.append(
                (
                    ticket_id,
                    spec.subject,
                    spec.description,
                    TicketStatus.NEW.value,
                    spec.priority,
                    None,
                    spec.channel,
                    spec.customer_id,
                    spec.assignee_id,
                    spec.team_id,
                    at,
                    at,
                    1,
                    None,
                    None,
                )
            )
            changes.append((change_id, ticket_id, at, spec.actor_id, "status", None, "new"))
            change_id += 1
            if spec.customer_id is not None:
                data = {"ticket_id": ticket_id, "channel": spec.channel, "priority": spec.priority}
                timeline.append(
                    (
                        entry_id,
                        spec.customer_id,
                        "ticket",
                        ticket_id,
                        at,
                        f"ticket #{ticket_id} opened: {spec.subject}"[:500],
                        json.dumps(data),
                    )
                )
                entry_id += 1
            for name, text in opening.notes:
                changes.append((change_id, ticket_id, at, None, name, None, text))
                change_id += 1
            for clock, policy, cycle, state, due, warn in opening.clocks:
                clocks.append(
                    (clock_id, ticket_id, clock, policy, cycle, state, due, warn, None, 0, at)
                )
                clock_id += 1
            for clock, cycle, kind, level, due in opening.timers:
                timers.append((timer_id, ticket_id, clock, cycle, kind, level, due, None))
                timer_id += 1
            ticket_id += 1
        first.update(
            tickets=ticket_id,
            ticket_changes=change_id,
            timeline_entries=entry_id,
            ticket_clocks=clock_id,
            sla_timers=timer_id,
        )
        return out


# -- the sample, through the product ------------------------------------------------------


async def open_through_product(url: str, setup: SlaSetup, specs: Sequence[TicketSpec]) -> None:
    """Each spec opened like ``POST /api/v1/tickets`` does, one transaction each."""
    engine = create_engine(url)
    sessions = session_factory(engine)
    keeper = SlaClockKeeper(setup)
    try:
        for spec in specs:
            async with UnitOfWork(sessions=sessions, bus=EventBus()) as uow:
                _, event = await open_ticket(
                    uow.session,
                    spec.draft(),
                    actor_id=spec.actor_id,
                    now=spec.created_at,
                    sla=keeper,
                )
                uow.record(event)
                await uow.commit()
    finally:
        await engine.dispose()


def _select(table: str, columns: Sequence[str], where: str) -> str:
    return f"SELECT {', '.join(columns)} FROM {table} WHERE {where} ORDER BY id"


async def stored_rows(url: str, tickets: int) -> dict[str, list[tuple[Any, ...]]]:
    """Rows of tickets 1..``tickets`` as the raw driver returns them (child ids left out)."""
    where = f"ticket_id <= {tickets}"
    queries = {
        "tickets": _select("tickets", TICKET_COLUMNS, f"id <= {tickets}"),
        "ticket_changes": _select("ticket_changes", CHANGE_COLUMNS[1:], where),
        "timeline_entries": _select(
            "timeline_entries", TIMELINE_COLUMNS[1:], f"kind = 'ticket' AND ref_id <= {tickets}"
        ),
        "ticket_clocks": _select("ticket_clocks", CLOCK_COLUMNS[1:], where),
        "sla_timers": _select("sla_timers", TIMER_COLUMNS[1:], where),
    }
    out: dict[str, list[tuple[Any, ...]]] = {}
    if url.startswith("sqlite"):
        con = sqlite3.connect(str(make_url(url).database))
        try:
            for name, sql in queries.items():
                out[name] = [tuple(row) for row in con.execute(sql)]
        finally:
            con.close()
    else:
        conn = await asyncpg.connect(plain_postgres(url))
        try:
            for name, sql in queries.items():
                out[name] = [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()
    return out


def compare(
    stored: dict[str, list[tuple[Any, ...]]], made: dict[str, list[tuple[Any, ...]]]
) -> str:
    """'' when equal, else the first difference."""
    for name in TABLES:
        mine = [row if name == "tickets" else row[1:] for row in made[name]]
        theirs = stored[name]
        if name == "sla_timers":  # ties in due time are inserted in set order
            mine, theirs = sorted(mine, key=repr), sorted(theirs, key=repr)
        if len(mine) != len(theirs):
            return f"{name}: product wrote {len(theirs)} rows, the seeder made {len(mine)}"
        for ours, product in zip(mine, theirs, strict=True):
            if ours != product:
                return f"{name}: product wrote {product!r}, the seeder made {ours!r}"
    return ""


# -- bulk load ------------------------------------------------------------------------------


def plain_postgres(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class LoadReport:
    seconds: float = 0.0
    index_seconds: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)
    indexes: list[str] = field(default_factory=list)


def _chunks(
    maker: RowMaker, specs: Iterator[TicketSpec], count: int, first: dict[str, int], size: int
) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    done = 0
    while done < count:
        batch = [next(specs) for _ in range(min(size, count - done))]
        done += len(batch)
        yield maker.rows(batch, first)


def _progress(done: int, count: int, started: float) -> None:
    rate = done / max(time.monotonic() - started, 1e-9)
    print(f"  loaded {done:,}/{count:,} tickets ({rate:,.0f}/s)", flush=True)


def load_sqlite(
    url: str, maker: RowMaker, specs: Iterator[TicketSpec], count: int, chunk: int = 20_000
) -> LoadReport:
    report = LoadReport()
    con = sqlite3.connect(str(make_url(url).database), isolation_level=None)
    try:
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA foreign_keys=OFF")
        con.execute("PRAGMA cache_size=-524288")  # 512 MiB for the index builds
        names = ", ".join(f"'{t}'" for t in TABLES)
        indexes = con.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({names}) ORDER BY name"
        ).fetchall()
        report.indexes = [sql for _, sql in indexes]
        first = {
            t: con.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {t}").fetchone()[0]
            for t in TABLES
        }
        started = time.monotonic()
        for name, _ in indexes:
            con.execute(f'DROP INDEX "{name}"')
        done = 0
        for rows in _chunks(maker, specs, count, first, chunk):
            con.execute("BEGIN")
            for table, columns in TABLES.items():
                marks = ", ".join("?" * len(columns))
                con.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows[table]
                )
                report.rows[table] = report.rows.get(table, 0) + len(rows[table])
            con.execute("COMMIT")
            done += len(rows["tickets"])
            if done % 200_000 < chunk or done == count:
                _progress(done, count, started)
        index_started = time.monotonic()
        for _, sql in indexes:
            con.execute(sql)
        after = con.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({names}) ORDER BY name"
        ).fetchall()
        if after != indexes:
            raise RuntimeError(f"indexes differ after the load: {after} != {indexes}")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        report.index_seconds = time.monotonic() - index_started
        report.seconds = time.monotonic() - started
    finally:
        con.close()
    return report


_PG_INDEXES = """
SELECT i.indexname, i.indexdef FROM pg_indexes i
WHERE i.schemaname = 'public' AND i.tablename = ANY($1::text[])
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
ORDER BY i.indexname
"""


async def load_postgres(
    url: str, maker: RowMaker, specs: Iterator[TicketSpec], count: int, chunk: int = 20_000
) -> LoadReport:
    report = LoadReport()
    conn = await asyncpg.connect(plain_postgres(url))
    try:
        tables = list(TABLES)
        indexes = [tuple(r) for r in await conn.fetch(_PG_INDEXES, tables)]
        report.indexes = [sql for _, sql in indexes]
        first = {
            t: await conn.fetchval(f"SELECT coalesce(max(id), 0) + 1 FROM {t}") for t in tables
        }
        started = time.monotonic()
        for name, _ in indexes:
            await conn.execute(f'DROP INDEX "{name}"')
        # Foreign-key triggers off for this session only: rows are consistent by construction.
        await conn.execute("SET session_replication_role = replica")
        done = 0
        for rows in _chunks(maker, specs, count, first, chunk):
            async with conn.transaction():
                for table, columns in TABLES.items():
                    await conn.copy_records_to_table(
                        table, records=rows[table], columns=list(columns)
                    )
                    report.rows[table] = report.rows.get(table, 0) + len(rows[table])
            done += len(rows["tickets"])
            if done % 200_000 < chunk or done == count:
                _progress(done, count, started)
        await conn.execute("SET session_replication_role = DEFAULT")
        index_started = time.monotonic()
        await conn.execute("SET maintenance_work_mem = '512MB'")
        for _, sql in indexes:
            await conn.execute(sql)
        after = [tuple(r) for r in await conn.fetch(_PG_INDEXES, tables)]
        if after != indexes:
            raise RuntimeError(f"indexes differ after the load: {after} != {indexes}")
        for table in tables:
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        # What autovacuum would have done by itself after such a load: statistics for the
        # planner and a visibility map (index-only scans).
        await conn.execute(f"VACUUM ANALYZE {', '.join(tables)}")
        report.index_seconds = time.monotonic() - index_started
        report.seconds = time.monotonic() - started
    finally:
        await conn.close()
    return report
