"""HTTP API under an agent's screen load: requests per second and latency per endpoint.

Run::

    .venv/bin/python -m bench.http [--db sqlite|postgres|both] [--runs 3] [--clients 32]
        [--duration 20] [--warmup 3] [--customers 3000] [--tickets 3000] [--articles 1000]
        [--pg-url URL] [--quiet-wait 60] [--profile DIR] [--write-docs]

Per database, once: a fresh database (SQLite: a temporary file; PostgreSQL: the
database of ``--pg-url`` with ``_seeded`` appended, dropped and created again)
migrated with ``desk.migrate`` and seeded through the product's own code:
``seed_demo`` (teams, the agents alice/bob/carol/dave, ~200 customers),
``--customers`` more through the CSV import's path (``import_customers``;
numbers stored in mixed spellings), the demo knowledge base plus ``--articles``
published articles (``create_article`` + ``change_state``; text from
``bench.kb.Writer``) and ``--tickets`` tickets opened over the last three days
with their SLA clocks (``open_ticket`` with the service's ``SlaClockKeeper``),
one to four messages each (``add_message``) and a status (``change_ticket``):
new, open, pending, on hold or solved, three in four assigned.  The SLA
watcher (``SlaWatcher.fire_due``) then fires what three days made due.  Every
run starts from a copy of that desk (a file copy; ``CREATE DATABASE … TEMPLATE``
into the ``--pg-url`` database), so the runs' own writes never carry over.

``desk serve`` runs in its own process (production mode, no PBX, uvloop).  Once
its SLA watcher has fired the timers that fell due since the seed, the answers
are checked
(each lookup spelling finds its customer; KB searches find articles), the mix
runs ``--warmup`` seconds uncounted, then ``--duration`` seconds counted.  The
load client is this process: ``--clients`` concurrent keep-alive aiohttp
connections on one uvloop, each signed in as one of the four agents (bearer token
from ``POST /api/v1/auth/login``), each a loop of weighted steps an agent's
screen makes (``MIX``).  Writes (reply, status change) go to tickets only that
connection owns, so no two clients race for one ticket's version.  Any answer
that is not 2xx is a failure, printed with its body.

The peer is a minimal aiohttp app in its own process (same aiohttp, uvloop, no
middleware, no database) with the same routes, each answering a canned body
recorded from the product in this run; the same client drives it with the same
mix: the framework's ceiling on this machine.

Per run: requests per second and p50/p95/p99 latency per endpoint and overall,
CPU of the server, PostgreSQL, the client and everybody else; the report gives
the median of the runs.  ``--profile DIR`` runs the server under cProfile (slower;
for diagnosis).  ``--write-docs`` writes the section between
``<!-- http:begin -->`` and ``<!-- http:end -->`` of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
import asyncpg
import phonenumbers
import uvloop
from aiohttp import web
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from yarl import URL

from bench.kb import Writer, queries
from bench.pop_latency import (
    HOST,
    Server,
    _database_cpu,
    _free_port,
    _machine_busy,
    _recreate_postgres,
    machine_facts,
    wait_for_quiet,
)
from bench.report import DOC, load_average, write_section
from desk import migrate
from desk.clock import SystemClock
from desk.customer_import import import_customers
from desk.db import create_engine, session_factory
from desk.demo_data import DEMO_PASSWORD, seed_demo
from desk.events import EventBus, UnitOfWork
from desk.models import (
    Agent,
    CustomerPhone,
    MessageKind,
    SlaTimer,
    TicketChannel,
    TicketPriority,
    TicketStatus,
    User,
)
from desk.settings import Settings, load_settings
from desk.ticket_changes import TicketPatch, add_message, change_ticket
from desk.tickets import TicketDraft, open_ticket
from kb.articles import change_state, create_article
from kb.demo_articles import seed_demo_articles
from kb.options import KbOptions
from kb.records import ArticleState, Audience
from kb.shapes import ArticleDraft, TransitionIn
from routing.sla_config import sla_setup
from routing.sla_keeper import SlaClockKeeper
from routing.watcher import SlaWatcher

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/calldesk_bench_http"
AGENTS = ("alice", "bob", "carol", "dave")
SERVER_START_LIMIT = 60.0
SLA_DRAIN_LIMIT = 120.0
SAMPLES = 20  # response bodies kept per endpoint, for the peer's canned answers
SHOWN_FAILURES = 5  # failures printed per endpoint; the rest are counted
ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


# -- the endpoints and the mix ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    label: str  # as the report names the endpoint
    method: str
    path: str  # aiohttp's route template (the peer serves the same ones)


ROUTES = {
    "lookup": Route("customer lookup by phone", "GET", "/api/v1/customers"),
    "card": Route("customer card", "GET", "/api/v1/customers/{id}"),
    "timeline": Route("customer timeline", "GET", "/api/v1/customers/{id}/timeline"),
    "list": Route("ticket list with SLA clocks", "GET", "/desk/tickets.json"),
    "ticket": Route("one ticket", "GET", "/api/v1/tickets/{id}"),
    "messages": Route("its messages", "GET", "/api/v1/tickets/{id}/messages"),
    "kb": Route("KB search", "GET", "/api/v1/kb/search"),
    "reply": Route("add a reply", "POST", "/api/v1/tickets/{id}/messages"),
    "status": Route("change status", "PATCH", "/api/v1/tickets/{id}"),
    "create": Route("create a ticket", "POST", "/api/v1/tickets"),
    "health": Route("liveness probe", "GET", "/healthz"),
}
# Steps of an agent's screen and their weights: a call pops (lookup, card, timeline),
# the ticket list refreshes on every change, tickets are opened and read, the KB
# searched; writes are rarer.  "status" reads the ticket first (its version).
MIX = {
    "lookup": 14,
    "card": 10,
    "timeline": 10,
    "list": 18,
    "ticket": 12,
    "messages": 12,
    "kb": 8,
    "reply": 6,
    "status": 4,
    "create": 3,
    "health": 3,
}
VIEWS = ("mine", "team", "unassigned")
REPLY = json.dumps(
    {
        "kind": "public_reply",
        "body": "Thanks for calling. I have reset the router's profile on our side; "
        "please restart it once and tell us if the line still drops.",
    }
).encode()


# -- seeding ---------------------------------------------------------------------------

FIRST = {
    "de": ["Anna", "Jonas", "Lea", "Lukas", "Marie", "Felix", "Sophie", "Paul", "Emma", "Ben"],
    "en": ["Olivia", "Jack", "Amelia", "Harry", "Isla", "George", "Ava", "Noah", "Mia", "Leo"],
    "fr": ["Louise", "Gabriel", "Jade", "Raphaël", "Chloé", "Arthur", "Inès", "Hugo"],
    "zh": ["伟", "芳", "娜", "敏", "静", "磊", "洋", "婷"],
}
LAST = {
    "de": ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker"],
    "en": ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies"],
    "fr": ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand"],
    "zh": ["王", "李", "张", "刘", "陈", "杨", "黄", "赵"],
}
LANGUAGES = [("de", 55), ("en", 25), ("fr", 10), ("zh", 10)]
SUBJECTS = [
    "Router keeps rebooting",
    "Invoice charged twice",
    "Cannot sign in to the portal",
    "Parcel not delivered",
    "Change of address",
    "Refund for a cancelled order",
    "Line drops during calls",
    "Upgrade the contract",
]
STATUSES = [("new", 15), ("open", 35), ("pending", 20), ("on_hold", 5), ("solved", 25)]


def _pick(rng: random.Random, weighted: Sequence[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def spellings(number: phonenumbers.PhoneNumber, region: str) -> list[str]:
    """How a PBX, a form or an agent writes the number: E.164, international, with
    00 and, in the desk's own country, nationally (a foreign one would be misread)."""
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    out = [e164, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)]
    out.append("00" + e164[1:])
    if phonenumbers.region_code_for_number(number) == region:
        out.append(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))
    return out


