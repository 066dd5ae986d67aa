"""Tickets and SLA at scale: the watcher's wake with 1M open tickets, warning lag, ticket API.

Run::

    .venv/bin/python -m bench.sla [--db sqlite|postgres|both] [--tickets 1000000] [--runs 5]
        [--wakes 2000] [--lag-timers 200] [--api-tickets 10000] [--clients 10]
        [--api-runs 3] [--big-api-runs 1] [--api-limit 300] [--temp-index auto|always|never]
        [--quiet-wait 60] [--keep] [--dump FILE] [--from-dump FILE] [--write-docs]

Per database (SQLite: a file in a temporary directory; PostgreSQL: the database named
in ``--pg-url``, dropped and created again, never the test suite's ``test`` database),
migrated with ``desk.migrate.upgrade``:

1. **Seed** (``bench.sla_seed``): a team with its lead, supervisors, agents and
   ``--customers`` customers (80 % standard, 15 % gold, 5 % platinum) through the
   product's functions; ``--sample`` tickets opened through ``open_ticket`` with the
   ``SlaClockKeeper`` (as ``POST /api/v1/tickets`` does); then the rest of
   ``--tickets`` open tickets bulk-loaded with the rows the keeper's own functions
   make for them, checked first against the sample the product wrote.  Tickets are
   created at ``--instants`` distinct instants 1 to 22 days ahead of the benchmark's
   start (so that every timer is in the future: nothing is due while we measure),
   giving due times spread over the next three weeks and more; priorities, tiers,
   assignees and channels at random.  Each ticket has 3 clock rows and 10 unfired
   timers (first response and resolution: warning, breach, 3 escalation levels).
2. **Wake with nothing due**: a real ``SlaWatcher`` (the app's settings, engines as
   ``create_app`` makes them: on SQLite a one-connection writer engine and a reader
   engine) runs its own ``_run`` loop; the benchmark pokes it and times from
   ``poke()`` to the loop waiting again, i.e. one whole round of ``_run``:
   ``next_due()``, the comparison with the clock (nothing due, so no claim), and
   ``_delay()`` (which reads ``next_due()`` once more).  ``next_due()`` alone is timed
   too.  Per run ``--wakes`` wakes (at most ``--wake-seconds``).  The query plan of
   ``next_due`` is shown: PostgreSQL ``EXPLAIN (ANALYZE, BUFFERS)``, SQLite
   ``EXPLAIN QUERY PLAN`` plus the virtual-machine steps the query takes (a lookup
   takes a few dozen, a scan several per row); the same for the claim with nothing
   due.  When next_due is a scan (``--temp-index auto``), the benchmark creates a
   temporary index on its own database (``TEMP_INDEX_SQL``), measures again (wake,
   lag, API on the seeded database) and drops it.  Then each of the watcher's
   statements is timed alone, with a few variants (``DIAGNOSTICS``).
3. **Warning lag**: ``--lag-timers`` warning timers inserted on distinct seeded
   tickets (their own first-response clock and cycle), due at known instants from
   3 s ahead, gaps drawn from an exponential distribution (mean ``--lag-gap`` s,
   about the rate at which 10M timers over three weeks fall due); a real
   ``SlaWatcher`` on the real clock fires them; the lag of a timer is
   ``time.time()`` when its ``SlaWarned`` is published on the ``EventBus`` (after the
   commit) minus its due time.
4. **Ticket API**: ``desk serve`` in its own process (production mode, no PBX), its
   ``/healthz`` must say the database is ok; ``--clients`` aiohttp clients, each
   signed in as its own agent, ``POST /api/v1/tickets`` ``--api-tickets`` tickets in
   all (subject, description, priority, channel, customer, assignee, team at random;
   the SLA clocks and timers start in the same transaction; each commit pokes the
   app's watcher, as in production).  Per request: client-side time from sending to
   the whole response read.  ``--api-runs`` times on a fresh database each (migrated,
   people and 200 customers seeded), and ``--big-api-runs`` times on the seeded
   database (which grows by the tickets made); a run stops sending after
   ``--api-limit`` seconds and says how many it did not send.
5. **Router**: ``bench.router``'s own workload and timing (1,000 agents), called here.

Before each timed phase the script waits (at most ``--quiet-wait`` s) for the
machine to be idle.  Every figure is reported per run and as the median of the
runs; the 1M seed is made once per database, its runs repeat on that database.
``--write-docs`` writes the result into ``docs/benchmarks.md`` between
``<!-- sla:begin -->`` and ``<!-- sla:end -->``; ``--dump`` keeps the results, and
``--from-dump`` reports (and with ``--write-docs`` writes) them again without measuring.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import os
import pickle
import platform
import random
import re
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import asyncpg
from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from bench import router as router_bench
from bench.pop_latency import (
    HOST,
    Server,
    _database_cpu,
    _free_port,
    wait_for_quiet,
)
from bench.report import DOC, cpu_model, library_versions, load_average, write_section
from bench.sla_seed import (
    PASSWORD,
    TABLES,
    Cast,
    LoadReport,
    RowMaker,
    TicketSpec,
    compare,
    creation_instants,
    load_postgres,
    load_sqlite,
    open_through_product,
    plain_postgres,
    seed_people,
    stored_rows,
    ticket_specs,
)
from desk import migrate
from desk.clock import SystemClock
from desk.db import create_engine, session_factory
from desk.events import EventBus
from desk.models import SlaTimer, Ticket, TicketClock
from desk.settings import Settings, load_settings
from routing.assignment import DONE
from routing.sla_config import SlaSetup, sla_setup
from routing.sla_keeper import SlaWarned
from routing.watcher import RETRY_SECONDS, SlaWatcher

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/calldesk_bench_sla"
DEFAULT_PG_API_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/calldesk_bench_sla_api"
TARGET_WAKE_MS = 2.0
TARGET_LAG_S = 1.0
TARGET_ROUTER_US = 1000.0
TEMP_INDEX = "bench_tmp_sla_timers_unfired"
# The index proposed for the watcher: only unfired timers, in the order both
# next_due (min due_at) and the claim (ORDER BY due_at, level, id) read them.
TEMP_INDEX_SQL = (
    f"CREATE INDEX {TEMP_INDEX} ON sla_timers (due_at, level, id) WHERE fired_at IS NULL"
)
SERVER_START_LIMIT = 60.0
LAG_TAIL = 60.0  # after the last due time, wait at most this long for its warning
SEED_DAYS = (1.0, 22.0)  # creation instants, days after the benchmark's start

T = TypeVar("T")


# -- small helpers --------------------------------------------------------------------------


def _loop_factory() -> asyncio.AbstractEventLoop:
    """The event loop ``desk serve`` runs on (uvloop where available)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(coro: Awaitable[T]) -> T:
    with asyncio.Runner(loop_factory=_loop_factory) as runner:
        return runner.run(coro)  # type: ignore[arg-type]


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def met(value: float | None, target: float) -> str:
    if value is None:
        return "not measured"
    return "met" if value <= target else "NOT met"


