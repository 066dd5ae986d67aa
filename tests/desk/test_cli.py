"""The ``desk`` command line, driven through click's CliRunner.

Commands call ``asyncio.run`` themselves, so these tests are synchronous and
check the database with a short ``asyncio.run`` of their own.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from desk.auth import authenticate
from desk.cli import cli
from desk.db import create_engine, session_factory
from desk.models import Customer, User

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "cli-test-secret-0123456789abcdefghijklmn"
T = TypeVar("T")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Settings from the environment only: no repository config, no stray DESK_* variables."""
    import os

    for name in [n for n in os.environ if n.startswith("DESK_")]:
        monkeypatch.delenv(name)
    config = tmp_path / "config"
    config.mkdir()
    return {
        "DESK_CONFIG_DIR": str(config),
        "DESK_SECRET_KEY": SECRET,
        "DESK_DATABASE_URL": f"sqlite:///{tmp_path / 'desk.db'}",
    }


@pytest.fixture
def migrated_env(env: dict[str, str], database: Any) -> dict[str, str]:
    """``env`` pointing at the migrated, emptied database of the backend under test."""
    return {**env, "DESK_DATABASE_URL": database.url}


def desk(args: list[str], env: dict[str, str], stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, args, env=env, input=stdin, prog_name="desk")


def query(url: str, action: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def go() -> T:
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as session:
                return await action(session)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_a_bad_setting_exits_2_with_one_line_naming_the_variable(env: dict[str, str]) -> None:
    result = desk(["db", "current"], {**env, "DESK_PORT": "abc"})

    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("calldesk: environment variable DESK_PORT:")
    assert "Traceback" not in result.output


def test_db_upgrade_creates_the_schema_in_an_empty_sqlite_file(
    env: dict[str, str], tmp_path: Path
) -> None:
    result = desk(["db", "upgrade"], env)

    assert result.exit_code == 0, result.output
    assert "(head)" in result.stdout
    with sqlite3.connect(tmp_path / "desk.db") as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"customers", "users", "agents", "alembic_version"} <= tables


def test_commands_on_a_missing_database_file_say_to_run_db_upgrade(
    env: dict[str, str], tmp_path: Path
) -> None:
    result = desk(["seed-demo"], {**env, "DESK_MODE": "demo"})

    assert result.exit_code == 2
    assert "run 'desk db upgrade'" in result.stderr
    assert not (tmp_path / "desk.db").exists()


def test_user_add_creates_an_agent_who_can_sign_in(migrated_env: dict[str, str]) -> None:
    result = desk(
        ["user", "add", "alice", "--name", "Alice", "--extension", "1001", "--password-stdin"],
        migrated_env,
        stdin="s3cret-pass\n",
    )

    assert result.exit_code == 0, result.output

    async def sign_in(session: AsyncSession) -> tuple[str, str | None]:
        user = await authenticate(session, "alice", "s3cret-pass")
        return user.display_name, user.agent.interface if user.agent else None

    assert query(migrated_env["DESK_DATABASE_URL"], sign_in) == ("Alice", "PJSIP/1001")


def test_user_add_prompts_for_the_password_twice(migrated_env: dict[str, str]) -> None:
    result = desk(
        ["user", "add", "sam", "--role", "supervisor"], migrated_env, stdin="pw-12345\npw-12345\n"
    )

    assert result.exit_code == 0, result.output

    async def role(session: AsyncSession) -> str:
        return (await authenticate(session, "sam", "pw-12345")).role

    assert query(migrated_env["DESK_DATABASE_URL"], role) == "supervisor"


def test_user_add_with_a_taken_extension_exits_2_with_the_reason(
    migrated_env: dict[str, str],
) -> None:
    desk(["user", "add", "alice", "--extension", "1001", "--password", "password1"], migrated_env)

    result = desk(
        ["user", "add", "bob", "--extension", "1001", "--password", "password1"], migrated_env
    )

    assert result.exit_code == 2
    assert "1001 already belongs to another agent" in result.stderr

    async def users(session: AsyncSession) -> list[str]:
        return list((await session.scalars(select(User.username))).all())

    assert query(migrated_env["DESK_DATABASE_URL"], users) == ["alice"]


def test_import_customers_prints_a_report_and_exits_1_when_rows_failed(
    migrated_env: dict[str, str],
) -> None:
    result = desk(["import", "customers", str(FIXTURES / "customers_mixed.csv")], migrated_env)

    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert "8 rows read, 4 created, 0 duplicates skipped, 4 failed" in lines[0]
    assert [line.split(":")[0] for line in lines[1:]] == ["line 5", "line 6", "line 7", "line 8"]
    assert "'12ab' is not a valid phone number" in lines[1]


def test_import_customers_exits_0_when_every_row_is_good(
    migrated_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "good.csv"
    path.write_text("name;phones\nAnna Alt;030 1111111\n", encoding="utf-8")

    result = desk(["import", "customers", str(path)], migrated_env)

    assert result.exit_code == 0, result.output
    assert "1 rows read, 1 created" in result.stdout


def test_import_of_a_file_without_a_name_column_exits_2_and_imports_nothing(
    migrated_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("customer,phones\nAnna Alt,030 1111111\n", encoding="utf-8")

    result = desk(["import", "customers", str(path)], migrated_env)

    assert result.exit_code == 2
    assert "has no name column" in result.stderr

    async def count(session: AsyncSession) -> int:
        return await session.scalar(select(func.count()).select_from(Customer)) or 0

    assert query(migrated_env["DESK_DATABASE_URL"], count) == 0


def test_seed_demo_is_refused_in_production_mode(migrated_env: dict[str, str]) -> None:
    result = desk(["seed-demo"], migrated_env)

    assert result.exit_code == 2
    assert "DESK_MODE=demo" in result.stderr


def test_seed_demo_in_demo_mode_reports_what_it_created(migrated_env: dict[str, str]) -> None:
    result = desk(["seed-demo"], {**migrated_env, "DESK_MODE": "demo"})

    assert result.exit_code == 0, result.output
    assert "2 teams, 6 users, 200 customers created" in result.stdout