def fresh_numbers(region: str, count: int, rng: random.Random) -> list[phonenumbers.PhoneNumber]:
    """Distinct valid numbers of the region, landline and mobile, from its examples."""
    kinds = (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE)
    examples = [
        example
        for kind in kinds
        if (example := phonenumbers.example_number_for_type(region, kind)) is not None
    ]
    seen: set[int] = set()
    out: list[phonenumbers.PhoneNumber] = []
    while len(out) < count:
        example = rng.choice(examples)
        digits = str(example.national_number)
        national = int(digits[:-5] + f"{rng.randrange(100_000):05d}")
        number = phonenumbers.PhoneNumber(
            country_code=example.country_code, national_number=national
        )
        if national not in seen and phonenumbers.is_valid_number(number):
            seen.add(national)
            out.append(number)
    return out


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def customer_rows(region: str, count: int, rng: random.Random) -> list[dict[str, str]]:
    """Rows as a CSV export would give them; each number in one of its spellings."""
    rows = []
    for n, number in enumerate(fresh_numbers(region, count, rng)):
        language = _pick(rng, LANGUAGES)
        first, last = rng.choice(FIRST[language]), rng.choice(LAST[language])
        name = last + first if language == "zh" else f"{first} {last}"
        local = f"c{n}" if language == "zh" else f"{first}.{last}.{n}"
        rows.append(
            {
                "name": name,
                "phones": rng.choice(spellings(number, region)),
                "emails": _ascii(f"{local.lower()}@example.org"),
                "tier": _pick(rng, [("standard", 80), ("gold", 15), ("platinum", 5)]),
                "language": language,
                "tags": rng.choice(["", "", "b2b", "vip", "newsletter"]),
            }
        )
    return rows


@dataclass(frozen=True)
class Desk:
    """What the load asks for, read back from the seeded database."""

    phones: list[tuple[str, int]]  # (a spelling, the customer it must find)
    customers: list[int]
    tickets: list[int]  # unsolved ones
    teams: list[int]
    searches: list[tuple[str, str]]  # (words, language)


