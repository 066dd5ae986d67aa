"""`desk serve` refuses to start on bad settings or an unmigrated database, in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SECRET = "s" * 40


def _serve(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DESK_")}
    desk = Path(sys.executable).parent / "desk"
    return subprocess.run(
        [str(desk), "serve"],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_bad_port_stops_serve_with_one_line_naming_it(tmp_path: Path) -> None:
    result = _serve({"DESK_PORT": "eighty", "DESK_SECRET_KEY": SECRET}, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("calldesk: environment variable DESK_PORT")


def test_serve_without_a_secret_key_refuses_to_start(tmp_path: Path) -> None:
    result = _serve({}, tmp_path)
    assert result.returncode == 2
    assert "secret key is missing or a placeholder" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_on_an_unmigrated_database_says_to_upgrade(tmp_path: Path) -> None:
    env = {
        "DESK_SECRET_KEY": SECRET,
        "DESK_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
        "DESK_PORT": "18999",
    }
    result = _serve(env, tmp_path)
    assert result.returncode == 2
    assert "run `desk db upgrade`" in result.stderr
    assert "Traceback" not in result.stderr
