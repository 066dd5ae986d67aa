"""Screen pops across a two-process cluster: pops/s and latency with thousands of agents.

Run::

    .venv/bin/python -m bench.cluster [--runs 3] [--rate 50] [--duration 20]
        [--clients 2000] [--pop-tabs 4] [--workers 2] [--pg-url URL] [--redis-url URL]
        [--quiet-wait 180] [--write-docs]

Two setups per run, interleaved, each on a fresh PostgreSQL database (the one named
in ``--pg-url``, dropped and created again; seeded as bench/pop_latency.py seeds it:
``seed_demo`` plus filler agents who get no pops):

* **cluster**: two ``desk serve`` processes on two ports, sharing the database and
  Redis (socket.io's Redis manager).  The first starts alone and takes the PBX link
  lease (desk/leases.py); the second starts once the first is linked, and stands by.
  Only the holder follows the PBX, so every pop is emitted there: its own clients get
  it from that process, the standby's clients only through Redis (web/realtime.py).
* **single**: one ``desk serve`` without Redis, with the same clients: the peer that
  shows what the cluster path costs.

Clients: ``--clients`` socket.io ``AsyncClient``s (websocket) in ``--workers`` child
processes (bench/pop_latency.py's ``Worker``), half on each process.  The recorded
calls ring only PJSIP/1001..1004 (alice, bob, carol, dave), so, as in
bench/pop_latency.py, those four agents have several tabs (``--pop-tabs`` each, half
on the holder, half on the standby): every pop goes to both processes.  Every other
client is an agent of its own (filler extensions 3001…), signed in, connected and
idle.  The single setup keeps the same client processes and tabs, all pointed at its
one server.

Load and scoring are bench/pop_latency.py's: ``PbxSimulator.generate_load(rate,
duration=…, speed=1.0)`` from this process, expected pops by replaying the written
frames through ``normalise`` → ``CallTracker`` → ``PopDesk``, latency = the tab's
``screen_pop`` handler time minus the write time of the frame that caused the pop,
missed and duplicates per tab; split here by the process the tab is connected to.

Redis: by default a private ``redis-server`` on a free port, started by this script.
A shared server will not do: socket.io publishes on one channel (``socketio``) and
Redis pub/sub ignores database numbers, so every deployment on that server would get
the benchmark's pops (and the benchmark theirs).

``--write-docs`` writes the section between ``<!-- cluster:begin -->`` and
``<!-- cluster:end -->`` of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import redis
from sqlalchemy.engine import make_url

from bench.pop_latency import (
    AMI_USER,
    CONTENDED,
    HOST,
    POP_AGENTS,
    SETTLE_LIMIT,
    SETTLE_QUIET,
    Received,
    RunResult,
    Server,
    TimedSimulator,
    Worker,
    _cpu_seconds,
    _database_cpu,
    _fmt,
    _free_port,
    _login,
    _machine_busy,
    _median,
    _score,
    expected_pops,
    fresh_database,
    machine_facts,
    percentile,
    wait_for_quiet,
)
from bench.report import DOC, load_average, write_section
from cti.simulator import CALL_SCENARIOS
from desk.settings import load_settings

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/calldesk_bench_cluster"
SETUPS = ("cluster", "single")
SIDES = ("holder", "standby")  # process 0 takes the link lease, process 1 stands by
SERVER_START_LIMIT = 60.0
CONNECT_LIMIT = 300.0  # a client process connects its share of the tabs within this
# Client processes end by themselves after WORKER_LIFETIME (900 s): connecting, waiting
# for quiet, the load and its tail must fit in it.
QUIET_WAIT_LIMIT = 360.0
LOGIN_PARALLEL = 4
FD_SPARE = 1024  # descriptors beyond one per client: database, Redis, files, pipes


# -- Redis ------------------------------------------------------------------------------


class PrivateRedis:
    """A throw-away ``redis-server`` on a free port: no disk, nobody else's pub/sub."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not on PATH: install it or pass --redis-url")
        port = _free_port()
        self.url = f"redis://{HOST}:{port}/0"
        self._log = (workdir / "redis.log").open("wb")
        argv = [binary, "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(
            argv, cwd=workdir, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"redis-server did not start (see {workdir}/redis.log)"
                    ) from None
                time.sleep(0.1)
        client.close()

    def cpu(self) -> float:
        return _cpu_seconds(self.proc.pid)

    def publishes(self) -> int:
        """PUBLISH commands so far: socket.io's emits and the link relay's messages."""
        client = redis.Redis.from_url(self.url)
        try:
            stats = client.info("commandstats")
        finally:
            client.close()
        return int(stats.get("cmdstat_publish", {}).get("calls", 0))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._log.close()


