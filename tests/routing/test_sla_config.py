"""SLA settings are checked once at start-up: the shipped defaults cover every
customer tier and priority, and anything wrong stops the service with one line
naming the setting."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from desk.models import TicketPriority, Tier
from desk.settings import Settings, load_settings
from routing.sla import ClockKind
from routing.sla_config import SlaConfigError, sla_setup
from tests.conftest import TEST_SECRET
from tests.routing.sla_support import OFFICE, STANDARD, setup
from web.app import StartupError, create_app


def test_the_shipped_configuration_gives_every_tier_and_priority_all_three_clocks() -> None:
    sla = sla_setup(load_settings(environ={"DESK_SECRET_KEY": TEST_SECRET}))
    assert set(sla.calendars) == {"office"}
    for tier in Tier:
        for priority in TicketPriority:
            policy = sla.choose(tier=tier.value, priority=priority.value, category=None)
            assert policy is not None, (tier, priority)
            assert {target.clock for target in policy.targets} == set(ClockKind)
            assert all(target.warn_before is not None for target in policy.targets)
    urgent = sla.choose(tier="platinum", priority="urgent", category=None)
    assert urgent is not None and urgent.name == "Platinum urgent"
    assert [level.who.value for level in sla.escalation.levels] == [
        "assignee",
        "team_lead",
        "supervisors",
    ]


def _policy(**changes: Any) -> dict[str, Any]:
    return {**STANDARD, **changes}


def _targets(resolution: str) -> dict[str, Any]:
    return {"resolution": {"target": resolution}}


BAD = [
    ("an empty calendar",
     {"calendars": {"office": {"time_zone": "Europe/Berlin", "hours": {}}}},
     "sla.calendars.office.hours: calendar has no working hours"),
    ("overlapping business hours",
     {"calendars": {"office": {**OFFICE, "hours": {"mon": ["08:00-13:00", "12:00-18:00"]}}}},
     "sla.calendars.office.hours.mon: 08:00-13:00 overlaps 12:00-18:00"),
    ("a non-existent time zone",
     {"calendars": {"office": {**OFFICE, "time_zone": "Mars/Olympus"}}},
     "sla.calendars.office.time_zone: unknown time zone 'Mars/Olympus'"),
    ("a target of zero",
     {"policies": [_policy(targets=_targets("0m"))]},
     "sla.policies[0].targets.resolution.target: must be positive"),
    ("a negative target",
     {"policies": [_policy(targets=_targets("-4h"))]},
     "sla.policies[0].targets.resolution.target: must be positive, got '-4h' "
     "(policy 'Standard')"),
    ("a non-existent time zone in a policy's own calendar",
     {"policies": [_policy(calendar={**OFFICE, "time_zone": "Europe/Atlantis"})]},
     "sla.policies[0].calendar.time_zone: unknown time zone 'Europe/Atlantis'"),
    ("an undefined calendar name",
     {"policies": [_policy(calendar="home")]},
     "sla.policies[0].calendar: no calendar named 'home'"),
    ("two policies of one name",
     {"policies": [STANDARD, STANDARD]},
     "sla.policies[1].name: 'Standard' is already used by a policy"),
    ("a policy that is not a table",
     {"policies": ["Standard"]},
     "sla.policies[0]: a table"),
    ("an unknown escalation target",
     {"escalation": {"levels": [{"who": "ceo"}]}},
     "sla.escalation.levels[0].who: unknown 'ceo'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("config", "message"), [case[1:] for case in BAD], ids=[case[0] for case in BAD]
)
def test_a_bad_sla_setting_is_one_clear_line_naming_it(
    config: dict[str, Any], message: str
) -> None:
    options: dict[str, Any] = {"policies": [STANDARD], "escalation": {}} | config
    with pytest.raises(SlaConfigError) as raised:
        setup(**options)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


async def test_the_app_refuses_to_start_on_a_bad_sla_setting(settings: Settings) -> None:
    bad = settings.model_copy(update={"sla_policies": [_policy(targets=_targets("0h"))]})
    server = TestServer(create_app(bad))
    with pytest.raises(StartupError, match=r"^sla\.policies\[0\]\.targets\.resolution\.target"):
        await server.start_server()
    await server.close()


def test_desk_serve_stops_on_a_bad_calendar_with_one_line(
    sqlite_template: Path, tmp_path: Path
) -> None:
    database = tmp_path / "desk.db"
    shutil.copy(sqlite_template, database)
    calendars = {"office": {**OFFICE, "time_zone": "Mars/Olympus"}}
    env = {key: value for key, value in os.environ.items() if not key.startswith("DESK_")}
    env |= {
        "DESK_SECRET_KEY": TEST_SECRET,
        "DESK_DATABASE_URL": f"sqlite:///{database}",
        "DESK_PORT": "18998",
        "DESK_SLA_CALENDARS": json.dumps(calendars),
    }
    result = subprocess.run(
        [str(Path(sys.executable).parent / "desk"), "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "calldesk: sla.calendars.office.time_zone: unknown time zone 'Mars/Olympus'"
    )
    assert "Traceback" not in result.stderr