async def seed(url: str, settings: Settings, *, args: argparse.Namespace) -> Desk:
    rng = random.Random(args.seed)
    region = settings.phone_region
    engine = create_engine(url)
    sessions = session_factory(engine)
    now = datetime.now(UTC)
    try:
        await seed_demo(sessions=sessions, bus=EventBus(), region=region, now=now)
        report = await import_customers(
            customer_rows(region, args.customers, rng),
            sessions=sessions,
            bus=EventBus(),
            region=region,
            now=now,
        )
        if report.errors:
            raise RuntimeError(f"customer import refused rows: {report.errors[:3]}")
        titles = await _seed_articles(sessions, count=args.articles, rng=rng, now=now)
        async with sessions() as session:
            owners = (
                await session.execute(select(CustomerPhone.customer_id, CustomerPhone.number_e164))
            ).all()
            teams = list(await session.scalars(select(Agent.team_id).distinct()))
        customers = sorted({customer for customer, _ in owners})
        tickets = await _seed_tickets(
            sessions, settings, count=args.tickets, customers=customers, rng=rng, now=now
        )
        # What the service's watcher would have done by now: breaches and escalations
        # of three days, fired here once rather than by every run's server at start.
        setup = sla_setup(settings)
        watcher = SlaWatcher(sessions=sessions, bus=EventBus(), clock=SystemClock(), setup=setup)
        await watcher.fire_due()
        if url.startswith("postgresql"):
            async with engine.connect() as conn:
                # What autovacuum does after a bulk of new rows; the clones inherit it.
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("VACUUM ANALYZE"))
    finally:
        await engine.dispose()
    phones = [
        (spelling, customer)
        for customer, e164 in owners
        for spelling in spellings(phonenumbers.parse(e164), region)
    ]
    rng.shuffle(phones)
    searches = [(q.q, q.language or "en") for q in queries(titles, 300, rng)]
    return Desk(phones, customers, tickets, [t for t in teams if t is not None], searches)


async def _seed_articles(
    sessions: async_sessionmaker[AsyncSession], *, count: int, rng: random.Random, now: datetime
) -> list[tuple[str, str]]:
    options = KbOptions()
    await seed_demo_articles(sessions, now=now, options=options)
    writer, titles = Writer(rng), []
    for start in range(0, count, 200):
        async with sessions() as session:
            for _ in range(start, min(count, start + 200)):
                language = "zh" if rng.random() < 0.3 else "en"
                title = writer.words(language, rng.randint(4, 9))[:200]
                draft = ArticleDraft(
                    title=title,
                    body=writer.body(language, rng.randint(60, 220)),
                    language=language,
                    audience=rng.choice([Audience.PUBLIC, Audience.INTERNAL]),
                )
                article = await create_article(session, draft, actor=None, now=now, options=options)
                wanted = TransitionIn(to=ArticleState.PUBLISHED, version=1)
                await change_state(session, article.id, wanted, actor=None, now=now)
                titles.append((language, title))
            await session.commit()
    return titles


async def _seed_tickets(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    count: int,
    customers: list[int],
    rng: random.Random,
    now: datetime,
) -> list[int]:
    """Tickets as agents made them over three days, oldest first; the unsolved ids."""
    keeper = SlaClockKeeper(sla_setup(settings))
    reopen = timedelta(days=settings.tickets_reopen_days)
    # At least 3 h ago: a ticket's messages and status change (at most 2 h 1 min after
    # it opened) must all lie in the past, or its SLA clocks would run ahead of the server.
    opened = sorted(now - timedelta(hours=rng.uniform(3, 72)) for _ in range(count))
    unsolved: list[int] = []
    for start in range(0, count, 100):
        async with UnitOfWork(sessions=sessions, bus=EventBus()) as uow:
            session = uow.session
            agents = list(await session.scalars(select(User).where(User.username.in_(AGENTS))))
            team_of = dict((await session.execute(select(Agent.user_id, Agent.team_id))).all())
            for at in opened[start : start + 100]:
                agent = rng.choice(agents)
                assigned = rng.random() < 0.75
                draft = TicketDraft(
                    subject=rng.choice(SUBJECTS),
                    description="The customer called about it; details in the messages.",
                    priority=TicketPriority(
                        _pick(rng, [("low", 15), ("normal", 55), ("high", 20), ("urgent", 10)])
                    ),
                    channel=rng.choice(list(TicketChannel)),
                    customer_id=rng.choice(customers) if rng.random() < 0.9 else None,
                    assignee_id=agent.id if assigned else None,
                    team_id=team_of[agent.id],
                )
                ticket, _ = await open_ticket(session, draft, actor_id=agent.id, now=at, sla=keeper)
                goal = TicketStatus(_pick(rng, STATUSES))
                moment = at
                # A new ticket has only what the customer said: an agent's reply opens it.
                for n in range(1 if goal is TicketStatus.NEW else rng.randint(2, 4)):
                    moment += timedelta(minutes=rng.uniform(1, 30))
                    customer_says = n % 2 == 0
                    await add_message(
                        session,
                        ticket.id,
                        kind=MessageKind.CUSTOMER_MESSAGE
                        if customer_says
                        else MessageKind.PUBLIC_REPLY,
                        body=(
                            "My line drops every few minutes since Monday."
                            if customer_says
                            else "We are looking into it and will call you back today."
                        ),
                        author=None if customer_says else agent,
                        now=moment,
                        reopen_window=reopen,
                        sla=keeper,
                    )
                if goal.value != ticket.status:
                    await change_ticket(
                        session,
                        ticket.id,
                        TicketPatch(version=ticket.version, status=goal),
                        actor=agent,
                        now=moment + timedelta(minutes=1),
                        sla=keeper,
                    )
                if goal is not TicketStatus.SOLVED:
                    unsolved.append(ticket.id)
            await uow.commit()
    return unsolved


# -- databases: seeded once per kind, copied for every run --------------------------------


