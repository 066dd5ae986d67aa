"""docs/deploy.md, followed: Debian's nginx in front of two `desk serve` processes that
share PostgreSQL and Redis and one PBX link (the simulator).

The test installs nothing (.ci/run installs Debian's nginx).  It writes the site
configuration from config/nginx/calldesk.conf the way deploy.md step 3 tells an
operator to: the server name and the certificate set (a test certificate,
tests/cluster/nginx_tls/), and, as a test must, free ports instead of 80, 443, 9180,
8081 and 8082 and a log directory of its own.  The file goes into the http block of
a minimal main configuration, as Debian's /etc/nginx/conf.d/ files do, `nginx -t`
checks it, and nginx runs in the foreground with a private prefix.  The processes
get deploy.md's settings: the shipped config/*.toml copied, `[security]
trusted_proxies` set as the doc says, calldesk.env's variables in the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import socket
import ssl
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from sqlalchemy import select

from cti.simulator import PbxSimulator
from desk.db import create_engine
from desk.demo_data import DEMO_PASSWORD
from desk.models import Customer, CustomerAuditEntry
from desk.settings import default_config_dir
from tests.cluster.serve_support import (
    HOST,
    DeskServe,
    RedisServer,
    base_environment,
    config_dir,
    free_port,
    fresh_database,
)
from tests.cti_e2e.conftest import Browser, until

SITE_CONF = default_config_dir() / "nginx" / "calldesk.conf"
TLS = Path(__file__).parent / "nginx_tls"
SERVER_NAME = "desk.test"
AMI_USER, AMI_SECRET = "desk", "nginx-ami-secret"
METRICS_TOKEN = "nginx-test-metrics-token"
AGENTS = ("alice", "bob", "carol", "dave")
TRUSTED = 'trusted_proxies = ["127.0.0.1/32", "::1/128"]'  # deploy.md, section 1
# Sign-in failures one client address may have before a 429 (config/desk.toml).
LOGIN_FAILURES_ALLOWED = 30


@dataclass(frozen=True)
class Ports:
    https: int
    http: int
    monitoring: int
    desks: tuple[int, int]


def site_config(text: str, *, ports: Ports, logs: Path, ipv6: bool) -> str:
    """calldesk.conf with what deploy.md has the operator change (server name,
    certificate) and what this test must change (ports, log directory)."""
    first, second = ports.desks
    changes = [
        ("server_name desk.example.com;", f"server_name {SERVER_NAME};"),
        ("/etc/letsencrypt/live/desk.example.com/fullchain.pem", str(TLS / "cert.pem")),
        ("/etc/letsencrypt/live/desk.example.com/privkey.pem", str(TLS / "key.pem")),
        ("/var/log/nginx/", f"{logs}/"),
        ("listen 80;", f"listen {ports.http};"),
        ("listen [::]:80;", f"listen [::]:{ports.http};"),
        ("listen 443 ssl", f"listen {ports.https} ssl"),
        ("listen [::]:443 ssl", f"listen [::]:{ports.https} ssl"),
        ("listen 9180;", f"listen {ports.monitoring};"),
        ("8081", str(first)),
        ("8082", str(second)),
    ]
    for old, new in changes:
        # The doc and this test must not drift apart silently.
        assert old in text, (
            f"{SITE_CONF} no longer has {old!r}: update docs/deploy.md and this test"
        )
        text = text.replace(old, new)
    if not ipv6:  # a CI container without IPv6: nginx could not listen on [::]
        text = "\n".join(line for line in text.splitlines() if "listen [::]" not in line)
    return text


def _ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


class Nginx:
    """nginx in the foreground, with its own prefix, pid file, logs and temp files."""

    def __init__(self, site_text: str) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            pytest.fail("nginx is not installed (Debian: apt-get install nginx; .ci/run does)")
        self.binary = binary
        # Under /tmp and world-readable: nginx's workers run as another user when the
        # master runs as root, and must reach their temp files.
        self.prefix = Path(tempfile.mkdtemp(prefix="calldesk-nginx-"))
        self.prefix.chmod(0o755)
        (self.prefix / "conf.d").mkdir()
        (self.prefix / "conf.d" / "calldesk.conf").write_text(site_text, encoding="utf-8")
        temp = "\n".join(
            f"    {kind}_temp_path {self.prefix / 'tmp' / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (self.prefix / "nginx.conf").write_text(
            f"worker_processes 1;\npid {self.prefix / 'nginx.pid'};\n"
            f"error_log {self.prefix / 'error.log'} warn;\n"
            "events { worker_connections 256; }\n"
            f"http {{\n{temp}\n    include {self.prefix / 'conf.d'}/*.conf;\n}}\n",
            encoding="utf-8",
        )
        (self.prefix / "tmp").mkdir()
        self.args = ["-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf"),
                     "-e", str(self.prefix / "error.log")]  # fmt: skip
        self.process: asyncio.subprocess.Process | None = None

    async def check(self) -> str:
        """`nginx -t`: its verdict (it writes it on standard error)."""
        checking = await asyncio.create_subprocess_exec(
            self.binary, "-t", *self.args, stderr=asyncio.subprocess.PIPE
        )
        _, said = await checking.communicate()
        assert checking.returncode == 0, said.decode(errors="replace")
        return said.decode(errors="replace")

    async def start(self, port: int) -> None:
        self.process = await asyncio.create_subprocess_exec(
            self.binary, *self.args, "-g", "daemon off;"
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(HOST, port)
                writer.close()
                return
            assert self.process.returncode is None, self.error_log()
            await asyncio.sleep(0.05)
        raise AssertionError(f"nginx does not listen on {port}: {self.error_log()}")

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), timeout=10)
        shutil.rmtree(self.prefix, ignore_errors=True)

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def access_log(self) -> list[str]:
        path = self.prefix / "logs" / "calldesk.access.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []


@dataclass
class Site:
    ports: Ports
    nginx: Nginx
    sim: PbxSimulator
    database_url: str
    tls: ssl.SSLContext
    browsers: list[Browser] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"https://{HOST}:{self.ports.https}"

    @property
    def monitoring(self) -> str:
        return f"http://{HOST}:{self.ports.monitoring}"

    def client(self, address: str = HOST) -> aiohttp.ClientSession:
        """A client (a browser's HTTP) from ``address``, trusting the test certificate."""
        connector = aiohttp.TCPConnector(ssl=self.tls, local_addr=(address, 0))
        return aiohttp.ClientSession(connector=connector)

    async def sign_in(self, http: aiohttp.ClientSession, who: str) -> dict[str, Any]:
        async with http.post(
            f"{self.base}/api/v1/auth/login", json={"username": who, "password": DEMO_PASSWORD}
        ) as response:
            assert response.status == 200, await response.text()
            body: dict[str, Any] = await response.json()
            return body

    async def browser(self, http: aiohttp.ClientSession, signed_in: dict[str, Any]) -> Browser:
        """socket.io through nginx, as the desk's pages open it: websocket only, from a
        page of this site (the Origin header a browser sends)."""
        sio = socketio.AsyncClient(reconnection=False, http_session=http)
        user = signed_in["user"]
        browser = Browser(user["username"], user["id"], sio)
        sio.on("*", lambda event, data: browser.received.append((event, data)))
        await sio.connect(
            self.base,
            auth={"token": signed_in["token"]},
            headers={"Origin": self.base},
            transports=["websocket"],
            wait_timeout=10,
        )
        self.browsers.append(browser)
        return browser

    async def metric(self, http: aiohttp.ClientSession, port: int, name: str) -> float:
        """A process's metric, scraped as Prometheus does: the monitoring server's
        /metrics/<port>, with the metrics token."""
        async with http.get(
            f"{self.monitoring}/metrics/{port}",
            headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
        ) as response:
            assert response.status == 200, await response.text()
            text = await response.text()
        found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        assert found is not None, f"no {name} in /metrics/{port}"
        return float(found.group(1))


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    url = await fresh_database("nginx")
    redis = RedisServer(tmp_path)
    await redis.start()
    sim = PbxSimulator(host=HOST, port=0, username=AMI_USER, secret=AMI_SECRET)
    await sim.start()
    ports = Ports(free_port(), free_port(), free_port(), (free_port(), free_port()))

    def trust_nginx(name: str, text: str) -> str:
        if name != "desk.toml":
            return text
        assert "trusted_proxies = []" in text
        return text.replace("trusted_proxies = []", TRUSTED)

    config = config_dir(tmp_path / "calldesk", edit=trust_nginx)
    env = base_environment(database_url=url, redis_url=redis.url, config=config) | {
        "DESK_AMI_HOST": HOST,
        "DESK_AMI_PORT": str(sim.port),
        "DESK_AMI_USERNAME": AMI_USER,
        "DESK_AMI_SECRET": AMI_SECRET,
        "DESK_METRICS_TOKEN": METRICS_TOKEN,
        "DESK_PUBLIC_URL": f"https://{HOST}:{ports.https}",
    }
    processes = [DeskServe(f"desk{port}", env, port=port, workdir=tmp_path) for port in ports.desks]
    nginx = Nginx(site_config(SITE_CONF.read_text(), ports=ports, logs=Path("logs"), ipv6=_ipv6()))
    (nginx.prefix / "logs").mkdir()
    tls = ssl.create_default_context(cafile=str(TLS / "cert.pem"))
    running = Site(ports, nginx, sim, url, tls)
    try:
        await asyncio.gather(*(p.start() for p in processes))
        assert "test is successful" in await nginx.check()
        await nginx.start(ports.https)
        yield running
    finally:
        for browser in running.browsers:
            if browser.sio.connected:
                await browser.sio.disconnect()
        await nginx.stop()
        await asyncio.gather(*(p.stop() for p in processes))
        await sim.stop()
        await redis.stop()


async def test_through_nginx_each_agent_gets_each_pop_once_whichever_process_its_websocket_reached(
    site: Site,
) -> None:
    async with site.client() as http:
        signed_in = {who: await site.sign_in(http, who) for who in (*AGENTS, "sam")}
        agents = {who: await site.browser(http, signed_in[who]) for who in AGENTS}
        # least_conn spread the four websockets over both processes, two each.
        connected = [
            await site.metric(http, port, "calldesk_agents_connected") for port in site.ports.desks
        ]
        assert connected == [2.0, 2.0]
        holders = [
            await site.metric(http, port, "calldesk_ami_link_holder") for port in site.ports.desks
        ]
        assert sorted(holders) == [0.0, 1.0]
        sam = await site.browser(http, signed_in["sam"])
        await until(lambda: bool(sam.events("board")), timeout=10, what="the board on connecting")
        boards_before = len(sam.events("board"))

        await site.sim.play("support_ringall_answered", speed=None)
        await site.sim.play("sales_rrmemory_ring_no_answer", speed=None)

        expected = {
            "alice": ["ringing", "connected", "ended"],
            "bob": ["ringing", "withdrawn"],
            "carol": ["ringing", "withdrawn"],
            "dave": ["ringing", "connected", "ended"],
        }
        await until(
            lambda: all(len(agents[w].phases()) >= len(p) for w, p in expected.items()),
            timeout=10,
            what="every agent's pops",
        )
        await asyncio.sleep(1.0)  # a pop sent twice would arrive by now
        assert {who: agents[who].phases() for who in AGENTS} == expected
        assert len({p["call_id"] for b in agents.values() for p in b.pops()}) == 2
        await until(
            lambda: len(sam.events("board")) > boards_before, what="the board moving with calls"
        )


async def test_behind_nginx_the_rate_limit_and_the_audit_log_see_the_client_not_nginx(
    site: Site,
) -> None:
    login = f"{site.base}/api/v1/auth/login"
    async with site.client("127.0.0.2") as guesser:
        for n in range(LOGIN_FAILURES_ALLOWED):
            body = {"username": f"nobody{n}", "password": "wrong password"}
            async with guesser.post(login, json=body) as response:
                assert response.status == 401, await response.text()
        async with guesser.post(login, json={"username": "nobody", "password": "x"}) as refused:
            assert refused.status == 429
    # nginx spread the guesses over both processes; Redis counted them for one address.
    upstreams = {
        found.group(1)
        for line in site.nginx.access_log()
        if '"POST /api/v1/auth/login' in line
        and (found := re.search(r"upstream=\S+:(\d+)", line)) is not None
    }
    assert upstreams == {str(port) for port in site.ports.desks}

    async with site.client("127.0.0.3") as someone_else:
        async with someone_else.post(login, json={"username": "nobody", "password": "x"}) as r:
            assert r.status == 401  # another address: not limited
        token = (await site.sign_in(someone_else, "sam"))["token"]
        engine = create_engine(site.database_url)
        try:
            async with engine.connect() as conn:
                customer = await conn.scalar(select(Customer.id).limit(1))
            # A client may claim any address; nginx appends the one it saw.
            async with someone_else.get(
                f"{site.base}/api/v1/customers/{customer}",
                headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": "203.0.113.9"},
            ) as response:
                assert response.status == 200, await response.text()
                request_id = response.headers["X-Request-Id"]
            audited: list[str] = []

            async def read_audit() -> None:
                async with engine.connect() as conn:
                    audited[:] = await conn.scalars(
                        select(CustomerAuditEntry.address).where(
                            CustomerAuditEntry.request_id == request_id
                        )
                    )

            deadline = time.monotonic() + 10
            while not audited and time.monotonic() < deadline:
                await read_audit()
                await asyncio.sleep(0.2)
        finally:
            await engine.dispose()
    assert audited == ["127.0.0.3"]


async def test_through_nginx_the_probes_answer_and_metrics_are_served_only_to_monitoring(
    site: Site,
) -> None:
    async with site.client() as http:
        async with http.get(f"{site.base}/healthz") as response:
            assert response.status == 200
            health = await response.json()
            request_id = response.headers["X-Request-Id"]
        assert health["status"] == "ok" and health["ami"]["role"] in ("holder", "standby")
        # nginx's request id reached the desk, came back, and is in nginx's access log.
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)
        await until(
            lambda: any(f"request_id={request_id}" in line for line in site.nginx.access_log()),
            what="the request id in nginx's access log",
        )
        async with http.get(f"{site.base}/readyz") as response:
            assert response.status == 200
            ready = await response.json()
        assert ready["status"] == "ready"
        assert {name: check["ok"] for name, check in ready["checks"].items()} == {
            "database": True,
            "redis": True,
            "ami": True,
        }
        async with http.get(f"{site.base}/metrics") as response:
            assert response.status == 404
        for port in site.ports.desks:
            async with http.get(f"{site.monitoring}/readyz/{port}") as response:
                assert response.status == 200
            async with http.get(f"{site.monitoring}/metrics/{port}") as response:
                assert response.status == 401  # the token is the desk's to check
        holders = [
            await site.metric(http, port, "calldesk_ami_link_holder") for port in site.ports.desks
        ]
        assert sorted(holders) == [0.0, 1.0]
        async with http.get(
            f"http://{HOST}:{site.ports.http}/healthz", allow_redirects=False
        ) as response:
            assert response.status == 301
            assert response.headers["Location"].startswith("https://")
