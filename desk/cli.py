"""The ``desk`` command line: schema, users and teams, customer import, demo data.

The console script lives in the web layer, which adds ``serve`` and ``demo`` to
``cli``; the commands here need only the database named by the settings.

Exit codes: 0 success; 1 partly done (some import rows refused) or aborted at a
prompt; 2 a fatal error, printed as the single line ``calldesk: <what>`` on
standard error, never a traceback.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

import click
import phonenumbers
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from desk import migrate
from desk.clock import SystemClock
from desk.customer_import import CsvTable, ImportFileError, ImportReport, import_customers, read_csv
from desk.db import create_engine, session_factory
from desk.demo_data import DEMO_PASSWORD, DemoSummary, seed_demo
from desk.errors import DeskError
from desk.events import EventBus
from desk.models import Role, Team, User
from desk.settings import Settings, SettingsError, load_settings
from desk.users import AgentIn, SkillIn, TeamDraft, UserDraft, create_team, create_user

T = TypeVar("T")


class FatalError(click.ClickException):
    """Stops the command with exit code 2 and one ``calldesk: ...`` line on stderr."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"calldesk: {self.format_message()}", err=True)


def cli_settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise FatalError(str(exc)) from None


def _first_line(exc: BaseException) -> str:
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(cause).strip() or type(cause).__name__
    return text.splitlines()[0]