def seeded_url(kind: str, workdir: Path, pg_url: str) -> str:
    """Where the seeded desk is kept; each run gets a copy (``run_database``)."""
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{workdir / 'seeded.db'}"
    parsed = make_url(pg_url)
    return parsed.set(database=f"{parsed.database}_seeded").render_as_string(hide_password=False)


def run_database(kind: str, seeded: str, workdir: Path, run: int, pg_url: str) -> str:
    if kind == "sqlite":
        source = Path(make_url(seeded).database or "")
        target = workdir / f"run-{run}.db"
        for suffix in ("", "-wal"):
            if Path(f"{source}{suffix}").exists():
                shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
        return f"sqlite+aiosqlite:///{target}"
    asyncio.run(_copy_postgres(seeded, pg_url))
    return pg_url


async def _copy_postgres(seeded: str, url: str) -> None:
    template, name = make_url(seeded).database, make_url(url).database
    admin = make_url(url).set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await conn.close()


async def _drop_postgres(url: str) -> None:
    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    finally:
        await conn.close()


def prepare_seeded(kind: str, url: str) -> None:
    if kind == "postgres":
        name = make_url(url).database or ""
        if not name.replace("_", "").isalnum():
            raise SystemExit(f"--pg-url needs a plain database name, got {name!r}")
        asyncio.run(_recreate_postgres(url))
    migrate.upgrade(url)  # Alembic runs its own event loop: keep it outside ours


async def wait_sla_drained(url: str, *, limit: float) -> int:
    """Wait until the server's SLA watcher has fired every timer due by now (some fell
    due between the seed and this run); how many were still due at the end."""
    engine = create_engine(url)
    deadline = time.monotonic() + limit
    try:
        while True:
            async with engine.connect() as conn:
                due = await conn.scalar(
                    select(func.count())
                    .select_from(SlaTimer)
                    .where(SlaTimer.fired_at.is_(None), SlaTimer.due_at <= datetime.now(UTC))
                )
            if not due or time.monotonic() > deadline:
                return int(due or 0)
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()


# -- the load client ----------------------------------------------------------------------


@dataclass
class Tally:
    """What one stretch of load saw, per endpoint (keys of ``ROUTES``)."""

    latencies: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: Counter[str] = field(default_factory=Counter)
    samples: defaultdict[str, list[bytes]] = field(default_factory=lambda: defaultdict(list))

    def failed(self, key: str, what: str) -> None:
        self.failures[key] += 1
        if self.failures[key] <= SHOWN_FAILURES:
            print(f"  FAILED {ROUTES[key].label}: {what}", flush=True)

    def canned(self) -> dict[str, str]:
        """Per endpoint, the recorded body nearest the endpoint's mean size."""
        out = {}
        for key in ROUTES:
            bodies = self.samples.get(key) or [b"{}"]
            mean = statistics.mean(len(b) for b in bodies)
            out[key] = min(bodies, key=lambda b: abs(len(b) - mean)).decode()
        return out


class Load:
    """The mix against one server, every URL and body built before the clock starts."""

    def __init__(self, base: str, desk: Desk, tokens: Sequence[str], *, clients: int, seed: int):
        def url(path: str) -> URL:
            return URL(base + path, encoded=True)

        self.url = url
        self.desk, self.tokens, self.clients, self.seed = desk, tokens, clients, seed
        self.lookups = [url(f"/api/v1/customers?phone={quote(s, safe='')}") for s, _ in desk.phones]
        self.cards = [url(f"/api/v1/customers/{c}") for c in desk.customers]
        self.timelines = [url(f"/api/v1/customers/{c}/timeline") for c in desk.customers]
        self.lists = [url(f"/desk/tickets.json?view={view}") for view in VIEWS]
        self.tickets = [url(f"/api/v1/tickets/{t}") for t in desk.tickets]
        self.messages = [url(f"/api/v1/tickets/{t}/messages") for t in desk.tickets]
        self.searches = [
            url("/api/v1/kb/search?" + urlencode({"q": q, "language": language}))
            for q, language in desk.searches
        ]
        self.health, self.new_ticket = url("/healthz"), url("/api/v1/tickets")

    async def drive(self, http: aiohttp.ClientSession, *, seconds: float, tally: Tally) -> float:
        """Every client runs the mix until ``seconds`` are up; the wall time they took."""
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(self.client(n, http, deadline, tally) for n in range(self.clients)))
        return time.perf_counter() - started

    async def client(
        self, n: int, http: aiohttp.ClientSession, deadline: float, tally: Tally
    ) -> None:
        rng = random.Random(self.seed * 1000 + n)
        reading = {"Authorization": f"Bearer {self.tokens[n % len(self.tokens)]}"}
        writing = reading | {"Content-Type": "application/json"}
        # Writes go to this client's own tickets: no two clients race for a version.
        owned = [self.url(f"/api/v1/tickets/{t}") for t in self.desk.tickets[n :: self.clients]]
        steps = rng.choices(list(MIX), list(MIX.values()), k=4096)
        step = 0

        async def call(key: str, url: URL, body: bytes | None = None) -> bytes | None:
            method = ROUTES[key].method
            begun = time.perf_counter()
            try:
                async with http.request(
                    method, url, data=body, headers=writing if body else reading
                ) as response:
                    data = await response.read()
                    status = response.status
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                tally.failed(key, f"{method} {url.path_qs}: {type(exc).__name__} {exc}")
                return None
            if not 200 <= status < 300:
                tally.failed(key, f"{method} {url.path_qs} -> {status} {data[:800]!r}")
                return None
            tally.latencies[key].append(1000 * (time.perf_counter() - begun))
            if len(tally.samples[key]) < SAMPLES:
                tally.samples[key].append(data)
            return data

        while time.perf_counter() < deadline:
            key = steps[step % len(steps)]
            step += 1
            if key == "lookup":
                await call(key, rng.choice(self.lookups))
            elif key in ("card", "timeline"):
                await call(key, rng.choice(self.cards if key == "card" else self.timelines))
            elif key == "list":
                await call(key, rng.choice(self.lists))
            elif key in ("ticket", "messages"):
                await call(key, rng.choice(self.tickets if key == "ticket" else self.messages))
            elif key == "kb":
                await call(key, rng.choice(self.searches))
            elif key == "health":
                await call(key, self.health)
            elif key == "reply" and owned:
                await call(key, URL(f"{rng.choice(owned)}/messages", encoded=True), REPLY)
            elif key == "status" and owned:
                ticket = rng.choice(owned)
                data = await call("ticket", ticket)  # the screen shows it first: its version
                if data is not None:
                    shown = json.loads(data)
                    to = "pending" if shown["status"] in ("new", "open") else "open"
                    patch = {"version": shown["version"], "status": to}
                    await call(key, ticket, json.dumps(patch).encode())
            elif key == "create":
                draft = {
                    "subject": rng.choice(SUBJECTS),
                    "description": "Called in; see the notes.",
                    "channel": "phone",
                    "customer_id": rng.choice(self.desk.customers),
                    "team_id": rng.choice(self.desk.teams),
                }
                data = await call(key, self.new_ticket, json.dumps(draft).encode())
                if data is not None:
                    owned.append(self.url(f"/api/v1/tickets/{json.loads(data)['id']}"))