async def recreate_postgres(url: str) -> None:
    name = make_url(url).database
    if not name or not name.replace("_", "").isalnum() or name in ("test", "postgres"):
        raise SystemExit(f"--pg-url needs a plain database name of its own, got {name!r}")
    admin = make_url(plain_postgres(url)).set(database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_postgres(url: str) -> None:
    name = make_url(url).database
    admin = make_url(plain_postgres(url)).set(database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def fresh_database(kind: str, path: Path, pg_url: str) -> str:
    if kind == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite+aiosqlite:///{path}"
    else:
        url = pg_url
        run(recreate_postgres(url))
    migrate.upgrade(url)  # Alembic runs its own event loop: keep it outside ours
    return url


def engines(url: str) -> tuple[Any, Any]:
    """Writer and reader engines as ``web.app._database`` makes them."""
    writer = create_engine(url)
    reader = create_engine(url, readers=True) if url.startswith("sqlite") else writer
    return writer, reader


def make_watcher(
    writer: Any, reader: Any, bus: EventBus, setup: SlaSetup, settings: Settings
) -> SlaWatcher:
    return SlaWatcher(
        sessions=session_factory(writer),
        reads=session_factory(reader),
        bus=bus,
        clock=SystemClock(),
        setup=setup,
        interval=settings.sla_watch_interval,
        batch=settings.sla_watch_batch,
    )


async def dispose(writer: Any, reader: Any) -> None:
    await writer.dispose()
    if reader is not writer:
        await reader.dispose()


# -- query plans ------------------------------------------------------------------------------


def watcher_queries(backend: str) -> dict[str, str]:
    """The watcher's two statements on the timers, as SQL with the values inlined:
    ``next_due`` exactly as ``SlaWatcher.next_due`` builds it, and the claim as
    ``SlaWatcher._claim`` builds it (SQLite: the whole ``UPDATE … RETURNING``;
    PostgreSQL: its selection, without the join, lock and update)."""
    dialect = postgresql.dialect() if backend == "postgres" else sqlite.dialect()
    now = datetime.now(UTC)
    next_due = select(func.min(SlaTimer.due_at)).where(SlaTimer.fired_at.is_(None))
    due = (
        select(SlaTimer.id)
        .where(SlaTimer.fired_at.is_(None), SlaTimer.due_at <= now)
        .order_by(SlaTimer.due_at, SlaTimer.level, SlaTimer.id)
        .limit(100)
    )
    claim: Any = due
    if backend == "sqlite":
        claim = (
            update(SlaTimer)
            .where(SlaTimer.id.in_(due), SlaTimer.fired_at.is_(None))
            .values(fired_at=now)
            .returning(SlaTimer.id)
        )
    out = {}
    for name, statement in (("next_due", next_due), ("claim", claim)):
        compiled = statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
        sql = str(compiled)
        if backend == "sqlite":  # SQLite stores naive UTC text (desk.db.UTCDateTime)
            sql = sql.replace(f"'{now.isoformat(sep=' ')}'", f"'{now:%Y-%m-%d %H:%M:%S.%f}'")
        out[name] = sql
    return out


@dataclass
class Plan:
    lines: dict[str, list[str]]
    work: dict[str, float]  # buffers (PostgreSQL) or VM steps (SQLite) per query
    scan: bool  # next_due reads more than a lookup would
    unit: str

    def kind(self, name: str) -> str:
        """'lookup' or 'scan': a lookup touches a few buffers / a few dozen VM steps."""
        limit = 100 if self.unit == "buffers" else 1000
        return "scan" if self.work[name] > limit else "lookup"

    def summary(self) -> str:
        return "; ".join(
            f"{name} {self.kind(name)} ({self.work[name]:,.0f} {self.unit})" for name in self.work
        )


async def explain(url: str) -> Plan:
    backend = "sqlite" if url.startswith("sqlite") else "postgres"
    queries = watcher_queries(backend)
    lines: dict[str, list[str]] = {}
    work: dict[str, float] = {}
    if backend == "postgres":
        conn = await asyncpg.connect(plain_postgres(url))
        try:
            for name, sql in queries.items():
                await conn.fetch(sql)  # warm the cache: the plan of a warm database
                rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
                lines[name] = [r[0] for r in rows]
                # The first Buffers line is the top node's: the whole query's.
                text = "\n".join(lines[name])
                found = re.search(r"Buffers: shared(?: hit=(\d+))?(?: read=(\d+))?", text)
                work[name] = float(int(found[1] or 0) + int(found[2] or 0)) if found else 0.0
        finally:
            await conn.close()
        return Plan(lines, work, work["next_due"] > 100, "buffers")
    con = sqlite3.connect(str(make_url(url).database), isolation_level=None)
    try:
        for name, sql in queries.items():
            lines[name] = [row[3] for row in con.execute(f"EXPLAIN QUERY PLAN {sql}")]
            steps = [0]

            def count(steps: list[int] = steps) -> int:
                steps[0] += 1
                return 0

            con.execute("BEGIN")  # the claim is an UPDATE: nothing is due, rolled back anyway
            con.set_progress_handler(count, 10)
            con.execute(sql).fetchall()
            con.set_progress_handler(None, 10)
            con.execute("ROLLBACK")
            work[name] = float(steps[0] * 10)
    finally:
        con.close()
    return Plan(lines, work, work["next_due"] > 1000, "VM steps")


async def temp_index(url: str, create: bool) -> None:
    sql = TEMP_INDEX_SQL if create else f"DROP INDEX IF EXISTS {TEMP_INDEX}"
    if url.startswith("sqlite"):
        con = sqlite3.connect(str(make_url(url).database), isolation_level=None)
        try:
            con.execute(sql)
        finally:
            con.close()
        return
    conn = await asyncpg.connect(plain_postgres(url))
    try:
        await conn.execute(sql)
        if create:
            await conn.execute("ANALYZE sla_timers")
    finally:
        await conn.close()


# -- 2. a wake with nothing due -----------------------------------------------------------------


class _WaitProbe(asyncio.Event):
    """The watcher's wake event; notes when ``_run`` starts waiting on it again."""

    def __init__(self) -> None:
        super().__init__()
        self._waiter: asyncio.Future[float] | None = None

    def arm(self) -> asyncio.Future[float]:
        self._waiter = asyncio.get_running_loop().create_future()
        return self._waiter

    async def wait(self) -> bool:  # type: ignore[override]
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(time.perf_counter())
        return await super().wait()


@dataclass
class WakeRun:
    wakes: list[float]  # ms, poke → waiting again (one _run round)
    next_due: list[float]  # ms, next_due() alone
    busy: float
    fired: int

    def row(self) -> tuple[float, float, float, float]:
        return (
            pct(self.wakes, 0.5),
            pct(self.wakes, 0.99),
            pct(self.next_due, 0.5),
            pct(self.next_due, 0.99),
        )


async def measure_wakes(
    url: str,
    setup: SlaSetup,
    settings: Settings,
    *,
    runs: int,
    wakes: int,
    seconds: float,
    quiet: float,
) -> list[WakeRun]:
    writer, reader = engines(url)
    watcher = make_watcher(writer, reader, EventBus(), setup, settings)
    probe = _WaitProbe()
    watcher._wake = probe  # the loop's own event, observed
    out: list[WakeRun] = []
    try:
        first = probe.arm()
        watcher.start()
        await asyncio.wait_for(first, 600)
        for _ in range(5):  # warm-up: connections, statement caches
            waiting = probe.arm()
            watcher.poke()
            await asyncio.wait_for(waiting, 600)
        gc.collect()
        for _ in range(runs):
            busy = await asyncio.to_thread(wait_for_quiet, quiet)
            wake_ms: list[float] = []
            deadline = time.monotonic() + seconds
            while len(wake_ms) < wakes and (time.monotonic() < deadline or len(wake_ms) < 10):
                waiting = probe.arm()
                started = time.perf_counter()
                watcher.poke()
                ended = await asyncio.wait_for(waiting, 600)
                wake_ms.append(1000 * (ended - started))
            alone: list[float] = []
            deadline = time.monotonic() + seconds / 2
            while len(alone) < wakes and (time.monotonic() < deadline or len(alone) < 10):
                started = time.perf_counter()
                await watcher.next_due()
                alone.append(1000 * (time.perf_counter() - started))
            out.append(WakeRun(wake_ms, alone, busy, watcher.fired))
            w50, w99, n50, n99 = out[-1].row()
            print(
                f"  wake: {len(wake_ms)} wakes p50 {w50:.3f} / p99 {w99:.3f} ms; next_due "
                f"alone p50 {n50:.3f} / p99 {n99:.3f} ms; others' CPU {busy:.0f}%",
                flush=True,
            )
    finally:
        await watcher.stop()
        await dispose(writer, reader)
    return out


# -- diagnostics: the watcher's statements, alone, and variants -----------------------------

DIAGNOSTICS = {
    "claim": "`SlaWatcher._claim` with nothing due (product; rolled back)",
    "claim_unguarded": "the same SQLite claim without its outer `fired_at IS NULL` "
    "(variant; rolled back)",
    "next_due": "`SlaWatcher.next_due()` (product)",
    "assigner_loads": "the assigner's agent-load count (`TicketAssigner._people`: "
    "`count(*)` of open assigned tickets by assignee and priority; product)",
}


async def diagnostics(
    url: str, setup: SlaSetup, settings: Settings, *, samples: int, seconds: float
) -> dict[str, list[float]]:
    """ms per call of each statement in ``DIAGNOSTICS``, timed alone, one after the other."""
    writer, reader = engines(url)
    watcher = make_watcher(writer, reader, EventBus(), setup, settings)
    sessions, reads = session_factory(writer), session_factory(reader)

    async def claim() -> None:
        async with sessions() as session:
            if await watcher._claim(session, datetime.now(UTC)):
                raise RuntimeError("a timer was due during the diagnostics")
            await session.rollback()

    async def claim_unguarded() -> None:
        now = datetime.now(UTC)
        due = (
            select(SlaTimer.id)
            .where(SlaTimer.fired_at.is_(None), SlaTimer.due_at <= now)
            .order_by(SlaTimer.due_at, SlaTimer.level, SlaTimer.id)
            .limit(settings.sla_watch_batch)
        )
        async with sessions() as session:
            await session.execute(
                update(SlaTimer)
                .where(SlaTimer.id.in_(due))
                .values(fired_at=now)
                .returning(SlaTimer.id)
                .execution_options(synchronize_session=False)
            )
            await session.rollback()

    async def assigner_loads() -> None:
        async with reads() as session:
            await session.execute(
                select(Ticket.assignee_id, Ticket.priority, func.count())
                .where(Ticket.assignee_id.is_not(None), Ticket.status.not_in(DONE))
                .group_by(Ticket.assignee_id, Ticket.priority)
            )

    checks: dict[str, Callable[[], Awaitable[Any]]] = {
        "claim": claim,
        "next_due": watcher.next_due,
        "assigner_loads": assigner_loads,
    }
    if url.startswith("sqlite"):
        checks["claim_unguarded"] = claim_unguarded
    out: dict[str, list[float]] = {}
    try:
        for name, check in checks.items():
            await check()  # warm
            timings: list[float] = []
            deadline = time.monotonic() + seconds
            while len(timings) < samples and (time.monotonic() < deadline or len(timings) < 3):
                started = time.perf_counter()
                await check()
                timings.append(1000 * (time.perf_counter() - started))
            out[name] = timings
            print(
                f"  {name}: {len(timings)} calls, p50 {pct(timings, 0.5):.3f} / max "
                f"{max(timings):.3f} ms",
                flush=True,
            )
    finally:
        await dispose(writer, reader)
    return out


# -- 3. due → warning emitted ---------------------------------------------------------------


@dataclass
class LagRun:
    lags: list[float]  # s
    expected: int
    busy: float
    batches: list[float] = field(default_factory=list)  # ms per claimed-and-fired batch
    error: str = ""

    @property
    def missed(self) -> int:
        return self.expected - len(self.lags)

    @property
    def retried(self) -> int:
        """Lags of about the watcher's retry pause or more: a timer that fell due while
        the watcher was firing others is seen by ``_delay()`` as due and held by someone
        else, and waits ``RETRY_SECONDS``."""
        return sum(lag >= 0.9 * RETRY_SECONDS for lag in self.lags)


async def measure_lag(
    url: str,
    setup: SlaSetup,
    settings: Settings,
    tickets: Sequence[int],
    *,
    gap: float,
    rng: random.Random,
    quiet: float,
) -> LagRun:
    busy = await asyncio.to_thread(wait_for_quiet, quiet)
    writer, reader = engines(url)
    bus = EventBus()
    emitted: dict[int, float] = {}
    due: dict[int, datetime] = {}
    everything = asyncio.Event()

    async def on_warned(event: Any) -> None:
        emitted.setdefault(event.ticket_id, time.time())
        if len(emitted) >= len(due):
            everything.set()

    bus.subscribe(SlaWarned, on_warned)
    sessions = session_factory(writer)
    watcher = make_watcher(writer, reader, bus, setup, settings)
    batches: list[float] = []
    fire_batch = watcher._fire_batch

    async def timed_batch(now: datetime) -> int:
        started = time.perf_counter()
        claimed = await fire_batch(now)
        if claimed:
            batches.append(1000 * (time.perf_counter() - started))
        return claimed

    watcher._fire_batch = timed_batch  # type: ignore[method-assign]
    try:
        async with sessions() as session:
            cycles = dict(
                (
                    await session.execute(
                        select(TicketClock.ticket_id, TicketClock.cycle).where(
                            TicketClock.clock == "first_response",
                            TicketClock.ticket_id.in_(list(tickets)),
                        )
                    )
                ).all()
            )
            moment = datetime.now(UTC) + timedelta(seconds=3)
            for ticket_id in tickets:
                moment += timedelta(seconds=rng.expovariate(1 / gap))
                due[ticket_id] = moment
            await session.execute(
                insert(SlaTimer),
                [
                    {
                        "ticket_id": ticket_id,
                        "clock": "first_response",
                        "cycle": cycles[ticket_id],
                        "kind": "warning",
                        "level": 0,
                        "due_at": at,
                        "fired_at": None,
                    }
                    for ticket_id, at in due.items()
                ],
            )
            await session.commit()
        last = max(due.values()).timestamp()
        watcher.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(everything.wait(), timeout=last + LAG_TAIL - time.time())
    finally:
        await watcher.stop()
        await dispose(writer, reader)
    lags = [emitted[t] - due[t].timestamp() for t in due if t in emitted]
    result = LagRun(lags, len(due), busy, batches)
    if watcher.fired != len(due):
        result.error = f"watcher claimed {watcher.fired} timers, {len(due)} inserted"
    print(
        f"  lag: {len(lags)}/{len(due)} warnings, p50 {pct(lags, 0.5):.3f} / p99 "
        f"{pct(lags, 0.99):.3f} / max {max(lags, default=float('nan')):.3f} s; "
        f"{result.retried} of ≥ {0.9 * RETRY_SECONDS:g} s; {len(batches)} batches, p50 "
        f"{pct(batches, 0.5):.1f} ms; others' CPU {busy:.0f}% {result.error}",
        flush=True,
    )
    return result


# -- 4. tickets through the API ---------------------------------------------------------------


@dataclass
class ApiRun:
    tickets: int
    seconds: float
    latencies: list[float]  # ms
    errors: Counter[str]
    server_cpu: float
    db_cpu: float | None
    busy: float
    unsent: int = 0  # not sent: the run hit --api-limit

    @property
    def rate(self) -> float:
        return self.tickets / self.seconds if self.seconds else 0.0


async def api_run(
    url: str,
    cast: Cast,
    specs: Sequence[TicketSpec],
    *,
    clients: int,
    log: Path,
    quiet: float,
    limit: float,
) -> ApiRun:
    busy = await asyncio.to_thread(wait_for_quiet, quiet)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DESK_")},
        "DESK_MODE": "production",
        "DESK_SECRET_KEY": secrets.token_urlsafe(48),
        "DESK_HOST": HOST,
        "DESK_PORT": str(_free_port()),
        "DESK_DATABASE_URL": url,
        "DESK_AMI_HOST": "",
        "DESK_LOG_LEVEL": "WARNING",
    }
    server = Server(env, log, None)
    bodies = [spec.body() for spec in specs]
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    counter = itertools.count()
    db_name = make_url(url).database if url.startswith("postgres") else None
    try:
        connector = aiohttp.TCPConnector(limit=clients * 2)
        async with aiohttp.ClientSession(connector=connector) as http:
            await server.wait_healthy(http, limit=SERVER_START_LIMIT)
            tokens = []
            for name in cast.agent_usernames[:clients]:  # one at a time, as a person would
                body = {"username": name, "password": PASSWORD}
                async with http.post(f"{server.url}/api/v1/auth/login", json=body) as response:
                    if response.status != 200:
                        raise RuntimeError(f"login {name}: HTTP {response.status}")
                    tokens.append((await response.json())["token"])
            if len(tokens) < clients:
                raise RuntimeError(f"only {len(tokens)} agents to sign in as, {clients} clients")
            endpoint = f"{server.url}/api/v1/tickets"

            stop_at = time.perf_counter() + limit

            async def client(token: str) -> None:
                headers = {"Authorization": f"Bearer {token}"}
                while (n := next(counter)) < len(bodies) and time.perf_counter() < stop_at:
                    started = time.perf_counter()
                    try:
                        async with http.post(endpoint, json=bodies[n], headers=headers) as r:
                            await r.read()
                            status = r.status
                    except aiohttp.ClientError as exc:
                        errors[type(exc).__name__] += 1
                        continue
                    latencies.append(1000 * (time.perf_counter() - started))
                    if status != 201:
                        errors[f"HTTP {status}"] += 1

            db0 = _database_cpu(db_name) if db_name else {}
            cpu0, wall0 = server.cpu(), time.perf_counter()
            await asyncio.gather(*(client(token) for token in tokens))
            wall = time.perf_counter() - wall0
            server_cpu = 100 * (server.cpu() - cpu0) / wall
            db_cpu = None
            if db_name:
                db1 = _database_cpu(db_name)
                db_cpu = 100 * sum(v - db0.get(pid, 0.0) for pid, v in db1.items()) / wall
    finally:
        server.stop()
    done = len(latencies) - sum(v for k, v in errors.items() if k.startswith("HTTP"))
    result = ApiRun(done, wall, latencies, errors, server_cpu, db_cpu, busy)
    result.unsent = (
        len(bodies) - len(latencies) - sum(v for k, v in errors.items() if not k.startswith("HTTP"))
    )
    print(
        f"  api: {result.tickets} tickets in {wall:.1f} s = {result.rate:.0f}/s; p50 "
        f"{pct(latencies, 0.5):.1f} / p99 {pct(latencies, 0.99):.1f} ms; server CPU "
        f"{server_cpu:.0f}%{'' if db_cpu is None else f', PostgreSQL CPU {db_cpu:.0f}%'}; "
        f"errors {dict(errors) or 'none'}; unsent {result.unsent}; others' CPU {busy:.0f}%",
        flush=True,
    )
    return result


# -- per database ---------------------------------------------------------------------------


@dataclass
class DbResult:
    db: str
    tickets: int = 0
    seed: LoadReport | None = None
    seed_total: float = 0.0
    sample: int = 0
    plan: Plan | None = None
    temp_plan: Plan | None = None
    wake: list[WakeRun] = field(default_factory=list)
    temp_wake: list[WakeRun] = field(default_factory=list)
    lag: list[LagRun] = field(default_factory=list)
    temp_lag: list[LagRun] = field(default_factory=list)
    api_fresh: list[ApiRun] = field(default_factory=list)
    api_big: list[ApiRun] = field(default_factory=list)
    temp_api_big: list[ApiRun] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    diagnostics: dict[str, list[float]] = field(default_factory=dict)
    db_size: str = ""
    error: str = ""


@dataclass
class Context:
    args: argparse.Namespace
    settings: Settings
    setup: SlaSetup
    instants: list[datetime]
    plans: dict[Any, Any]
    workdir: Path


async def _sizes(url: str) -> tuple[dict[str, int], str]:
    if url.startswith("sqlite"):
        path = Path(str(make_url(url).database))
        con = sqlite3.connect(str(path))
        try:
            sizes = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        finally:
            con.close()
        size_bytes = (await asyncio.to_thread(path.stat)).st_size
        return sizes, f"{size_bytes / 2**30:.2f} GiB file"
    conn = await asyncpg.connect(plain_postgres(url))
    try:
        sizes = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}
        size = await conn.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
    finally:
        await conn.close()
    return sizes, f"{size} database"


