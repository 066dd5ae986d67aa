from __future__ import annotations

from pathlib import Path

import pytest

from desk.settings import DEMO_SECRET_KEY, SettingsError, load_settings

GOOD_SECRET = "x" * 40


def _load(env: dict[str, str], config_dir: Path | None = None) -> object:
    return load_settings(environ=env, config_dir=config_dir)


def test_the_default_configuration_with_a_real_secret_loads() -> None:
    settings = load_settings(environ={"DESK_SECRET_KEY": GOOD_SECRET})
    assert settings.port == 8080
    assert settings.phone_region == "DE"
    assert settings.database_url.startswith("sqlite+aiosqlite://")


def test_environment_variables_override_the_config_files() -> None:
    settings = load_settings(
        environ={
            "DESK_SECRET_KEY": GOOD_SECRET,
            "DESK_PORT": "9090",
            "DESK_HOST": "0.0.0.0",
            "DESK_PHONE_REGION": "us",
            "DESK_AMI_HOST": "pbx.local",
            "DESK_AMI_PORT": "5039",
            "DESK_AMI_USERNAME": "deskuser",
            "DESK_AMI_SECRET": "pw",
            "DESK_REDIS_URL": "redis://127.0.0.1:6379/0",
            "DESK_DATABASE_URL": "postgresql://desk@db/desk",
        }
    )
    assert (settings.port, settings.host, settings.phone_region) == (9090, "0.0.0.0", "US")
    assert (settings.ami_host, settings.ami_port, settings.ami_username) == (
        "pbx.local",
        5039,
        "deskuser",
    )
    assert settings.ami_secret.get_secret_value() == "pw"
    assert settings.database_url == "postgresql+asyncpg://desk@db/desk"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("env", "named", "problem"),
    [
        ({"DESK_PORT": "eighty"}, "DESK_PORT", "valid integer"),
        ({"DESK_PORT": "70000"}, "DESK_PORT", "less than or equal to 65535"),
        ({"DESK_AMI_PORT": "-1"}, "DESK_AMI_PORT", "greater than or equal to 1"),
        ({"DESK_PHONE_REGION": "XX"}, "DESK_PHONE_REGION", "region"),
        ({"DESK_DATABASE_URL": "mysql://x/y"}, "DESK_DATABASE_URL", "postgresql"),
        ({"DESK_REDIS_URL": "http://x"}, "DESK_REDIS_URL", "redis://"),
        ({"DESK_MODE": "staging"}, "DESK_MODE", "production"),
        ({"DESK_TIMEZONE": "Mars/Olympus_Mons"}, "DESK_TIMEZONE", "IANA time zone"),
        ({"DESK_FAVOURITE_COLOUR": "blue"}, "DESK_FAVOURITE_COLOUR", "unknown setting"),
    ],
)
def test_a_bad_setting_stops_start_up_with_one_line_naming_it(
    env: dict[str, str], named: str, problem: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={"DESK_SECRET_KEY": GOOD_SECRET, **env})
    message = str(caught.value)
    assert "\n" not in message
    assert named in message
    assert problem in message


@pytest.mark.parametrize("secret", [None, "", "change-me", "CHANGEME", "short-but-real"])
def test_outside_demo_mode_a_missing_or_placeholder_secret_refuses_to_start(
    secret: str | None,
) -> None:
    env = {} if secret is None else {"DESK_SECRET_KEY": secret}
    with pytest.raises(SettingsError, match="secret key"):
        load_settings(environ=env)


def test_demo_mode_runs_with_the_placeholder_secret() -> None:
    settings = load_settings(environ={"DESK_MODE": "demo"})
    assert settings.secret_key.get_secret_value() == DEMO_SECRET_KEY


def test_an_unknown_key_in_a_config_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "desk.toml").write_text('secret_key = "' + GOOD_SECRET + '"\n[ami]\nhots = "x"\n')
    with pytest.raises(SettingsError, match=r"desk.toml: ami_hots: unknown setting"):
        load_settings(environ={}, config_dir=tmp_path)


def test_a_config_file_that_is_not_toml_is_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "desk.toml").write_text("port = = 1\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(environ={}, config_dir=tmp_path)


def test_later_config_files_override_earlier_ones(tmp_path: Path) -> None:
    (tmp_path / "10-base.toml").write_text(f'secret_key = "{GOOD_SECRET}"\nport = 1000\n')
    (tmp_path / "20-site.toml").write_text("port = 2000\n")
    assert load_settings(environ={}, config_dir=tmp_path).port == 2000


def test_a_wrong_type_in_a_config_file_names_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "desk.toml").write_text(f'secret_key = "{GOOD_SECRET}"\nport = "high"\n')
    with pytest.raises(SettingsError, match=r"desk.toml: port: .*valid integer"):
        load_settings(environ={}, config_dir=tmp_path)


def test_attendance_is_published_every_second_and_expires_after_five_by_default() -> None:
    settings = load_settings(environ={"DESK_SECRET_KEY": GOOD_SECRET})
    assert (settings.attendance_interval, settings.attendance_expiry) == (1, 5)


def test_an_attendance_key_that_would_expire_before_its_refresh_is_refused() -> None:
    env = {
        "DESK_SECRET_KEY": GOOD_SECRET,
        "DESK_ATTENDANCE_INTERVAL": "2",
        "DESK_ATTENDANCE_EXPIRY": "2",
    }
    with pytest.raises(
        SettingsError,
        match=r"DESK_ATTENDANCE_EXPIRY: .*longer than attendance_interval \(2s\)",
    ):
        load_settings(environ=env)