async def sign_in(http: aiohttp.ClientSession, base: str, username: str) -> str:
    body = {"username": username, "password": DEMO_PASSWORD}
    async with http.post(f"{base}/api/v1/auth/login", json=body) as response:
        if response.status != 200:
            raise RuntimeError(f"sign-in as {username}: {response.status} {await response.text()}")
        token: str = (await response.json())["token"]
        return token


async def check_answers(http: aiohttp.ClientSession, base: str, desk: Desk, token: str) -> str:
    """Untimed: each spelling finds its customer; the searches find articles."""
    headers = {"Authorization": f"Bearer {token}"}
    right = 0
    sample = desk.phones[:200]
    for spelling, customer in sample:
        async with http.get(
            f"{base}/api/v1/customers", params={"phone": spelling}, headers=headers
        ) as response:
            found = [item["id"] for item in (await response.json())["items"]]
        if customer in found:
            right += 1
        else:
            print(f"  WRONG ANSWER: phone {spelling!r} found {found}, not {customer}", flush=True)
    hits = 0
    for q, language in desk.searches:
        params = {"q": q, "language": language}
        async with http.get(f"{base}/api/v1/kb/search", params=params, headers=headers) as response:
            hits += bool((await response.json())["items"])
    return (
        f"{right}/{len(sample)} phone spellings found their customer; "
        f"{hits}/{len(desk.searches)} KB searches found articles"
    )


# -- the peer -------------------------------------------------------------------------------


def serve_peer(canned_path: str, port: str) -> None:
    """The peer's process: the benchmark's routes, each answering its canned body."""
    canned = json.loads(Path(canned_path).read_text(encoding="utf-8"))
    app = web.Application()
    for key, route in ROUTES.items():
        body, status = canned[key].encode(), 201 if route.method == "POST" else 200

        async def answer(
            request: web.Request, body: bytes = body, status: int = status
        ) -> web.Response:
            await request.read()
            return web.Response(body=body, status=status, content_type="application/json")

        app.router.add_route(route.method, route.path, answer)
    web.run_app(
        app, host=HOST, port=int(port), access_log=None, print=None, loop=uvloop.new_event_loop()
    )


class Peer(Server):
    """The peer in its own process, watched like the server (health, CPU, stop)."""

    def __init__(self, canned: Path, log_path: Path) -> None:
        self.port = _free_port()
        self.url = f"http://{HOST}:{self.port}"
        code = "import sys; from bench.http import serve_peer; serve_peer(*sys.argv[1:])"
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, str(canned), str(self.port)],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


# -- one run --------------------------------------------------------------------------------


@dataclass
class Run:
    target: str  # "sqlite", "postgres" or "peer"
    run: int
    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)
    server_cpu: float = 0.0  # % of one core, over the counted load
    db_cpu: float | None = None
    client_cpu: float = 0.0
    others_cpu: float = 0.0
    busy_before: float = 0.0
    checked: str = ""
    error: str = ""

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    @property
    def server_ms(self) -> float | None:
        """Server CPU per counted request: what the machine's load changes least."""
        return 10 * self.server_cpu * self.seconds / self.requests if self.requests else None

    def rate(self, key: str | None = None) -> float:
        count = self.requests if key is None else len(self.latencies.get(key, ()))
        return count / self.seconds if self.seconds else 0.0

    def pct(self, q: float, key: str | None = None) -> float | None:
        values = (
            [v for vs in self.latencies.values() for v in vs]
            if key is None
            else self.latencies.get(key, [])
        )
        if not values:
            return None
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