def seed_big(ctx: Context, db: str, result: DbResult) -> tuple[str, Cast]:
    args = ctx.args
    started = time.monotonic()
    url = fresh_database(db, ctx.workdir / "sla-1m.db", args.pg_url)
    rng = random.Random(args.seed)
    cast = run(seed_people(url, agents=max(args.clients, 20), customers=args.customers, rng=rng))
    specs = ticket_specs(cast, ctx.instants, rng)
    sample = [next(specs) for _ in range(min(args.sample, args.tickets))]
    run(open_through_product(url, ctx.setup, sample))
    maker = RowMaker(ctx.setup, db, plans=ctx.plans)
    made = maker.rows(sample, dict.fromkeys(TABLES, 1))
    problem = compare(run(stored_rows(url, len(sample))), made)
    if problem:
        raise SystemExit(f"{db}: the seeder's rows differ from the product's: {problem}")
    print(f"{db}: {len(sample)} sample tickets opened by the product; seeder rows identical")
    rest = args.tickets - len(sample)
    if db == "sqlite":
        result.seed = load_sqlite(url, maker, specs, rest)
    else:
        result.seed = run(load_postgres(url, maker, specs, rest))
    result.sample = len(sample)
    result.tickets = args.tickets
    result.seed_total = time.monotonic() - started
    result.sizes, result.db_size = run(_sizes(url))
    print(
        f"{db}: seeded {result.sizes['tickets']:,} tickets, {result.sizes['sla_timers']:,} timers "
        f"in {result.seed_total:.0f} s ({result.db_size})",
        flush=True,
    )
    return url, cast


