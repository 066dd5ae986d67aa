"""The README's demo command: migrate, seed, serve — healthy within 20 seconds."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_the_demo_command_answers_healthz_within_20_seconds(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESK_")}
    desk = Path(sys.executable).parent / "desk"
    started = time.monotonic()
    process = subprocess.Popen(
        [str(desk), "demo", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    health = None
    try:
        while time.monotonic() - started < 20 and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as reply:
                    health = (reply.status, json.load(reply))
                    if health[1]["ami"]["status"] == "connected":
                        break
            except OSError:
                pass
            time.sleep(0.2)
        elapsed = time.monotonic() - started
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=15)
    assert health is not None, output
    assert elapsed < 20, output
    status, body = health
    assert status == 200
    assert body["status"] == "ok"
    # No PBX configured: the demo links to its built-in simulator.
    assert body["ami"]["status"] == "connected", body
    assert (tmp_path / "var" / "demo.db").exists()
    assert process.returncode == 0, output