class CpuMeter:
    """CPU of the server, the PostgreSQL processes of the run's database, this process
    and the whole machine, as % of one core between ``start`` and ``stop``."""

    def __init__(self, server: Server, database: str | None) -> None:
        self.server, self.database = server, database

    def start(self) -> None:
        self.wall = time.perf_counter()
        self.served = self.server.cpu()
        self.mine = time.process_time()
        self.db = _database_cpu(self.database) if self.database else {}
        self.machine = _machine_busy()

    def stop(self, run: Run) -> None:
        wall = time.perf_counter() - self.wall
        run.server_cpu = 100 * (self.server.cpu() - self.served) / wall
        run.client_cpu = 100 * (time.process_time() - self.mine) / wall
        if self.database:
            after = _database_cpu(self.database)
            spent = sum(v - self.db.get(pid, 0.0) for pid, v in after.items())
            run.db_cpu = 100 * spent / wall
        busy, total = _machine_busy()
        cores = len(os.sched_getaffinity(0))
        machine = 100 * cores * (busy - self.machine[0]) / max(total - self.machine[1], 1.0)
        run.others_cpu = max(0.0, machine - run.server_cpu - run.client_cpu - (run.db_cpu or 0))


async def measure(
    server: Server,
    load_for: Callable[[Sequence[str]], Load],
    run: Run,
    *,
    args: argparse.Namespace,
    tokens: Sequence[str] | None,
    before: Callable[[aiohttp.ClientSession, str], Awaitable[str]] | None,
    database: str | None,
) -> Tally:
    """Warm up, then count ``--duration`` seconds of the mix."""
    connector = aiohttp.TCPConnector(limit=args.clients)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        await server.wait_healthy(http, limit=SERVER_START_LIMIT)
        if tokens is None:
            tokens = [await sign_in(http, server.url, name) for name in AGENTS]
        if before is not None:
            run.checked = await before(http, tokens[0])
        load = load_for(tokens)
        await load.drive(http, seconds=args.warmup, tally=Tally())
        tally, meter = Tally(), CpuMeter(server, database)
        meter.start()
        run.seconds = await load.drive(http, seconds=args.duration, tally=tally)
        meter.stop(run)
    run.latencies, run.failures = dict(tally.latencies), tally.failures
    return tally


def server_env(url: str, secret: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("DESK_")},
        "DESK_MODE": "production",
        "DESK_SECRET_KEY": secret,
        "DESK_HOST": HOST,
        "DESK_PORT": str(_free_port()),
        "DESK_DATABASE_URL": url,
        "DESK_AMI_HOST": "",
        "DESK_LOG_LEVEL": "WARNING",
    }


async def product_run(
    kind: str, run: Run, url: str, desk: Desk, args: argparse.Namespace, log: Path
) -> Tally:
    profile = args.profile / f"server-{kind}-{run.run}.pstats" if args.profile else None
    server = Server(server_env(url, secrets.token_urlsafe(48)), log, profile)
    try:
        async with aiohttp.ClientSession() as http:
            await server.wait_healthy(http, limit=SERVER_START_LIMIT)
        still_due = await wait_sla_drained(url, limit=SLA_DRAIN_LIMIT)
        if still_due:
            print(f"  {still_due} SLA timers still due after {SLA_DRAIN_LIMIT:g} s", flush=True)

        async def check(http: aiohttp.ClientSession, token: str) -> str:
            return await check_answers(http, server.url, desk, token)

        return await measure(
            server,
            lambda tokens: Load(server.url, desk, tokens, clients=args.clients, seed=run.run),
            run,
            args=args,
            tokens=None,
            before=check,
            database=make_url(url).database if kind == "postgres" else None,
        )
    finally:
        server.stop()


async def peer_run(run: Run, canned: Path, desk: Desk, args: argparse.Namespace, log: Path) -> None:
    peer = Peer(canned, log)
    try:
        await measure(
            peer,
            lambda tokens: Load(peer.url, desk, tokens, clients=args.clients, seed=run.run),
            run,
            args=args,
            tokens=["peer"],
            before=None,
            database=None,
        )
    finally:
        peer.stop()


