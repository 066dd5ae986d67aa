"""The [surveys] settings: sensible defaults, one clear line for each mistake."""

from __future__ import annotations

from datetime import timedelta

import pytest

from desk.settings import SettingsError, load_settings
from desk.survey_policy import SurveyPolicy, low_score_rule
from tests.conftest import TEST_SECRET


def _load(environ: dict[str, str] | None = None, **overrides: object) -> object:
    return load_settings(
        environ=environ or {}, overrides={"mode": "test", "secret_key": TEST_SECRET, **overrides}
    )


def test_the_default_config_has_surveys_off_and_a_thirty_minute_delay_after_solving() -> None:
    settings = load_settings(environ={}, overrides={"mode": "test", "secret_key": TEST_SECRET})
    assert settings.surveys_enabled is False
    policy = SurveyPolicy.from_settings(settings)
    assert policy.ticket_solved.enabled and policy.ticket_solved.delay == timedelta(minutes=30)
    assert not policy.call_answered.enabled
    assert policy.period == timedelta(days=30) and policy.lifetime == timedelta(days=14)
    assert policy.channels_available == frozenset()  # no SMTP host: no channel to send on
    assert policy.link_base == "http://127.0.0.1:8080"


def test_a_trigger_is_configured_from_the_environment_as_json() -> None:
    settings = load_settings(
        environ={"DESK_SURVEYS_CALL_ANSWERED": '{"enabled": true, "delay_minutes": 5}'},
        overrides={"mode": "test", "secret_key": TEST_SECRET},
    )
    assert settings.surveys_call_answered.enabled
    assert settings.surveys_call_answered.delay_minutes == 5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"surveys_base_url": "desk.example.com"}, "surveys_base_url: "),
        ({"surveys_base_url": "https://desk.example.com/?x=1"}, "surveys_base_url: "),
        ({"surveys_low_csat": 6}, "surveys_low_csat: "),
        ({"surveys_expire_days": 0}, "surveys_expire_days: "),
        ({"surveys_ticket_solved": {"delay": 30}}, "surveys_ticket_solved: "),
        ({"surveys_ticket_solved": {"channels": ["pigeon"]}}, "surveys_ticket_solved: "),
        ({"surveys_comment_max": 0}, "surveys_comment_max: "),
    ],
)
def test_a_bad_survey_setting_is_one_line_naming_it(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        _load(**overrides)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_the_base_url_loses_its_trailing_slash() -> None:
    settings = load_settings(
        environ={},
        overrides={
            "mode": "test",
            "secret_key": TEST_SECRET,
            "surveys_base_url": "https://desk.example.com/",
        },
    )
    assert settings.survey_link_base == "https://desk.example.com"


def test_minus_one_switches_a_low_score_scale_off() -> None:
    settings = load_settings(
        environ={},
        overrides={"mode": "test", "secret_key": TEST_SECRET, "surveys_low_nps": -1},
    )
    rule = low_score_rule(settings)
    assert (rule.csat_at_most, rule.nps_at_most, rule.ces_at_most) == (2, None, None)
