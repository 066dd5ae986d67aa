"""Routing rules come from config/routing.toml, checked once at start-up: anything
wrong is one line naming the file and key; a skill nobody has is only a warning."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from desk.events import EventBus, UnitOfWork
from desk.settings import SettingsError, default_config_dir, load_settings
from desk.users import AgentIn, SkillIn, TeamDraft, UserDraft, create_team, create_user
from routing.router import CategoryRule
from routing.routing_config import (
    RoutingConfigError,
    load_routing_setup,
    routing_setup_from_config,
    routing_table,
)
from tests.conftest import TEST_SECRET, Database

TEAMS = {"Billing": 2}
_NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ENV = {"DESK_SECRET_KEY": TEST_SECRET}


def _config_dir(tmp_path: Path, routing_toml: str) -> Path:
    """The shipped config directory with routing.toml replaced."""
    directory = tmp_path / "config"
    shutil.copytree(default_config_dir(), directory)
    (directory / "routing.toml").write_text(routing_toml, encoding="utf-8")
    return directory


def test_the_shipped_routing_file_is_valid() -> None:
    settings = load_settings(environ=ENV)
    setup = routing_setup_from_config(
        routing_table(settings),
        automation=settings.automation_rules,
        sweep_interval=settings.routing_sweep_interval,
        teams={},
    )
    assert setup.rules.categories["sales"] == CategoryRule(skills={"sales": 1})
    assert setup.rules.default_capacity == 10
    assert (setup.rules.allow_on_call, setup.rules.reassign_when_offline) == (False, False)
    assert setup.sweep_interval == 60


def test_the_file_sets_the_rules(tmp_path: Path) -> None:
    directory = _config_dir(
        tmp_path,
        """
        [routing]
        allow_on_call = true
        reassign_when_offline = true
        offline_grace = "30m"
        default_team = "Billing"
        sweep_interval = 5
        capacity = { default = 6, agents = { "7" = 3 } }
        [routing.categories.sepa]
        skills = { billing = 5, german = 2 }
        team = "Billing"
        [[automation.rules]]
        name = "Outages are urgent"
        conditions = [{field = "subject", contains = "outage"}]
        actions = [{set_priority = "urgent"}]
        """,
    )
    settings = load_settings(environ=ENV, config_dir=directory)
    setup = routing_setup_from_config(
        routing_table(settings),
        automation=settings.automation_rules,
        sweep_interval=settings.routing_sweep_interval,
        teams=TEAMS,
    )
    rules = setup.rules
    assert rules.categories["sepa"] == CategoryRule(skills={"billing": 5, "german": 2}, team_id=2)
    assert (rules.allow_on_call, rules.reassign_when_offline) == (True, True)
    assert (rules.offline_grace, rules.default_team) == (timedelta(minutes=30), 2)
    assert (rules.capacity_of(7), rules.capacity_of(8)) == (3, 6)
    assert [rule.name for rule in setup.automation] == ["Outages are urgent"]
    assert setup.sweep_interval == 5


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("an unknown key in a table",
     {"capacity": {"maximum": 4}},
     "routing.toml: routing.capacity.maximum: unknown key"),
    ("a negative capacity",
     {"capacity": {"default": -1}},
     "routing.toml: routing.capacity.default: must be above 0, got -1"),
    ("a negative capacity for one agent",
     {"capacity": {"agents": {"7": -3}}},
     "routing.toml: routing.capacity.agents.7: must be above 0"),
    ("an empty skills table",
     {"categories": {"billing": {"skills": {}, "team": "Billing"}}},
     "routing.toml: routing.categories.billing.skills: empty"),
    ("a category with neither skills nor team",
     {"categories": {"billing": {}}},
     "routing.toml: routing.categories.billing: give skills, a team or both"),
    ("a capitalised skill name",
     {"categories": {"billing": {"skills": {"Billing": 2}}}},
     "routing.toml: routing.categories.billing.skills.Billing: skill names are lower case"),
    ("a skill level out of range",
     {"categories": {"billing": {"skills": {"billing": 11}}}},
     "routing.toml: routing.categories.billing.skills.billing: a skill level from 1 to 10"),
    ("an unknown team",
     {"categories": {"billing": {"team": "Accounts"}}},
     "routing.toml: routing.categories.billing.team: no team named 'Accounts'"),
    ("an unknown priority weight",
     {"weights": {"critical": 8}},
     "routing.toml: routing.weights.critical: unknown priority"),
    ("a grace that is not a duration",
     {"offline_grace": "soon"},
     "routing.toml: routing.offline_grace: "),
]  # fmt: skip


@pytest.mark.parametrize(
    ("routing", "message"), [case[1:] for case in BAD], ids=[case[0] for case in BAD]
)
def test_a_bad_routing_rule_is_one_line_naming_file_and_key(
    routing: dict[str, Any], message: str
) -> None:
    with pytest.raises(RoutingConfigError) as raised:
        routing_setup_from_config(routing, teams=TEAMS)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_a_bad_automation_rule_names_its_index_and_field() -> None:
    rule = {"name": "x", "conditions": [{"field": "mood", "equals": "angry"}], "actions": []}
    with pytest.raises(RoutingConfigError, match=r"^routing\.toml: automation\.rules\[0\]\.co"):
        routing_setup_from_config({}, automation=[rule], teams=TEAMS)


def test_an_unknown_key_in_the_routing_file_is_refused_by_name(tmp_path: Path) -> None:
    directory = _config_dir(tmp_path, "[routing]\nallow_calls = true\n")
    with pytest.raises(SettingsError, match=r"^routing\.toml: routing_allow_calls: unknown"):
        load_settings(environ=ENV, config_dir=directory)


def test_a_bad_value_in_the_routing_file_names_file_and_key(tmp_path: Path) -> None:
    directory = _config_dir(tmp_path, "[routing.capacity]\ndefault = 0\n")
    settings = load_settings(environ=ENV, config_dir=directory)
    with pytest.raises(RoutingConfigError) as raised:
        routing_setup_from_config(routing_table(settings), teams={})
    assert str(raised.value) == "routing.toml: routing.capacity.default: must be above 0, got 0"


async def _team_with_agent(database: Database, *, skill: str) -> tuple[int, int]:
    async with UnitOfWork(sessions=database.sessions, bus=EventBus()) as uow:
        team = await create_team(uow.session, TeamDraft(name="Billing"), now=_NOW)
        user = await create_user(
            uow.session,
            UserDraft(
                username="anna",
                display_name="Anna",
                password="long enough",
                agent=AgentIn(extension="1001", team_id=team.id, skills=[SkillIn(name=skill)]),
            ),
            now=_NOW,
        )
        await uow.commit()
        assert user.agent is not None
        return team.id, user.agent.id


async def test_team_names_are_looked_up_in_the_database(database: Database) -> None:
    team_id, _ = await _team_with_agent(database, skill="billing")
    settings = load_settings(
        environ=ENV,
        overrides={
            "routing_categories": {"billing": {"skills": {"billing": 1}, "team": "Billing"}}
        },
    )
    setup = await load_routing_setup(settings, sessions=database.sessions)
    assert setup.rules.categories["billing"].team_id == team_id
    assert setup.warnings == ()


async def test_a_skill_no_agent_has_is_a_warning_not_an_error(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    _, agent_id = await _team_with_agent(database, skill="billing")
    settings = load_settings(
        environ=ENV,
        overrides={
            "routing_categories": {"sepa": {"skills": {"german": 2}}},
            "routing_capacity": {"agents": {str(agent_id): 4, "999": 2}},
        },
    )
    setup = await load_routing_setup(settings, sessions=database.sessions)
    assert setup.warnings == (
        "routing.toml: routing.categories.sepa.skills.german: no agent has this skill, "
        "so 'sepa' tickets wait in their team's queue",
        "routing.toml: routing.capacity.agents.999: there is no such agent",
    )
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == list(
        setup.warnings
    )