def _fatal(exc: BaseException) -> FatalError:
    if isinstance(exc, DeskError):
        details = "; ".join(f"{name}: {message}" for name, message in exc.fields.items())
        return FatalError(f"{exc.message} ({details})" if details else exc.message)
    return FatalError(f"database error: {_first_line(exc)}")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` with domain and database errors turned into one-line fatal errors."""
    try:
        return asyncio.run(coro)
    except (DeskError, SQLAlchemyError, OSError) as exc:
        raise _fatal(exc) from None


def _shown_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _heads(url: str) -> tuple[str, ...]:
    return tuple(ScriptDirectory.from_config(migrate.alembic_config(url)).get_heads())


async def _current(engine: AsyncEngine) -> tuple[str, ...]:
    def read(connection: Connection) -> tuple[str, ...]:
        return tuple(MigrationContext.configure(connection).get_current_heads())

    async with engine.connect() as connection:
        return await connection.run_sync(read)


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a database whose schema is current, or a fatal error saying what to run."""
    url = settings.database_url
    path = _sqlite_file(url)
    # Connecting would create an empty file and hide the real mistake.
    if path is not None and not path.exists():
        raise FatalError(f"database file {path} does not exist; run 'desk db upgrade' first")
    engine = create_engine(url)
    try:
        current, heads = await _current(engine), _heads(url)
        if set(current) != set(heads):
            raise FatalError(
                f"database schema is at {', '.join(current) or 'no revision'} but this version "
                f"needs {', '.join(heads)}; run 'desk db upgrade'"
            )
        yield session_factory(engine)
    finally:
        await engine.dispose()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """calldesk: call-center service desk."""


def main() -> None:
    cli(prog_name="desk")


# --- desk db ---------------------------------------------------------------


@cli.group()
def db() -> None:
    """Create, migrate and inspect the database schema."""


def _migrate(action: Callable[[str, str], None], url: str, revision: str) -> None:
    try:
        action(url, revision)
    except CommandError as exc:  # e.g. an unknown revision; Alembic's message says which
        raise FatalError(str(exc)) from None
    except (SQLAlchemyError, OSError) as exc:
        raise _fatal(exc) from None


def _echo_current(url: str) -> None:
    async def current() -> tuple[str, ...]:
        engine = create_engine(url)
        try:
            return await _current(engine)
        finally:
            await engine.dispose()

    revisions, heads = run(current()), _heads(url)
    if not revisions:
        click.echo(f"{_shown_url(url)}: no schema yet (head is {', '.join(heads)})")
    for revision in revisions:
        state = "head" if revision in heads else f"head is {', '.join(heads)}"
        click.echo(f"{_shown_url(url)}: at revision {revision} ({state})")


@db.command()
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Upgrade the schema to REVISION (default: head)."""
    url = cli_settings().database_url
    _migrate(migrate.upgrade, url, revision)
    _echo_current(url)


@db.command(context_settings={"ignore_unknown_options": True})
@click.argument("revision", default="-1")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def downgrade(revision: str, yes: bool) -> None:
    """Downgrade the schema to REVISION (default: -1, one step back)."""
    url = cli_settings().database_url
    if not yes:
        click.confirm(
            f"Downgrade {_shown_url(url)} to {revision}? Tables of undone migrations are dropped",
            abort=True,
        )
    _migrate(migrate.downgrade, url, revision)
    _echo_current(url)


@db.command()
def current() -> None:
    """Show the schema revision of the database."""
    url = cli_settings().database_url
    path = _sqlite_file(url)
    if path is not None and not path.exists():
        click.echo(f"{_shown_url(url)}: no database file yet (run 'desk db upgrade')")
        return
    _echo_current(url)


# --- desk user / desk team -------------------------------------------------


@cli.group()
def user() -> None:
    """Manage users."""


def _invalid(exc: ValidationError) -> FatalError:
    # Never echo the input: it may be the password.
    problems = [
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
    ]
    return FatalError("invalid user: " + "; ".join(problems))


def _read_password(password: str | None, from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise FatalError("--password-stdin given but standard input has no password")
        return line
    if password is not None:
        return password
    entered: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return entered


async def _add_user(settings: Settings, draft: UserDraft, team_name: str | None) -> str:
    async with _database(settings) as sessions, sessions() as session:
        if team_name is not None and draft.agent is not None:
            team = await session.scalar(select(Team).where(Team.name == team_name))
            if team is None:
                names = ", ".join((await session.scalars(select(Team.name))).all()) or "none"
                raise FatalError(
                    f"no team named {team_name!r} (teams: {names}); create it with 'desk team add'"
                )
            agent = draft.agent.model_copy(update={"team_id": team.id})
            draft = draft.model_copy(update={"agent": agent})
        created = await create_user(session, draft, now=SystemClock().now())
        await session.commit()
        phone = f", {created.agent.interface}" if created.agent is not None else ""
        team_part = f", team {team_name}" if team_name else ""
        return f"created {draft.role.value} {created.username} (id {created.id}{phone}{team_part})"


@user.command("add")
@click.argument("username")
@click.option(
    "--role", type=click.Choice([r.value for r in Role]), default="agent", show_default=True
)
@click.option("--name", "display_name", help="Display name (default: the username).")
@click.option("--email", help="E-mail address.")
@click.option("--language", default="en", show_default=True, help="UI language, e.g. de.")
@click.option("--extension", help="PBX extension the user answers, e.g. 1001.")
@click.option("--interface", help="Asterisk interface (default: PJSIP/<extension>).")
@click.option("--team", "team_name", help="Name of an existing team.")
@click.option("--skill", "skills", multiple=True, help="Queue skill; repeat for several.")
@click.option(
    "--password", help="Visible in the process list; prefer the prompt or --password-stdin."
)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def add_user(
    username: str,
    role: str,
    display_name: str | None,
    email: str | None,
    language: str,
    extension: str | None,
    interface: str | None,
    team_name: str | None,
    skills: tuple[str, ...],
    password: str | None,
    password_stdin: bool,
) -> None:
    """Create user USERNAME; an --extension makes them reachable on the PBX."""
    if extension is None and (interface or team_name or skills):
        raise click.UsageError("--interface, --team and --skill need --extension")
    if password is not None and password_stdin:
        raise click.UsageError("give --password or --password-stdin, not both")
    settings = cli_settings()
    secret = _read_password(password, password_stdin)
    try:
        agent = None
        if extension is not None:
            agent = AgentIn(
                extension=extension,
                interface=interface,
                skills=[SkillIn(name=skill) for skill in skills],
            )
        draft = UserDraft(
            username=username,
            display_name=display_name or username,
            password=secret,
            role=Role(role),
            email=email,
            language=language,
            agent=agent,
        )
    except ValidationError as exc:
        raise _invalid(exc) from None
    if agent is None and role == Role.AGENT.value:
        click.echo("note: without --extension no call can reach this agent", err=True)
    click.echo(run(_add_user(settings, draft, team_name)))


@cli.group()
def team() -> None:
    """Manage teams."""


async def _add_team(settings: Settings, name: str, lead: str | None) -> str:
    async with _database(settings) as sessions, sessions() as session:
        lead_id = None
        if lead is not None:
            lead_id = await session.scalar(select(User.id).where(User.username == lead))
            if lead_id is None:
                raise FatalError(f"no user named {lead!r}")
        created = await create_team(
            session, TeamDraft(name=name, lead_user_id=lead_id), now=SystemClock().now()
        )
        await session.commit()
        return f"created team {created.name} (id {created.id})"


@team.command("add")
@click.argument("name")
@click.option("--lead", help="Username of the team lead.")
def add_team(name: str, lead: str | None) -> None:
    """Create team NAME."""
    settings = cli_settings()
    try:
        TeamDraft(name=name)
    except ValidationError:
        raise FatalError("team name must be 1 to 200 characters") from None
    click.echo(run(_add_team(settings, name, lead)))


# --- desk import -----------------------------------------------------------


@cli.group("import")
def import_group() -> None:
    """Import records from files."""


async def _import(settings: Settings, table: CsvTable, region: str) -> ImportReport:
    done = 0
    async with _database(settings) as sessions:
        # stderr, so that stdout carries only the report.
        with click.progressbar(length=len(table.rows), label="Importing", file=sys.stderr) as bar:

            def progress(rows: int) -> None:
                nonlocal done
                bar.update(rows - done)
                done = rows

            try:
                return await import_customers(
                    table,
                    sessions=sessions,
                    bus=EventBus(),
                    region=region,
                    now=SystemClock().now(),
                    on_progress=progress,
                )
            except SQLAlchemyError as exc:
                raise FatalError(
                    f"import stopped after {done} of {len(table.rows)} rows "
                    f"(those are saved): {_first_line(exc)}"
                ) from None


def _print_report(path: Path, report: ImportReport) -> None:
    click.echo(
        f"{path}: {report.rows_read} rows read, {report.created} created, "
        f"{len(report.duplicates)} duplicates skipped, {report.failed} failed"
    )
    for warning in report.warnings:
        click.echo(f"warning: {warning}")
    for issue in report.errors:
        click.echo(str(issue))
    for issue in report.duplicates:
        click.echo(f"line {issue.line}: skipped, {issue.message}")


@import_group.command("customers")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--region", help="Region of national numbers (default: the phone_region setting).")
@click.pass_context
def import_customers_command(ctx: click.Context, file: Path, region: str | None) -> None:
    """Import customers from a CSV FILE (columns: see desk.customer_import)."""
    settings = cli_settings()
    region = (region or settings.phone_region).upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise click.BadParameter(f"{region!r} is not a region code", param_hint="--region")
    try:
        table = read_csv(file)
    except ImportFileError as exc:
        raise FatalError(f"{file}: {exc}") from None
    report = run(_import(settings, table, region))
    _print_report(file, report)
    ctx.exit(0 if report.ok else 1)


# --- desk seed-demo --------------------------------------------------------


async def _seed(settings: Settings) -> DemoSummary:
    async with _database(settings) as sessions:
        return await seed_demo(
            sessions=sessions, bus=EventBus(), region=settings.phone_region, now=SystemClock().now()
        )


@cli.command("seed-demo")
def seed_demo_command() -> None:
    """Add the demo agents, supervisor, admin and customers (demo mode only)."""
    settings = cli_settings()
    if settings.mode == "production":
        raise FatalError(
            f"seed-demo creates accounts with the published password {DEMO_PASSWORD!r}; "
            "run it only with DESK_MODE=demo"
        )
    summary = run(_seed(settings))
    click.echo(
        f"demo data: {summary.teams_created} teams, {summary.users_created} users, "
        f"{summary.customers_created} customers created; users {', '.join(summary.usernames)} "
        f"sign in with password {DEMO_PASSWORD}"
    )
