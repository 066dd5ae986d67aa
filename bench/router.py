"""Router decision latency: one ``route`` call over 1,000 agents.

Run::

    .venv/bin/python -m bench.router [--agents 1000] [--decisions 2000] [--runs 5] [--seed 7]

Workload (seeded, so runs are comparable): ``--agents`` agents in 8 teams, each
with 2-6 of 12 skills at levels 1-10; phone states drawn so that about 60 % are
ready, the rest ringing / on a call / in wrap-up / paused / logged out / unknown,
and 10 % offline on the web; weighted loads 0-12 against a default capacity of
10 (a tenth of the agents with their own capacity of 6-14); three quarters
assigned before, at distinct times.  Rules: 20 categories needing 1-2 skills at
levels 1-6.  Tickets: random category and priority, a fifth of them returned
(with a current assignee).

Each decision is timed alone around ``route`` (agents and tickets are built
beforehand; the garbage collector is off while timing), twice over: wall time
(``time.perf_counter_ns``) and the thread's CPU time (``time.thread_time_ns``).
On a busy machine the wall-time tail is mostly the scheduler preempting the
process; the CPU-time tail is the decision's own cost.  Per run: p50 / p99 / max
in µs and how many decisions assigned; the summary is the median of the runs.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bench.report import load_average, write_section
from desk.models import TicketPriority
from routing.router import (
    AgentSnapshot,
    Assignment,
    CategoryRule,
    PhoneState,
    Presence,
    RoutingRules,
    TicketToRoute,
    route,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SKILLS = [f"skill-{n}" for n in range(12)]
PHONES = [
    (PhoneState.READY, 60),
    (PhoneState.RINGING, 4),
    (PhoneState.ON_CALL, 15),
    (PhoneState.WRAP_UP, 5),
    (PhoneState.PAUSED, 6),
    (PhoneState.LOGGED_OUT, 5),
    (PhoneState.UNKNOWN, 5),
]


def build_rules(rng: random.Random) -> RoutingRules:
    categories = {
        f"category-{n}": CategoryRule(
            skills={skill: rng.randint(1, 6) for skill in rng.sample(SKILLS, rng.randint(1, 2))},
            team_id=rng.randint(1, 8),
        )
        for n in range(20)
    }
    return RoutingRules(categories=categories, default_capacity=10.0, default_team=1)


def build_agents(count: int, rng: random.Random) -> list[AgentSnapshot]:
    states, weights = zip(*PHONES, strict=True)
    agents = []
    for agent_id in range(1, count + 1):
        assigned = rng.random() < 0.75
        agents.append(
            AgentSnapshot(
                agent_id=agent_id,
                team_id=rng.randint(1, 8),
                skills={s: rng.randint(1, 10) for s in rng.sample(SKILLS, rng.randint(2, 6))},
                presence=Presence.OFFLINE if rng.random() < 0.1 else Presence.ONLINE,
                phone=rng.choices(states, weights)[0],
                open_load=rng.choice([0.0, 0.5, 1.0, 2.0, 3.5, 5.0, 7.0, 9.0, 10.0, 12.0]),
                last_assigned_at=NOW - timedelta(seconds=agent_id * 7) if assigned else None,
            )
        )
    return agents


def build_tickets(
    count: int, agents: int, rules: RoutingRules, rng: random.Random
) -> list[TicketToRoute]:
    categories = list(rules.categories)
    return [
        TicketToRoute(
            ticket_id=n,
            category=rng.choice(categories),
            priority=rng.choice(list(TicketPriority)),
            current_assignee=rng.randint(1, agents) if rng.random() < 0.2 else None,
        )
        for n in range(count)
    ]


def one_run(
    tickets: Sequence[TicketToRoute], agents: Sequence[AgentSnapshot], rules: RoutingRules
) -> tuple[list[float], list[float], int]:
    """Wall and CPU µs per decision, and how many assigned."""
    wall: list[float] = []
    cpu: list[float] = []
    assigned = 0
    wall_clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    gc.disable()
    try:
        for ticket in tickets:
            cpu_started, wall_started = cpu_clock(), wall_clock()
            decision = route(ticket, agents, rules, now=NOW)
            wall_ended, cpu_ended = wall_clock(), cpu_clock()
            wall.append((wall_ended - wall_started) / 1000)
            cpu.append((cpu_ended - cpu_started) / 1000)
            assigned += isinstance(decision, Assignment)
    finally:
        gc.enable()
    return wall, cpu, assigned


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    rules = build_rules(rng)
    agents = build_agents(args.agents, rng)
    tickets = build_tickets(args.decisions, args.agents, rules, rng)
    one_run(tickets[:200], agents, rules)  # warm-up

    figures: dict[str, list[tuple[float, float]]] = {"wall": [], "cpu": []}
    for run in range(1, args.runs + 1):
        wall, cpu, assigned = one_run(tickets, agents, rules)
        parts = []
        for name, timings in (("wall", wall), ("cpu", cpu)):
            p50, p99 = percentile(timings, 0.50), percentile(timings, 0.99)
            figures[name].append((p50, p99))
            parts.append(f"{name} p50 {p50:.0f} / p99 {p99:.0f} / max {max(timings):.0f} µs")
        print(
            f"run {run}: {len(wall)} decisions over {len(agents)} agents, "
            f"{assigned} assigned; " + "; ".join(parts)
        )
    lines = []
    for name, runs in figures.items():
        p50 = statistics.median(p50 for p50, _ in runs)
        p99 = statistics.median(p99 for _, p99 in runs)
        line = (
            f"median of {args.runs} runs, {name} time: p50 {p50:.0f} µs, p99 {p99:.0f} µs "
            f"(target p99 ≤ 1000 µs: {'met' if p99 <= 1000 else 'NOT met'})"
        )
        print(line)
        lines.append(f"- {line}")
    if args.write_docs:
        load = load_average()
        section = (
            f"`python -m bench.router --agents {args.agents} --decisions {args.decisions} "
            f"--runs {args.runs}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; nproc "
            f"{os.cpu_count()}, load average {load}. One `route()` decision over "
            f"{args.agents} agents with random skills, loads, phone states and presence.\n\n"
            + "\n".join(lines)
            + "\n"
        )
        write_section(key="router", title="Ticket router", section=section)


if __name__ == "__main__":
    main()