def measure_big(ctx: Context, db: str, url: str, cast: Cast, result: DbResult) -> None:
    args = ctx.args
    result.plan = run(explain(url))
    print(f"{db}: next_due plan ({result.plan.unit} {result.plan.work['next_due']:.0f}):")
    for line in result.plan.lines["next_due"]:
        print(f"    {line}")
    gc.collect()
    gc.freeze()  # as desk serve does after start-up: the seed's leftovers are not scanned

    def wakes() -> list[WakeRun]:
        return run(
            measure_wakes(
                url,
                ctx.setup,
                ctx.settings,
                runs=args.runs,
                wakes=args.wakes,
                seconds=args.wake_seconds,
                quiet=args.quiet_wait,
            )
        )

    def lags(first_batch: int, seed: int) -> list[LagRun]:
        return [
            run(
                measure_lag(
                    url,
                    ctx.setup,
                    ctx.settings,
                    batches[first_batch + n],
                    gap=args.lag_gap,
                    rng=random.Random(seed + n),
                    quiet=args.quiet_wait,
                )
            )
            for n in range(args.runs)
        ]

    result.wake = wakes()
    result.diagnostics = run(
        diagnostics(url, ctx.setup, ctx.settings, samples=200, seconds=args.wake_seconds / 2)
    )
    pick = random.Random(args.seed + 1)
    seeded = range(result.sample + 1, result.tickets + 1)
    chosen = pick.sample(seeded, min(len(seeded), 2 * args.runs * args.lag_timers))
    batches = [chosen[i :: 2 * args.runs] for i in range(2 * args.runs)]
    result.lag += lags(0, args.seed + 100)
    # The temporary index is the one proposed for next_due: tried when that is a scan.
    wanted = args.temp_index == "always" or (args.temp_index == "auto" and result.plan.scan)
    if wanted:
        print(f"{db}: with the temporary index: {TEMP_INDEX_SQL}")
        run(temp_index(url, True))
        try:
            result.temp_plan = run(explain(url))
            for line in result.temp_plan.lines["next_due"]:
                print(f"    {line}")
            result.temp_wake = wakes()
            result.temp_lag += lags(args.runs, args.seed + 200)
            for n in range(args.big_api_runs):
                print(f"{db}: API on the seeded database with the temporary index, run {n + 1}")
                result.temp_api_big.append(
                    run(
                        api_run(
                            url,
                            cast,
                            api_specs(cast, args.api_tickets, args.seed + 600 + n),
                            clients=args.clients,
                            log=ctx.workdir / f"server-{db}-big-temp-{n + 1}.log",
                            quiet=args.quiet_wait,
                            limit=args.api_limit,
                        )
                    )
                )
        finally:
            run(temp_index(url, False))
    gc.unfreeze()


