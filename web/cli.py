"""The ``desk`` command: the domain's commands plus those that run the service.

``serve`` and ``demo`` live here rather than in ``desk.cli`` because they start
the web app, the PBX link and the simulator, which ``desk`` may not import.
"""

from __future__ import annotations

import asyncio
import gc
import os
import secrets
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import click
from aiohttp import web
from pydantic import SecretStr

from cti.simulator import PbxSimulator
from desk.cli import cli
from desk.clock import SystemClock
from desk.db import create_engine, session_factory
from desk.demo_data import seed_demo
from desk.events import EventBus
from desk.log_context import set_up_logging
from desk.migrate import upgrade
from desk.settings import Settings, SettingsError, load_settings
from kb.commands import kb_group
from kb.demo_articles import seed_demo_articles
from kb.options import KbOptions
from web.app import StartupError, create_app

DEMO_DATABASE = "sqlite+aiosqlite:///var/demo.db"
DEMO_CALLS_PER_SECOND = 0.1
# Python collects young objects every 700 allocations.  Routing a ticket or building
# the SLA board among 2,000 agents makes ~10,000 short-lived objects at once; at 700
# they outlived several young collections into the old generation, and each time a
# quarter of it was new a full collection walked every connected browser's objects
# (~170 each): 250-400 ms with 2,000 browsers, every 1-2 s under load, on the pops'
# event loop (docs/benchmarks.md, cluster).  At 10,000 such work is gone before the
# collector looks; a young collection then takes a few milliseconds.
YOUNG_COLLECTION_THRESHOLD = 10_000
CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def settings_or_exit(overrides: dict[str, Any] | None = None) -> Settings:
    try:
        return load_settings(overrides=overrides)
    except SettingsError as exc:
        click.echo(f"calldesk: {exc}", err=True)
        sys.exit(2)


def configure_logging(settings: Settings) -> None:
    set_up_logging(settings.log_level, settings.log_format, stream=sys.stderr)


def run_service(settings: Settings, *, before: list[CleanupContext] | None = None) -> None:
    configure_logging(settings)
    app = create_app(settings)
    # Parts that must be up before the service's own (the demo's PBX simulator).
    for context in reversed(before or []):
        app.cleanup_ctx.insert(0, context)
    app.on_startup.append(tune_the_collector)
    try:
        web.run_app(
            app,
            loop=_event_loop(),
            host=settings.host,
            port=settings.port,
            print=lambda line: click.echo(line.replace("(Press CTRL+C to quit)", "").strip()),
            access_log=None,
            # SIGTERM: stop listening, let requests in flight finish for this long,
            # then run the cleanup (the AMI link logs off; docs/deploy.md).
            shutdown_timeout=settings.shutdown_timeout,
        )
    except StartupError as exc:
        click.echo(f"calldesk: {exc}", err=True)
        sys.exit(2)


def _event_loop() -> asyncio.AbstractEventLoop:
    # uvloop answers each socket and database round trip sooner under load, which
    # is what a pop's latency is made of (docs/decisions/0004-runtime.md).
    try:
        import uvloop
    except ImportError:  # not on this platform: the standard loop works, a bit slower
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def tune_the_collector(_app: web.Application) -> None:
    """Once the service is up: freeze the start-up heap, collect young objects less often."""
    # Everything built at start-up (modules, mappers, schemas, settings) lives as
    # long as the process; a full collection scanning it stalls the loop for tens
    # of milliseconds.  Frozen, collections only look at what came later.
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)


@cli.command()
def serve() -> None:
    """Run the service with the configured settings."""
    run_service(settings_or_exit())


async def _seed(settings: Settings) -> Any:
    engine = create_engine(settings.database_url)
    try:
        summary = await seed_demo(
            sessions=session_factory(engine),
            bus=EventBus(),
            region=settings.phone_region,
            now=SystemClock().now(),
        )
        # desk may not import kb, so the demo's articles are seeded here.
        await seed_demo_articles(
            session_factory(engine), now=SystemClock().now(), options=KbOptions()
        )
        return summary
    finally:
        await engine.dispose()


@cli.command()
@click.option("--port", type=int, default=None, help="Port to serve on (default 8080).")
def demo(port: int | None) -> None:
    """Set up the demo database (SQLite), seed demo data and serve it."""
    overrides: dict[str, Any] = {"mode": "demo"}
    if port is not None:
        overrides["port"] = port
    if "DESK_DATABASE_URL" not in os.environ:
        overrides["database_url"] = DEMO_DATABASE
    settings = settings_or_exit(overrides)
    click.echo(f"calldesk demo: database {settings.database_url}")
    Path("var").mkdir(exist_ok=True)
    upgrade(settings.database_url)
    summary = asyncio.run(_seed(settings))
    click.echo(f"calldesk demo: {summary}")
    simulated = not settings.ami_enabled
    if simulated:
        # No PBX configured: the built-in simulator plays the recorded calls.
        settings = settings.model_copy(
            update={"ami_host": "127.0.0.1", "ami_port": _free_port(), "ami_username": "desk"}
        )
        settings = settings.model_copy(update={"ami_secret": SecretStr(secrets.token_urlsafe(16))})
    click.echo(
        f"calldesk demo: open http://{settings.host}:{settings.port}/ "
        "(users alice, bob, carol, dave, sam, admin; password demo1234)"
    )
    run_service(settings, before=[simulator_context(settings)] if simulated else [])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def simulator_context(settings: Settings) -> CleanupContext:
    """Run the PBX simulator on the AMI port, placing a recorded call every ten seconds."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        simulator = PbxSimulator(
            host=settings.ami_host,
            port=settings.ami_port,
            username=settings.ami_username,
            secret=settings.ami_secret.get_secret_value(),
        )
        await simulator.start()
        calls = asyncio.get_running_loop().create_task(
            simulator.generate_load(DEMO_CALLS_PER_SECOND, duration=365 * 86400, new_callers=False),
            name="demo-calls",
        )
        yield
        calls.cancel()
        await asyncio.gather(calls, return_exceptions=True)
        await simulator.stop()

    return context


cli.add_command(kb_group)


def main() -> None:
    cli()