def _flush(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


# -- file descriptors -------------------------------------------------------------------


def raise_fd_limit(clients: int) -> tuple[int, int]:
    """Every client is a socket in a client process and one in the single server:
    raise the soft limit (inherited by the children) towards the hard one.
    Returns the (soft, hard) limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = clients + FD_SPARE
    if soft != resource.RLIM_INFINITY and soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft, hard


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


# -- one run ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    rate: float
    duration: float
    clients: int
    pop_tabs: int
    workers: int
    pg_url: str


@dataclass(frozen=True)
class Layout:
    """Who each tab is and which process it talks to (the same in both setups)."""

    usernames: list[str]
    user_of_tab: list[str]
    side_of_tab: list[int]  # 0: the first process (holder), 1: the second (standby)

    @classmethod
    def of(cls, opts: Options) -> Layout:
        """The pop agents' tabs first, alternating between the processes, then one tab
        per filler agent, alternating too: each process gets half of each kind."""
        fillers = [f"bench{i:04d}" for i in range(opts.clients - len(POP_AGENTS) * opts.pop_tabs)]
        tabs = [(name, tab % 2) for tab in range(opts.pop_tabs) for name in POP_AGENTS]
        tabs += [(name, i % 2) for i, name in enumerate(fillers)]
        return cls(
            usernames=[*POP_AGENTS, *fillers],
            user_of_tab=[name for name, _ in tabs],
            side_of_tab=[side for _, side in tabs],
        )

    def tabs_of_worker(self, worker: int, workers: int) -> list[int]:
        """Worker ``w`` serves side ``w % 2``; a side's tabs are dealt among its workers."""
        side, per_side = worker % 2, workers // 2
        mine = [i for i, s in enumerate(self.side_of_tab) if s == side]
        return mine[worker // 2 :: per_side]


@dataclass
class ClusterRun:
    setup: str
    run: int
    calls: int = 0
    load_seconds: float = 0.0
    # "all", and per process in the cluster ("holder", "standby"): pops scored by tab.
    parts: dict[str, RunResult] = field(default_factory=dict)
    server_cpu: list[float] = field(default_factory=list)  # % of one core, per desk serve
    server_rss_mb: list[float] = field(default_factory=list)  # after the clients connected
    db_cpu: float = 0.0
    redis_cpu: float | None = None  # None: not ours to measure (or no Redis)
    publishes_per_second: float | None = None
    sim_cpu: float = 0.0
    client_cpu: list[float] = field(default_factory=list)
    client_lag_p99_ms: list[float] = field(default_factory=list)
    machine_cpu: float = 0.0
    connect_seconds: float = 0.0
    clients_connected: int = 0
    busy_before: float = 0.0
    error: str = ""

    @property
    def other_cpu(self) -> float:
        ours = sum(self.server_cpu) + self.db_cpu + (self.redis_cpu or 0.0) + self.sim_cpu
        return max(0.0, self.machine_cpu - ours - sum(self.client_cpu))

    def part(self, name: str) -> RunResult:
        return self.parts.get(name) or RunResult(db=self.setup, run=self.run)

    def pops_per_second(self, name: str) -> float | None:
        part = self.parts.get(name)
        if part is None or not self.load_seconds:
            return None
        return part.received / self.load_seconds


async def _start_servers(
    http: aiohttp.ClientSession, env: dict[str, str], count: int, workdir: Path, tag: str
) -> list[Server]:
    servers: list[Server] = []
    try:
        for index in range(count):
            mine = {**env, "DESK_PORT": str(_free_port())}
            server = Server(mine, workdir / f"server-{tag}-{index}.log", None)
            servers.append(server)
            if index == 0:  # alone: it takes the lease and links up
                await server.wait_connected(http)
            else:
                await server.wait_until(
                    http,
                    lambda health: health["ami"].get("role") == "standby",
                    failure="the second desk serve is not a healthy standby",
                    limit=SERVER_START_LIMIT,
                )
        if count > 1 and (await servers[0].health(http))["ami"].get("role") != "holder":
            raise RuntimeError("the first desk serve does not hold the PBX link")
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


async def one_run(
    setup: str,
    run: int,
    db_url: str,
    broker: PrivateRedis | str,
    opts: Options,
    workdir: Path,
    quiet_wait: float,
) -> ClusterRun:
    result = ClusterRun(setup=setup, run=run)
    processes = 2 if setup == "cluster" else 1
    layout = Layout.of(opts)
    extension_of = {name: str(1001 + i) for i, name in enumerate(POP_AGENTS)}
    redis_url = (broker if isinstance(broker, str) else broker.url) if processes > 1 else ""
    if redis_url:
        _flush(redis_url)
    ami_secret = secrets.token_urlsafe(16)
    sim = TimedSimulator(host=HOST, port=0, username=AMI_USER, secret=ami_secret)
    await sim.start()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DESK_")},
        "DESK_MODE": "production",
        "DESK_SECRET_KEY": secrets.token_urlsafe(48),
        "DESK_HOST": HOST,
        "DESK_DATABASE_URL": db_url,
        "DESK_REDIS_URL": redis_url,
        "DESK_AMI_HOST": HOST,
        "DESK_AMI_PORT": str(sim.port),
        "DESK_AMI_USERNAME": AMI_USER,
        "DESK_AMI_SECRET": ami_secret,
    }
    trunks = load_settings(environ={**env, "DESK_PORT": "8080"}).cti_trunks
    servers: list[Server] = []
    workers: list[Worker] = []
    try:
        async with aiohttp.ClientSession() as http:
            servers = await _start_servers(http, env, processes, workdir, f"{setup}-{run}")
            gate = asyncio.Semaphore(LOGIN_PARALLEL)

            async def login(name: str) -> str:
                async with gate:
                    return await _login(http, servers[0].url, name)

            token_of = dict(
                zip(
                    layout.usernames,
                    await asyncio.gather(*(login(name) for name in layout.usernames)),
                    strict=True,
                )
            )
            connect_started = time.monotonic()
            for index in range(opts.workers):
                tabs = [
                    (i, token_of[layout.user_of_tab[i]])
                    for i in layout.tabs_of_worker(index, opts.workers)
                ]
                server = servers[(index % 2) % processes]
                workers.append(Worker(server.url, tabs, ""))
            ready = [await w.receive(CONNECT_LIMIT) for w in workers]
            result.connect_seconds = time.monotonic() - connect_started
            connected = sum(r[1] for r in ready)
            if connected != opts.clients:
                failures = [f for r in ready for f in r[2]]
                raise RuntimeError(f"only {connected}/{opts.clients} clients connected: {failures}")
            result.server_rss_mb = [_rss_mb(s.proc.pid) for s in servers]
            # Waited for here, with everything up: sign-ins and connects take a minute,
            # long enough for other people's work to start after an earlier check.
            loop = asyncio.get_running_loop()
            result.busy_before = await loop.run_in_executor(None, wait_for_quiet, quiet_wait)
            for w in workers:
                await w.ask("start")

            db_name = make_url(db_url).database or ""
            db0 = _database_cpu(db_name)
            busy0 = _machine_busy()
            private = broker if processes > 1 and isinstance(broker, PrivateRedis) else None
            redis0 = (private.cpu(), private.publishes()) if private is not None else None
            cpu0 = ([s.cpu() for s in servers], time.process_time(), time.monotonic())
            sim.recording = True
            result.calls = await sim.generate_load(
                opts.rate, duration=opts.duration, speed=1.0, scenarios=CALL_SCENARIOS
            )
            sim.recording = False
            cpu1 = ([s.cpu() for s in servers], time.process_time(), time.monotonic())
            busy1 = _machine_busy()
            window = result.load_seconds = cpu1[2] - cpu0[2]
            if busy1[1] > busy0[1]:
                cores = len(os.sched_getaffinity(0))
                result.machine_cpu = 100 * cores * (busy1[0] - busy0[0]) / (busy1[1] - busy0[1])
            result.server_cpu = [
                100 * (b - a) / window for a, b in zip(cpu0[0], cpu1[0], strict=True)
            ]
            result.sim_cpu = 100 * (cpu1[1] - cpu0[1]) / window
            if private is not None and redis0 is not None:
                result.redis_cpu = 100 * (private.cpu() - redis0[0]) / window
                result.publishes_per_second = (private.publishes() - redis0[1]) / window
            db1 = _database_cpu(db_name)
            result.db_cpu = 100 * sum(v - db0.get(pid, 0.0) for pid, v in db1.items()) / window

            expected = expected_pops(sim.written, trunks)
            pop_interfaces = {f"PJSIP/{ext}" for ext in extension_of.values()}
            wanted = {k: t for k, t in expected.written_at.items() if k[1] in pop_interfaces}
            pop_tabs = Counter(
                f"PJSIP/{extension_of[u]}" for u in layout.user_of_tab if u in extension_of
            )
            await _settle(workers, sum(pop_tabs[key[1]] for key in wanted))

            healths = [await s.health(http) for s in servers]
            records: list[Received] = []
            for w in workers:
                _, got, cpu, wall, lags, still = await w.ask("stop", limit=60)
                records.extend(got)
                result.client_cpu.append(100 * cpu / wall if wall else 0.0)
                result.client_lag_p99_ms.append(1000 * (percentile(lags, 99) or 0.0))
                result.clients_connected += still
        result.parts = _score_parts(setup, run, records, wanted, layout, extension_of)
        result.error = _link_trouble(healths, processes)
        if not result.error and result.clients_connected != opts.clients:
            # An idle tab that dropped would otherwise go unnoticed (no pop to miss).
            lost = opts.clients - result.clients_connected
            result.error = f"{lost} clients disconnected during the run"
    finally:
        for w in workers:
            w.close()
        for server in servers:
            server.stop()
        await sim.stop()
    return result


async def _settle(workers: Sequence[Worker], expected: int) -> None:
    """Let the tail arrive: until every expected pop is in, or nothing moves."""
    last, quiet_since, deadline = -1, time.monotonic(), time.monotonic() + SETTLE_LIMIT
    while time.monotonic() < deadline:
        total = sum([(await w.ask("count"))[1] for w in workers])
        if total >= expected:
            return
        if total != last:
            last, quiet_since = total, time.monotonic()
        elif time.monotonic() - quiet_since > SETTLE_QUIET:
            return
        await asyncio.sleep(0.25)


def _score_parts(
    setup: str,
    run: int,
    records: list[Received],
    wanted: dict[tuple[str, str, str], float],
    layout: Layout,
    extension_of: dict[str, str],
) -> dict[str, RunResult]:
    """Score every tab, and (in the cluster) the tabs of each process apart."""
    groups: dict[str, set[int]] = {"all": set(range(len(layout.user_of_tab)))}
    if setup == "cluster":
        for side, name in enumerate(SIDES):
            groups[name] = {i for i, s in enumerate(layout.side_of_tab) if s == side}
    parts: dict[str, RunResult] = {}
    for name, tabs in groups.items():
        part = RunResult(db=setup, run=run)
        tabs_of: Counter[str] = Counter(
            f"PJSIP/{extension_of[layout.user_of_tab[i]]}"
            for i in tabs
            if layout.user_of_tab[i] in extension_of
        )
        part.expected_pops = len(wanted)
        part.expected_deliveries = sum(tabs_of[key[1]] for key in wanted)
        mine = [r for r in records if r[0] in tabs]
        _score(part, mine, wanted, tabs_of, layout.user_of_tab, extension_of)
        parts[name] = part
    return parts


def _link_trouble(healths: Sequence[dict[str, object]], processes: int) -> str:
    """The scoring assumes one link that never re-read the PBX and never moved."""
    ami = [h["ami"] for h in healths]
    holder = ami[0] if isinstance(ami[0], dict) else {}
    if int(holder.get("reconnects") or 0) or int(holder.get("resyncs") or 0) > 1:
        return f"AMI link reconnected {holder.get('reconnects')}x during the run"
    if processes > 1:
        roles = [a.get("role") if isinstance(a, dict) else None for a in ami]
        if roles != list(SIDES):
            return f"the link moved during the run: roles {roles}"
    return ""


# -- report -----------------------------------------------------------------------------

ROWS = (  # (setup, part, label)
    ("cluster", "all", "both processes"),
    ("cluster", "holder", "holder (emits the pops)"),
    ("cluster", "standby", "standby (pops via Redis)"),
    ("single", "all", "one process, no Redis"),
)


def _clients_of(part: str, opts: Options) -> tuple[int, int]:
    """(clients, pop agents' tabs) that a row counts."""
    share = 1 if part == "all" else 2
    return opts.clients // share, len(POP_AGENTS) * opts.pop_tabs // share


def _cell(runs: Sequence[ClusterRun], part: str, q: float, attr: str = "latencies_ms") -> str:
    return _fmt(_median([r.part(part).pct(q, getattr(r.part(part), attr)) for r in runs]))


def _run_row(r: ClusterRun) -> str:
    every = r.part("all")
    delivered = "/".join(
        f"{p.expected_deliveries - p.missed:,}"
        for name, p in r.parts.items()
        if name != "all" or len(r.parts) == 1
    )
    return (
        f"| {r.setup} | {r.run} | {r.calls} | {every.expected_pops:,} | {delivered} "
        f"| {every.expected_deliveries:,} | {_fmt(every.pct(50))} | {_fmt(every.pct(99))} "
        f"| {_fmt(every.pct(100))} | {every.missed} | {every.duplicates} | {every.unexpected} "
        f"| {'/'.join(_fmt(c, '.0f') for c in r.server_cpu)} "
        f"| {'/'.join(_fmt(m, '.0f') for m in r.server_rss_mb)} | {_fmt(r.db_cpu, '.0f')} "
        f"| {_fmt(r.redis_cpu, '.0f')} | {_fmt(r.publishes_per_second, ',.0f')} "
        f"| {'/'.join(_fmt(c, '.0f') for c in r.client_cpu)} "
        f"| {'/'.join(_fmt(c, '.1f') for c in r.client_lag_p99_ms)} "
        f"| {_fmt(r.connect_seconds, '.0f')} | {_fmt(r.other_cpu, '.0f')} | {r.error} |"
    )


def render(
    results: Sequence[ClusterRun],
    opts: Options,
    runs: int,
    command: str,
    load_before: str,
    fd_limit: tuple[int, int],
) -> str:
    facts = machine_facts(load_before)
    pop_tabs = len(POP_AGENTS) * opts.pop_tabs
    lines = [
        f"Generated by `{command}` on {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC. "
        "Not a timed test: figures vary with the machine.",
        "",
        "Machine: "
        + "; ".join(f"{k} {v}" for k, v in facts.items())
        + f"; open files limit {fd_limit[0]} (hard {fd_limit[1]}).",
        "",
        f"Load: `PbxSimulator.generate_load({opts.rate:g}, duration={opts.duration:g}, "
        "speed=1.0)` — the four recorded call scenarios in turn, fresh ids and callers, "
        "simulator in the benchmark process on 127.0.0.1. PostgreSQL, fresh database per run "
        f"and setup ({runs} runs, setups interleaved). **cluster**: two `desk serve` "
        "processes (production mode) sharing the database and a private `redis-server` "
        "(socket.io's Redis manager); the first holds the PBX link lease, the second stands "
        "by, so every pop is emitted by the holder and reaches the standby's clients through "
        "Redis. **single**: one `desk serve`, no Redis, the same clients. "
        f"Clients: {opts.clients:,} socket.io `AsyncClient`s (websocket) in {opts.workers} "
        f"processes, half on each desk process (in the cluster). The recorded calls ring "
        f"only PJSIP/1001..1004, so alice, bob, carol and dave have {opts.pop_tabs} tabs "
        f"each, half on each process: {pop_tabs} tabs that get pops ({pop_tabs // 2} per "
        f"process). The other {opts.clients - pop_tabs:,} clients are "
        f"{opts.clients - pop_tabs:,} more signed-in agents, one tab each, connected and "
        f"idle: {opts.clients - pop_tabs + len(POP_AGENTS):,} agents in all.",
        "",
        "Latency = `time.time()` in the tab's `screen_pop` handler minus `time.time()` when "
        "the simulator wrote the frame that caused the pop (expected pops from replaying the "
        "written frames through `normalise` → `CallTracker` → `PopDesk`, as in the "
        "screen-pop benchmark). Pops/s = pops received by tabs over the load window. Missed = "
        "expected (call, agent, phase) a tab never got; duplicate = got twice.",
        "",
        "| setup | tabs of | clients | pop tabs | p50 ms | p90 ms | p99 ms | max ms "
        "| pops/s (to tabs) | missed | duplicates | unexpected | quiet runs "
        "| p50 / p99 ms, quiet runs |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: |",
    ]
    for setup, part, label in ROWS:
        mine = [r for r in results if r.setup == setup and not r.error]
        if not mine:
            continue
        quiet = [r for r in mine if r.other_cpu <= CONTENDED]
        clients, pop_tabs = _clients_of(part, opts)
        lines.append(
            f"| {setup} | {label} | {clients:,} | {pop_tabs} | {_cell(mine, part, 50)} "
            f"| {_cell(mine, part, 90)} | **{_cell(mine, part, 99)}** "
            f"| {_cell(mine, part, 100)} "
            f"| {_fmt(_median([r.pops_per_second(part) for r in mine]), ',.0f')} "
            f"| {sum(r.part(part).missed for r in mine)} "
            f"| {sum(r.part(part).duplicates for r in mine)} "
            f"| {sum(r.part(part).unexpected for r in mine)} | {len(quiet)} of {len(mine)} "
            f"| {_cell(quiet, part, 50)} / {_cell(quiet, part, 99)} |"
        )
    failed = [r for r in results if r.error]
    lines += [
        "",
        "Latency figures and pops/s are the median over runs of each run's figure; missed, "
        "duplicates and unexpected are totals over all runs"
        + (f"; {len(failed)} failed run(s) left out (see the last table)" if failed else "")
        + f". Quiet runs: others' CPU ≤ {CONTENDED:g}% of a core during the load.",
        "",
        "Where the time goes (median over runs of each run's p50 / p99, ms): transit = write "
        "→ `event_at` (the holder's normaliser), server = `event_at` → `sent_at` (pop claimed "
        "in the transaction), delivery = `sent_at` → tab (commit, publish, socket.io emit, "
        "for the standby's tabs the Redis hop, client).",
        "",
        "| setup | tabs of | transit p50 / p99 | server p50 / p99 | delivery p50 / p99 |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for setup, part, label in ROWS:
        mine = [r for r in results if r.setup == setup and not r.error]
        if mine:
            cells = [
                f"{_cell(mine, part, 50, attr)} / {_cell(mine, part, 99, attr)}"
                for attr in ("transit_ms", "server_ms", "deliver_ms")
            ]
            lines.append(f"| {setup} | {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Every run. Delivered = tabs' pops, holder/standby in the cluster; CPU % is of one "
        "core over the load window (desk serve: holder/standby); RSS = resident memory of "
        "each desk serve with every client connected; client lag = p99 of how late a 5 ms "
        "sleep wakes in each client process; connect = seconds until every client was "
        "connected; others' CPU = the machine's CPU minus ours (other people's work on a "
        "shared machine; before each run the script waits up to `--quiet-wait` s for quiet):",
        "",
        "| setup | run | calls | expected pops | delivered | of | p50 ms | p99 ms | max ms "
        "| missed | dup | unexpected | desk serve CPU % | desk serve RSS MB "
        "| PostgreSQL CPU % | Redis CPU % | Redis PUBLISH/s | client CPU % | client lag ms "
        "| connect s "
        "| others' CPU % | error |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    lines += [_run_row(r) for r in results]
    return "\n".join(lines) + "\n"


def write_docs(section: str) -> None:
    write_section(key="cluster", title="Two-process cluster", section=section)


# -- main -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs of each setup")
    parser.add_argument("--rate", type=float, default=50.0, help="new calls per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of new calls")
    parser.add_argument("--clients", type=int, default=2000, help="socket.io clients")
    parser.add_argument(
        "--pop-tabs", type=int, default=4, help="tabs of each agent the calls ring, even"
    )
    parser.add_argument("--workers", type=int, default=2, help="client processes, even")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="dropped and recreated per run")
    parser.add_argument("--redis-url", default="", help="default: a private redis-server")
    parser.add_argument(
        "--quiet-wait", type=float, default=180.0, help="max seconds to wait for an idle machine"
    )
    parser.add_argument("--write-docs", action="store_true", help=f"update {DOC.name}")
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 20 or not 0 < args.rate <= 500 or not 1 <= args.duration <= 600:
        parser.error("--runs must be 1..20, --rate 0..500, --duration 1..600")
    if not 2 <= args.workers <= 16 or args.workers % 2:
        parser.error("--workers must be even, 2..16: half the client processes per desk process")
    if not 2 <= args.pop_tabs <= 100 or args.pop_tabs % 2:
        parser.error("--pop-tabs must be even, 2..100: half of them on each process")
    if args.clients % 2 or not len(POP_AGENTS) * args.pop_tabs < args.clients <= 10_000:
        parser.error("--clients must be even, above 4 x --pop-tabs, at most 10000")
    if not 0 <= args.quiet_wait <= QUIET_WAIT_LIMIT:
        parser.error(f"--quiet-wait must be 0..{QUIET_WAIT_LIMIT:g}")
    if make_url(args.pg_url).get_backend_name() != "postgresql":
        parser.error("--pg-url must be a PostgreSQL URL: the link lease needs PostgreSQL")
    fd_limit = raise_fd_limit(args.clients)
    if fd_limit[0] != resource.RLIM_INFINITY and fd_limit[0] < args.clients + FD_SPARE:
        print(f"open files limit {fd_limit[0]}: the single server may refuse clients", flush=True)
    opts = Options(
        rate=args.rate,
        duration=args.duration,
        clients=args.clients,
        pop_tabs=args.pop_tabs,
        workers=args.workers,
        pg_url=args.pg_url,
    )
    results: list[ClusterRun] = []
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        workdir = Path(tmp)
        private = None if args.redis_url else PrivateRedis(workdir)
        try:
            for run in range(1, args.runs + 1):
                for setup in SETUPS:
                    results.append(_one(setup, run, private or args.redis_url, opts, workdir, args))
        finally:
            if private is not None:
                private.stop()
    command = "python -m bench.cluster " + " ".join(
        [
            f"--runs {args.runs}",
            f"--rate {args.rate:g}",
            f"--duration {args.duration:g}",
            f"--clients {args.clients}",
            f"--pop-tabs {args.pop_tabs}",
            f"--workers {args.workers}",
            f"--quiet-wait {args.quiet_wait:g}",
        ]
        + (["--write-docs"] if args.write_docs else [])
    )
    section = render(results, opts, args.runs, command, load_before, fd_limit)
    print()
    print(section)
    if args.write_docs:
        write_docs(section)
        print(f"wrote {DOC}")
    return 0 if all(not r.error for r in results) else 1


def _one(
    setup: str,
    run: int,
    broker: PrivateRedis | str,
    opts: Options,
    workdir: Path,
    args: argparse.Namespace,
) -> ClusterRun:
    started = time.monotonic()
    try:
        users = opts.clients - (opts.pop_tabs - 1) * len(POP_AGENTS)
        url = fresh_database("postgres", workdir, run, opts.pg_url, users)
        result = asyncio.run(one_run(setup, run, url, broker, opts, workdir, args.quiet_wait))
    except Exception as exc:
        traceback.print_exc()
        result = ClusterRun(setup=setup, run=run, error=f"{type(exc).__name__}: {exc}")
        for log_path in sorted(workdir.glob(f"server-{setup}-{run}-*.log")):
            tail = log_path.read_text(errors="replace")[-2000:]
            print(f"{log_path.name} tail:\n{tail}", file=sys.stderr)
    every = result.part("all")
    split = ", ".join(
        f"{name} p50 {_fmt(p.pct(50))} p99 {_fmt(p.pct(99))}"
        for name, p in result.parts.items()
        if name != "all"
    )
    print(
        f"{setup:<8} run {run}/{args.runs}: {result.calls} calls, "
        f"{every.received:,} pops received of {every.expected_deliveries:,} "
        f"({_fmt(result.pops_per_second('all'), ',.0f')}/s), p50 {_fmt(every.pct(50))} "
        f"p99 {_fmt(every.pct(99))} max {_fmt(every.pct(100))} ms"
        + (f" [{split}]" if split else "")
        + f", missed {every.missed}, dup {every.duplicates}, unexpected {every.unexpected}; "
        f"CPU servers {'/'.join(f'{c:.0f}' for c in result.server_cpu)}% "
        f"db {result.db_cpu:.0f}% redis {_fmt(result.redis_cpu, '.0f')}% "
        f"sim {result.sim_cpu:.0f}% clients {'/'.join(f'{c:.0f}' for c in result.client_cpu)}% "
        f"others {result.other_cpu:.0f}%; connect {result.connect_seconds:.0f}s "
        f"({time.monotonic() - started:.0f}s)" + (f" ERROR {result.error}" if result.error else ""),
        flush=True,
    )
    return result


if __name__ == "__main__":
    sys.exit(main())