def api_specs(cast: Cast, count: int, seed: int) -> list[TicketSpec]:
    now = [datetime.now(UTC)]  # created_at is the server's clock; unused in the body
    specs = ticket_specs(cast, now, random.Random(seed))
    return [next(specs) for _ in range(count)]


def measure_api(ctx: Context, db: str, big_url: str, big_cast: Cast, result: DbResult) -> None:
    args = ctx.args
    for n in range(args.big_api_runs):
        print(f"{db}: API on the seeded database, run {n + 1}")
        result.api_big.append(
            run(
                api_run(
                    big_url,
                    big_cast,
                    api_specs(big_cast, args.api_tickets, args.seed + 300 + n),
                    clients=args.clients,
                    log=ctx.workdir / f"server-{db}-big-{n + 1}.log",
                    quiet=args.quiet_wait,
                    limit=args.api_limit,
                )
            )
        )
    for n in range(args.api_runs):
        print(f"{db}: API on a fresh database, run {n + 1}")
        url = fresh_database(db, ctx.workdir / f"sla-api-{n + 1}.db", args.pg_api_url)
        rng = random.Random(args.seed + 400 + n)
        cast = run(seed_people(url, agents=args.clients, customers=200, rng=rng))
        result.api_fresh.append(
            run(
                api_run(
                    url,
                    cast,
                    api_specs(cast, args.api_tickets, args.seed + 500 + n),
                    clients=args.clients,
                    log=ctx.workdir / f"server-{db}-fresh-{n + 1}.log",
                    quiet=args.quiet_wait,
                    limit=args.api_limit,
                )
            )
        )
        if db == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{ctx.workdir / f'sla-api-{n + 1}.db'}{suffix}").unlink(missing_ok=True)
    if db == "postgres" and not args.keep:
        run(drop_postgres(args.pg_api_url))


def run_database(ctx: Context, db: str) -> DbResult:
    result = DbResult(db)
    try:
        url, cast = seed_big(ctx, db, result)
        measure_big(ctx, db, url, cast, result)
        measure_api(ctx, db, url, cast, result)
        if not ctx.args.keep:
            if db == "postgres":
                run(drop_postgres(url))
            else:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{ctx.workdir / 'sla-1m.db'}{suffix}").unlink(missing_ok=True)
    except Exception as exc:
        traceback.print_exc()
        result.error = f"{type(exc).__name__}: {exc}"
    return result


# -- 5. router ------------------------------------------------------------------------------


def router_figures(runs: int, seed: int = 7) -> tuple[float, float]:
    """p50 / p99 wall µs of one decision over 1,000 agents: ``bench.router``'s workload
    and timing, median of ``runs`` runs."""
    rng = random.Random(seed)
    rules = router_bench.build_rules(rng)
    agents = router_bench.build_agents(1000, rng)
    tickets = router_bench.build_tickets(2000, 1000, rules, rng)
    router_bench.one_run(tickets[:200], agents, rules)
    p50s, p99s = [], []
    for _ in range(runs):
        wall, _cpu, _assigned = router_bench.one_run(tickets, agents, rules)
        p50s.append(router_bench.percentile(wall, 0.5))
        p99s.append(router_bench.percentile(wall, 0.99))
    return statistics.median(p50s), statistics.median(p99s)


# -- report ---------------------------------------------------------------------------------


def _wake_median(runs: list[WakeRun]) -> tuple[float | None, ...]:
    rows = [r.row() for r in runs]
    return tuple(median([row[i] for row in rows]) for i in range(4))