def uv(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop, as the server does: the client must cost less than the server."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


# -- report ---------------------------------------------------------------------------------

TARGETS = {"sqlite": "SQLite", "postgres": "PostgreSQL", "peer": "peer"}


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _ms(value: float | None, spec: str = ".1f") -> str:
    return "—" if value is None else format(value, spec)


def _cells(runs: Sequence[Run], key: str | None) -> str:
    rate = _median([r.rate(key) for r in runs])
    spread = " / ".join(_ms(_median([r.pct(q, key) for r in runs])) for q in (50, 95, 99))
    return f"{'—' if rate is None else f'{rate:,.0f}'} | {spread}"


@dataclass(frozen=True)
class Seeded:
    seconds: float
    desk: Desk


def render(
    results: Sequence[Run], seeded: dict[str, Seeded], args: argparse.Namespace, load_before: str
) -> str:
    facts = machine_facts(load_before)
    targets = [t for t in TARGETS if any(r.target == t and not r.error for r in results)]
    good = {t: [r for r in results if r.target == t and not r.error] for t in targets}
    first = next(iter(seeded.values())).desk
    counts = Counter({k: len(v) for r in good.get(targets[0], []) for k, v in r.latencies.items()})
    total = sum(counts.values()) or 1
    command = (
        f"python -m bench.http --db {args.db} --runs {args.runs} --clients {args.clients} "
        f"--duration {args.duration:g} --warmup {args.warmup:g} --customers {args.customers} "
        f"--tickets {args.tickets} --articles {args.articles} --quiet-wait {args.quiet_wait:g}"
        + (" --write-docs" if args.write_docs else "")
    )
    lines = [
        f"Generated by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Not a timed test: "
        "figures vary with the machine and its load.",
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in facts.items()) + ".",
        "",
        "Desk, seeded once per database through the product's own code and copied for every "
        f"run: `seed_demo` plus {args.customers:,} customers through the CSV import "
        f"({len(first.customers):,} with a number, {len(first.phones):,} spellings of their "
        f"numbers to look up), the demo knowledge base plus {args.articles:,} published "
        f"articles, {args.tickets:,} tickets of the last three days with their SLA clocks, "
        f"1-4 messages and a status ({len(first.tickets):,} unsolved); seeding took "
        + ", ".join(f"{s.seconds:.0f} s on {TARGETS[k]}" for k, s in seeded.items())
        + ".",
        "",
        f"Load: `desk serve` (production mode, one process, uvloop) and {args.clients} "
        "keep-alive aiohttp connections from the benchmark process (uvloop), signed in as the "
        "four agents (bearer tokens), each a loop of an agent screen's calls in the weights "
        "of `MIX`: " + ", ".join(f"{ROUTES[k].label} {w}" for k, w in MIX.items()) + " "
        "(a status change first reads the ticket for its version, counted as *one ticket*; "
        "replies and status changes only touch the client's own tickets). "
        f"{args.warmup:g} s of warm-up, then {args.duration:g} s counted; figures are the median "
        f"of {args.runs} runs, latency from sending to the whole answer read.",
        "",
        "| endpoint | share | "
        + " | ".join(f"{TARGETS[t]} req/s | {TARGETS[t]} p50 / p95 / p99 ms" for t in targets)
        + " |",
        "| --- | ---: | " + " | ".join("---: | ---:" for _ in targets) + " |",
        "| **all requests** | 100% | "
        + " | ".join(f"**{_cells(good[t], None)}**".replace(" | ", "** | **") for t in targets)
        + " |",
    ]
    for key, route in ROUTES.items():
        lines.append(
            f"| {route.label} (`{route.method} {route.path}`) | {counts[key] / total:.0%} | "
            + " | ".join(_cells(good[t], key) for t in targets)
            + " |"
        )
    failures = {t: sum(sum(r.failures.values()) for r in results if r.target == t) for t in TARGETS}
    lines += [
        "",
        "Failed requests (any answer not 2xx, or none) over all runs: "
        + ", ".join(f"{TARGETS[t]} {failures[t]}" for t in targets)
        + ". Checked before each run (untimed): "
        + "; ".join(f"{TARGETS[r.target]} run {r.run}: {r.checked}" for r in results if r.checked)
        + ".",
        "",
        "Where the CPU went (median of the runs; % of one core over the counted seconds; "
        "others = the machine's busy time minus server, PostgreSQL and client, i.e. other "
        "people's work on a shared machine). Server CPU per request changes least with the "
        "machine's load:",
        "",
        "| target | req/s | server CPU ms per request | server CPU | PostgreSQL CPU | client CPU "
        "| others' CPU |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for t in targets:
        runs = good[t]
        db_cpu = _median([r.db_cpu for r in runs])
        lines.append(
            f"| {TARGETS[t]} | {_median([r.rate() for r in runs]) or 0:,.0f} | "
            f"{_ms(_median([r.server_ms for r in runs]), '.2f')} | "
            f"{_median([r.server_cpu for r in runs]) or 0:.0f}% | "
            f"{'—' if db_cpu is None else f'{db_cpu:.0f}%'} | "
            f"{_median([r.client_cpu for r in runs]) or 0:.0f}% | "
            f"{_median([r.others_cpu for r in runs]) or 0:.0f}% |"
        )
    lines += [
        "",
        "Every run:",
        "",
        "| target | run | requests | req/s | p50 / p95 / p99 ms | failed | server CPU ms per "
        "request | server CPU | PostgreSQL CPU | client CPU | others' CPU | error |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        lines.append(
            f"| {TARGETS[r.target]} | {r.run} | {r.requests:,} | {r.rate():,.0f} | "
            + " / ".join(_ms(r.pct(q)) for q in (50, 95, 99))
            + f" | {sum(r.failures.values())} | {_ms(r.server_ms, '.2f')} | {r.server_cpu:.0f}% | "
            f"{'—' if r.db_cpu is None else f'{r.db_cpu:.0f}%'} | {r.client_cpu:.0f}% | "
            f"{r.others_cpu:.0f}% | {r.error} |"
        )
    product = [r.client_cpu for t in targets if t != "peer" for r in good[t]]
    peer = [r.client_cpu for r in good.get("peer", [])]
    lines += [
        "",
        "How the two cores were shared: nothing is pinned. The server is one process with one "
        "event loop (Python code: at most one core; only SQLite readers' threads add a little "
        "beyond it); PostgreSQL's backends, the load "
        "client (one process, one uvloop, URLs and bodies built before the clock starts) and "
        "whatever else runs on the machine share the rest. Against the desk the client used "
        f"{_median(product) or 0:.0f}% of a core (median): the server, not the client, is what "
        "saturates. Against the peer the client used "
        f"{_median(peer) or 0:.0f}% of a core: there the client and the shared machine are the "
        "limit, so the peer's figure is a floor of the framework's ceiling, not the ceiling "
        "itself.",
        "",
        "The peer: a minimal aiohttp app in its own process (the same aiohttp, uvloop, access "
        "log off, no middleware, no database) on the same routes, each answering one body the "
        "product gave in this run (the one nearest the endpoint's mean size), driven by the "
        "same client with the same mix and connections. The gap to it is the desk's own work "
        "per request: the bearer token's session lookup, the queries, the JSON. wrk against "
        "`/healthz` was not chosen: a C client hammering one trivial route measures a "
        "different client and a different request, not what this mix could reach.",
    ]
    return "\n".join(lines) + "\n"


# -- main -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http", description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--runs", type=int, default=3, help="runs per database (and the peer)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent connections")
    parser.add_argument("--duration", type=float, default=20.0, help="counted seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="uncounted seconds first")
    parser.add_argument("--customers", type=int, default=3000, help="besides the demo's")
    parser.add_argument("--tickets", type=int, default=3000)
    parser.add_argument("--articles", type=int, default=1000, help="besides the demo's")
    parser.add_argument("--seed", type=int, default=20260105)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="dropped and made again per run")
    parser.add_argument(
        "--quiet-wait", type=float, default=60.0, help="max wait for an idle machine"
    )
    parser.add_argument("--write-docs", action="store_true", help=f"update {DOC.name}")
    parser.add_argument("--profile", type=Path, help="write the server's cProfile stats here")
    args = parser.parse_args(argv)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        args.profile = args.profile.resolve()
    if not 1 <= args.runs <= 20 or not 1 <= args.clients <= 1000 or not 1 <= args.duration <= 600:
        parser.error("--runs must be 1..20, --clients 1..1000, --duration 1..600")
    if min(args.customers, args.tickets, args.articles) < 100 or args.warmup < 0:
        parser.error("--customers, --tickets and --articles must be at least 100")
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    # The seed reads the same configuration the server will (phone region, SLA policies).
    settings = load_settings(environ={}, overrides={"mode": "test", "secret_key": "s" * 48})
    load_before = load_average()
    results: list[Run] = []
    seeded: dict[str, Seeded] = {}
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        workdir = Path(tmp)
        for kind in kinds:
            url = seeded_url(kind, workdir, args.pg_url)
            print(f"seeding {TARGETS[kind]} ...", flush=True)
            started = time.perf_counter()
            prepare_seeded(kind, url)
            desk = asyncio.run(seed(url, settings, args=args))
            seeded[kind] = Seeded(time.perf_counter() - started, desk)
            print(f"  {seeded[kind].seconds:.0f} s", flush=True)
        canned = workdir / "canned.json"
        for number in range(1, args.runs + 1):
            for kind in kinds:  # interleaved, so drift on the machine hits each alike
                run = Run(kind, number)
                log = workdir / f"server-{kind}-{number}.log"
                try:
                    url = run_database(
                        kind, seeded_url(kind, workdir, args.pg_url), workdir, number, args.pg_url
                    )
                    run.busy_before = wait_for_quiet(args.quiet_wait)
                    tally = uv(product_run(kind, run, url, seeded[kind].desk, args, log))
                    if not canned.exists():
                        canned.write_text(json.dumps(tally.canned()), encoding="utf-8")
                except Exception as exc:
                    traceback.print_exc()
                    run.error = f"{type(exc).__name__}: {exc}"
                if run.failures or run.error:
                    _show_log(log)
                results.append(run)
                _print_run(run)
            if canned.exists():
                run = Run("peer", number)
                try:
                    run.busy_before = wait_for_quiet(args.quiet_wait)
                    first = seeded[kinds[0]].desk
                    uv(peer_run(run, canned, first, args, workdir / f"peer-{number}.log"))
                except Exception as exc:
                    traceback.print_exc()
                    run.error = f"{type(exc).__name__}: {exc}"
                results.append(run)
                _print_run(run)
        if "postgres" in kinds:
            asyncio.run(_drop_postgres(seeded_url("postgres", workdir, args.pg_url)))
    section = render(results, seeded, args, load_before)
    print()
    print(section)
    if args.write_docs:
        write_section(key="http", title="HTTP API", section=section)
        print(f"wrote {DOC}")
    failed = any(r.error or r.failures for r in results)
    return 1 if failed else 0


def _print_run(run: Run) -> None:
    print(
        f"{TARGETS[run.target]:<10} run {run.run}: {run.requests:,} requests in "
        f"{run.seconds:.1f} s = {run.rate():,.0f}/s; p50 {_ms(run.pct(50))} p95 "
        f"{_ms(run.pct(95))} p99 {_ms(run.pct(99))} ms; failed {sum(run.failures.values())}; "
        f"CPU server {run.server_cpu:.0f}% db {run.db_cpu or 0:.0f}% client "
        f"{run.client_cpu:.0f}% others {run.others_cpu:.0f}%"
        + (f"; {run.checked}" if run.checked else "")
        + (f" ERROR {run.error}" if run.error else ""),
        flush=True,
    )


def _show_log(log: Path) -> None:
    if log.exists():
        text = log.read_text(errors="replace")
        print(f"server log ({log.name}), last 6000 characters:\n{text[-6000:]}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