def _lag_median(runs: list[LagRun]) -> tuple[float | None, float | None, float | None, int]:
    return (
        median([pct(r.lags, 0.5) if r.lags else None for r in runs]),
        median([pct(r.lags, 0.99) if r.lags else None for r in runs]),
        median([max(r.lags) if r.lags else None for r in runs]),
        sum(r.missed for r in runs),
    )


def _api_median(runs: list[ApiRun]) -> tuple[float | None, float | None, float | None, int]:
    return (
        median([r.rate for r in runs]),
        median([pct(r.latencies, 0.5) for r in runs]),
        median([pct(r.latencies, 0.99) for r in runs]),
        sum(sum(r.errors.values()) for r in runs),
    )


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _run_rows(results: list[DbResult]) -> list[str]:
    out = []
    for r in results:
        for label, wakes in (("wake ms", r.wake), ("wake ms, temp. index", r.temp_wake)):
            for i, w in enumerate(wakes, 1):
                alone = (
                    f"next_due alone p50 {pct(w.next_due, 0.5):.3f} / "
                    f"p99 {pct(w.next_due, 0.99):.3f} ms"
                )
                out.append(
                    _row(
                        r.db,
                        label,
                        i,
                        len(w.wakes),
                        f"{pct(w.wakes, 0.5):.3f}",
                        f"{pct(w.wakes, 0.99):.3f}",
                        f"{max(w.wakes):.3f}",
                        alone,
                        f"{w.busy:.0f}",
                    )
                )
        for label, lags in (("lag s", r.lag), ("lag s, temp. index", r.temp_lag)):
            for i, lr in enumerate(lags, 1):
                extra = (
                    f"missed {lr.missed}; {lr.retried} of ≥ {0.9 * RETRY_SECONDS:g} s; "
                    f"{len(lr.batches)} batches fired, p50 {pct(lr.batches, 0.5):.1f} / max "
                    f"{max(lr.batches, default=0):.1f} ms"
                )
                extra += f"; {lr.error}" if lr.error else ""
                out.append(
                    _row(
                        r.db,
                        label,
                        i,
                        len(lr.lags),
                        fmt(pct(lr.lags, 0.5) if lr.lags else None, ".3f"),
                        fmt(pct(lr.lags, 0.99) if lr.lags else None, ".3f"),
                        fmt(max(lr.lags, default=None), ".3f"),
                        extra,
                        f"{lr.busy:.0f}",
                    )
                )
        for label, apis in (
            ("API ms, fresh", r.api_fresh),
            ("API ms, seeded", r.api_big),
            ("API ms, seeded, temp. index", r.temp_api_big),
        ):
            for i, a in enumerate(apis, 1):
                # (PostgreSQL's own CPU is not shown: the backends of pooled connections
                # that close during the run take their CPU time with them.)
                extra = f"{a.rate:,.0f} tickets/s; server process CPU {a.server_cpu:.0f}%"
                if a.errors:
                    extra += f"; errors {dict(a.errors)}"
                if a.unsent:
                    extra += f"; stopped at the time limit, {a.unsent:,} not sent"
                out.append(
                    _row(
                        r.db,
                        label,
                        i,
                        f"{len(a.latencies):,}",
                        f"{pct(a.latencies, 0.5):.1f}",
                        f"{pct(a.latencies, 0.99):.1f}",
                        f"{max(a.latencies, default=0):.1f}",
                        extra,
                        f"{a.busy:.0f}",
                    )
                )
    return out


def code_state() -> str:
    """'commit abc1234' (and how many files differ from it), '' without git."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return ""
    dirty = [line for line in dirty if not line.endswith("docs/benchmarks.md")]  # ours
    if not head:
        return ""
    return f"commit {head}" + (f" with {len(dirty)} files changed" if dirty else "")


def machine_facts(load_before: str, pg: dict[str, str], code_before: str) -> list[str]:
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
        memory = f"; RAM {kb / 2**20:.0f} GiB"
    facts = [
        f"CPU {cpu_model()}; nproc {len(os.sched_getaffinity(0))} (of {os.cpu_count()}){memory}",
        f"load average (1, 5, 15 min) at start {load_before}; at end {load_average()}",
        f"Python {platform.python_version()} ({platform.python_implementation()}); "
        f"OS {platform.system()} {platform.release()}; SQLite {sqlite3.sqlite_version}",
        "libraries " + library_versions("aiohttp", "SQLAlchemy", "aiosqlite", "asyncpg", "uvloop"),
    ]
    code = code_state()
    if code:
        facts.append(
            f"code at {code_before}"
            if code == code_before
            else f"code at {code_before} at the start and {code} at the end (it changed!)"
        )
    if pg:
        facts.append(
            "PostgreSQL "
            + ", ".join(f"{k} {v}" for k, v in pg.items())
            + " (server defaults; same machine, 127.0.0.1)"
        )
    return facts


async def postgres_facts(url: str) -> dict[str, str]:
    admin = make_url(plain_postgres(url)).set(database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        out = {"version": (await conn.fetchval("SHOW server_version")).split()[0]}
        for name in ("shared_buffers", "work_mem", "synchronous_commit", "random_page_cost"):
            out[name] = await conn.fetchval(f"SHOW {name}")
        return out
    finally:
        await conn.close()


def render(
    results: list[DbResult],
    router: tuple[float, float] | None,
    args: argparse.Namespace,
    facts: list[str],
    command: str,
    when: datetime,
) -> str:
    """The section for docs/benchmarks.md (also printed)."""
    out: list[str] = []
    add = out.append
    add(
        f"Generated by `{command}`, measurements finished {when:%Y-%m-%d %H:%M} UTC. "
        "Not a timed test: figures vary with the machine and its load."
    )
    add("")
    add("Machine: " + "; ".join(facts) + ".")
    add("")
    add(
        f"Method (details in the docstring of `bench/sla.py`): per database, {args.tickets:,} "
        f"open tickets seeded once — {args.sample} of them opened through `open_ticket` + "
        "`SlaClockKeeper` (what `POST /api/v1/tickets` runs), the rest bulk-loaded with the "
        "rows the keeper's own functions make for them (checked identical, column for column, "
        "to what the product stored for the sample): ticket, audit rows, timeline entry, 3 "
        "clock rows and 10 unfired timers per ticket, created at "
        f"{args.instants:,} distinct instants 1 to 22 days ahead so every timer is in the future "
        "(due times spread over the next 3 to 4 weeks). Indexes as the migrations make them "
        "(dropped during the load and rebuilt from their own definitions); PostgreSQL "
        "`VACUUM ANALYZE`d after the load, as autovacuum would. "
        f"**Wake**: a real `SlaWatcher` running its `_run` loop; time from `poke()` to the "
        "loop waiting again = one round with nothing due (`next_due()`, the comparison, "
        f"`_delay()` which reads `next_due()` again), up to {args.wakes} wakes per run; "
        "`next_due()` alone also timed. "
        f"**Lag**: {args.lag_timers} warning timers per run on seeded tickets, due from 3 s "
        f"ahead at exponential gaps (mean {args.lag_gap} s), a real watcher on the real clock; "
        "lag = `time.time()` when `SlaWarned` is published on the `EventBus` (after the commit) "
        "minus the due time. "
        f"**API**: `desk serve` (own process, production mode, no PBX), {args.clients} "
        f"aiohttp clients each signed in as an agent, {args.api_tickets:,} `POST "
        "/api/v1/tickets` per run (random priority, customer, assignee; the SLA clocks and "
        "timers start in the same transaction); latency per request measured by the client; "
        "fresh database per run, and on the seeded database. "
        f"Figures: median over the runs of each run's percentile ({args.runs} runs of wake "
        f"and lag, {args.api_runs} of the API on fresh databases, {args.big_api_runs} on the "
        "seeded one)."
    )
    add("")
    add(
        "| database | tickets seeded | seed s | plans (nothing due) | wake p50 / p99 ms "
        "| `next_due()` p50 / p99 ms | wake p99 ≤ 2 ms | lag p50 / p99 / max s | missed "
        "| lag p99 ≤ 1 s | API fresh: tickets/s, p50 / p99 ms | API with the seed: "
        "tickets/s, p50 / p99 ms |"
    )
    add("| --- | ---: | ---: | --- | ---: | ---: | --- | ---: | ---: | --- | ---: | ---: |")
    for r in results:
        if r.error and not r.wake:
            add(f"| {r.db} | — | — | — | — | — | — | — | — | — | — | — |")
            continue
        w50, w99, n50, n99 = _wake_median(r.wake)
        l50, l99, lmax, missed = _lag_median(r.lag)
        fresh, big = _api_median(r.api_fresh), _api_median(r.api_big)
        plan = r.plan.summary() if r.plan else "—"
        add(
            f"| {r.db} | {r.sizes.get('tickets', 0):,} | {r.seed_total:.0f} | {plan} "
            f"| {fmt(w50, '.3f')} / **{fmt(w99, '.3f')}** | {fmt(n50, '.3f')} / {fmt(n99, '.3f')} "
            f"| {met(w99, TARGET_WAKE_MS)} | {fmt(l50, '.3f')} / **{fmt(l99, '.3f')}** / "
            f"{fmt(lmax, '.3f')} | {missed} | {met(l99, TARGET_LAG_S)} "
            f"| {fmt(fresh[0], ',.0f')}, {fmt(fresh[1], '.1f')} / {fmt(fresh[2], '.1f')} "
            f"| {fmt(big[0], ',.0f')}, {fmt(big[1], '.1f')} / {fmt(big[2], '.1f')} |"
        )
        if r.temp_wake:
            tw = _wake_median(r.temp_wake)
            tl = _lag_median(r.temp_lag)
            tb = _api_median(r.temp_api_big)
            tplan = "with the temporary index: " + (r.temp_plan.summary() if r.temp_plan else "")
            add(
                f"| {r.db} + `{TEMP_INDEX}` | same | — | {tplan} "
                f"| {fmt(tw[0], '.3f')} / **{fmt(tw[1], '.3f')}** | {fmt(tw[2], '.3f')} / "
                f"{fmt(tw[3], '.3f')} | {met(tw[1], TARGET_WAKE_MS)} | {fmt(tl[0], '.3f')} / "
                f"**{fmt(tl[1], '.3f')}** / {fmt(tl[2], '.3f')} | {tl[3]} | "
                f"{met(tl[1], TARGET_LAG_S)} | — | {fmt(tb[0], ',.0f')}, {fmt(tb[1], '.1f')} / "
                f"{fmt(tb[2], '.1f')} |"
            )
    add("")
    if router is not None:
        add(
            f"Router (`bench.router`'s workload, called from here): one `route()` over 1,000 "
            f"agents, median of {args.runs} runs: p50 {router[0]:.0f} µs, p99 "
            f"**{router[1]:.0f} µs** (target p99 ≤ 1000 µs: {met(router[1], TARGET_ROUTER_US)}); "
            "see also the router section."
        )
        add("")
    targets = []
    for r in results:
        if not r.wake:
            targets.append(f"{r.db}: not measured ({r.error})")
            continue
        w99 = _wake_median(r.wake)[1]
        l99 = _lag_median(r.lag)[1]
        line = (
            f"{r.db}: wake p99 {fmt(w99, '.3f')} ms {met(w99, TARGET_WAKE_MS)}, "
            f"lag p99 {fmt(l99, '.3f')} s {met(l99, TARGET_LAG_S)}"
        )
        if r.temp_wake:
            tw99 = _wake_median(r.temp_wake)[1]
            tl99 = _lag_median(r.temp_lag)[1]
            line += (
                f" (with the temporary index: wake p99 {fmt(tw99, '.3f')} ms "
                f"{met(tw99, TARGET_WAKE_MS)}, lag p99 {fmt(tl99, '.3f')} s "
                f"{met(tl99, TARGET_LAG_S)})"
            )
        targets.append(line)
    add("Targets (wake p99 ≤ 2 ms, lag p99 ≤ 1 s): " + "; ".join(targets) + ".")
    add("")
    diag = [r for r in results if getattr(r, "diagnostics", None)]
    if diag:
        add(
            "Diagnostics: each statement timed alone on the seeded database (nothing due), "
            "one call after the other, product indexes; ms per call, p50 / max:"
        )
        add("")
        add("| statement | " + " | ".join(r.db for r in diag) + " |")
        add("| --- | " + " | ".join("---:" for _ in diag) + " |")
        for key, label in DIAGNOSTICS.items():
            cells = []
            for r in diag:
                timings = r.diagnostics.get(key)
                cells.append(f"{pct(timings, 0.5):.2f} / {max(timings):.2f}" if timings else "—")
            add(f"| {label} | " + " | ".join(cells) + " |")
        add("")
    reading = []
    for r in results:
        if not r.lag:
            continue
        batches = [b for lr in r.lag for b in getattr(lr, "batches", [])]
        lags = [lag for lr in r.lag for lag in lr.lags]
        waited = sum(lr.retried for lr in r.lag)
        text = (
            f"**{r.db}**: of {len(lags)} warnings, {waited} came "
            f"{0.9 * RETRY_SECONDS:g} s or more late"
        )
        if batches:
            text += (
                f"; firing a batch (claim, fire, commit, publish) took p50 "
                f"{pct(batches, 0.5):.1f} ms, max {max(batches):.1f} ms, and "
                f"{len(batches)} batches fired the {len(lags)} warnings"
            )
        diag = getattr(r, "diagnostics", {})
        claim, unguarded = diag.get("claim"), diag.get("claim_unguarded")
        if claim and pct(claim, 0.5) > 0.5 * pct(batches, 0.5) and pct(claim, 0.5) > 50:
            text += (
                f". Nearly all of a batch is the claim ({pct(claim, 0.5):.0f} ms alone, "
                "diagnostics): SQLite runs its `UPDATE … WHERE id IN (…) AND fired_at IS "
                "NULL` by walking `ix_sla_timers_pending` over every unfired timer (the "
                "claim's plan below, its VM steps) instead of looking the ids up"
            )
            if unguarded:
                text += (
                    f"; without the outer `fired_at IS NULL` — redundant there, as the "
                    "subquery already selects unfired timers under SQLite's one write lock — "
                    f"the same claim takes {pct(unguarded, 0.5):.2f} ms. While one batch is "
                    "fired the next timers fall due, so the watcher never catches up "
                    "within the target"
                )
        elif waited:
            text += (
                f". The warnings {0.9 * RETRY_SECONDS:g} s or more late waited the watcher's "
                f"retry pause (`RETRY_SECONDS` = {RETRY_SECONDS:g} s), taken when `_delay()` "
                "finds a timer due that its round did not fire. A probe of the loop showed "
                "the case: the wake comes a moment (tens of µs) before the due time, "
                "`next_due()` says not yet, nothing is claimed, and `_delay()` reads the "
                "same timer a fraction of a millisecond later, now due, as if another "
                "process held it"
            )
        reading.append(text)
    if reading:
        add("Where the lag comes from. " + ". ".join(reading) + ".")
        add("")
    loads = {
        r.db: pct(r.diagnostics["assigner_loads"], 0.5)
        for r in results
        if getattr(r, "diagnostics", {}).get("assigner_loads") and r.api_big
    }
    if loads:
        add(
            "API with the seed: slower than on a fresh database ("
            + "; ".join(
                f"{r.db} {_api_median(r.api_big)[0] or 0:,.0f} against "
                f"{_api_median(r.api_fresh)[0] or 0:,.0f} tickets/s"
                for r in results
                if r.db in loads
            )
            + "). A likely part of it: for every new ticket without an assignee the "
            "assigner counts the open assigned tickets of every agent "
            "(`TicketAssigner._people`), which reads the whole open backlog: "
            + "; ".join(f"{db} {ms:.0f} ms a time" for db, ms in loads.items())
            + " (diagnostics). Not split up further here."
        )
        add("")
    for r in results:
        if r.plan is None:
            continue
        add(
            f"Query plans, {r.db}, {r.sizes.get('sla_timers', 0):,} timers, product's indexes"
            + (
                " (the claim: its selection only, without the join, lock and update):"
                if r.db == "postgres"
                else " (the claim: the whole `UPDATE … RETURNING`, rolled back):"
            )
        )
        add("")
        add("```")
        for name, lines in r.plan.lines.items():
            add(f"-- {name}: {r.plan.work[name]:,.0f} {r.plan.unit}")
            out.extend(lines)
        if r.temp_plan is not None:
            add(f"-- with {TEMP_INDEX_SQL}")
            for name, lines in r.temp_plan.lines.items():
                add(f"-- {name}: {r.temp_plan.work[name]:,.0f} {r.temp_plan.unit}")
                out.extend(lines)
        add("```")
        add("")
    add("Every run (others' CPU: % of one core used by other processes just before the run):")
    add("")
    add("| database | measurement | run | n | p50 | p99 | max | extra | others' CPU % |")
    add("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    out.extend(_run_rows(results))
    for r in results:
        if r.seed is not None:
            rows = ", ".join(f"{t} {n:,}" for t, n in r.sizes.items())
            add("")
            add(
                f"Seed, {r.db}: {rows}; {r.db_size}; bulk load {r.seed.seconds:.0f} s of which "
                f"index builds {r.seed.index_seconds:.0f} s, {r.seed_total:.0f} s in all."
            )
        if r.error:
            add("")
            add(f"Error, {r.db}: {r.error}")
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sample", type=int, default=200, help="tickets opened by the product")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--instants", type=int, default=20_000)
    parser.add_argument("--wakes", type=int, default=2000, help="wakes per run")
    parser.add_argument("--wake-seconds", type=float, default=20.0, help="per run, at most")
    parser.add_argument("--lag-timers", type=int, default=200)
    parser.add_argument("--lag-gap", type=float, default=0.15, help="mean seconds between dues")
    parser.add_argument("--api-tickets", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--api-runs", type=int, default=3, help="on fresh databases")
    parser.add_argument("--big-api-runs", type=int, default=1, help="on the seeded database")
    parser.add_argument(
        "--api-limit", type=float, default=300.0, help="stop an API run after this many s"
    )
    parser.add_argument("--temp-index", choices=["auto", "always", "never"], default="auto")
    parser.add_argument("--quiet-wait", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--pg-api-url", default=DEFAULT_PG_API_URL)
    parser.add_argument("--no-router", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--dump", type=Path, help="also save the results (pickle) here")
    parser.add_argument("--from-dump", type=Path, help="report saved results, measure nothing")
    args = parser.parse_args(argv)
    args.command = list(sys.argv[1:] if argv is None else argv)
    if args.from_dump is not None:
        saved = pickle.loads(args.from_dump.read_bytes())
        saved["args"].write_docs = args.write_docs
        when = saved.get("when") or datetime.fromtimestamp(args.from_dump.stat().st_mtime, UTC)
        return report(saved["args"], saved["results"], saved["router"], saved["facts"], when)
    if args.tickets < args.sample or args.tickets < 2 * args.runs * args.lag_timers:
        parser.error("--tickets must cover --sample and the lag timers' tickets")

    load_before, code_before = load_average(), code_state()
    settings = load_settings(
        environ={}, overrides={"mode": "test", "secret_key": secrets.token_urlsafe(48)}
    )
    setup = sla_setup(settings)
    base = datetime.now(UTC)
    workdir = Path(tempfile.mkdtemp(prefix="calldesk-bench-sla-"))
    ctx = Context(
        args, settings, setup, creation_instants(base, args.instants, SEED_DAYS), {}, workdir
    )
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    results = []
    try:
        for db in dbs:
            print(f"== {db}", flush=True)
            results.append(run_database(ctx, db))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir}")
    router = None
    if not args.no_router:
        router = router_figures(args.runs)
        print(f"router: p50 {router[0]:.0f} µs, p99 {router[1]:.0f} µs")
    pg = run(postgres_facts(args.pg_url)) if "postgres" in dbs else {}
    facts = machine_facts(load_before, pg, code_before)
    when = datetime.now(UTC)
    if args.dump is not None:
        saved = {"args": args, "results": results, "router": router, "facts": facts, "when": when}
        args.dump.write_bytes(pickle.dumps(saved))
    return report(args, results, router, facts, when)


def report(
    args: argparse.Namespace,
    results: list[DbResult],
    router: tuple[float, float] | None,
    facts: list[str],
    when: datetime,
) -> int:
    options, skip = [], False
    for option in args.command:  # the command as given, less where its results were saved
        if skip or option.startswith("--dump"):
            skip = option == "--dump"
            continue
        options.append(option)
    command = "python -m bench.sla " + " ".join(options)
    section = render(results, router, args, facts, command, when)
    print()
    print(section)
    if args.write_docs:
        text = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
        if "<!-- sla:begin -->" not in text and "## Tickets and SLA" in text:
            # The heading is there without markers: put them right under it.
            text = text.replace(
                "## Tickets and SLA\n",
                "## Tickets and SLA\n\n<!-- sla:begin -->\n<!-- sla:end -->\n",
                1,
            )
            DOC.write_text(text, encoding="utf-8")
        write_section(key="sla", title="Tickets and SLA", section=section)
        print(f"wrote {DOC}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
