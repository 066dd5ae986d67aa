"""The desk's screens in a real browser: Debian's chromium driven by Playwright.

``desk`` is the whole desk against the PBX simulator, as the end-to-end tests run it
(``tests/cti_e2e``: demo data, real AMI over TCP, the real app on a real port), with
no socket.io clients of its own: the browsers are the clients.  Every frame the
simulator writes is timed, so a test can tell how long a frame took to reach a page.

``chromium`` is ``/usr/bin/chromium`` (``DESK_CHROMIUM`` to use another); Playwright's
own browser download does not work here, so ``.ci/run`` installs Debian's package.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    async_playwright,
)

from cti.ami import AmiError
from cti.frames import Frame
from desk.demo_data import DEMO_PASSWORD
from desk.settings import Settings, load_settings
from tests.conftest import TEST_SECRET, Database
from tests.cti_e2e.conftest import E2E, running_desk
from tests.desk.mail_support import MAIL_FROM, MailServer, free_port
from tests.routing.sla_support import ALWAYS
from web.app import STATIC_DIR

CHROMIUM = os.environ.get("DESK_CHROMIUM", "/usr/bin/chromium")
# Each run's screenshots land in var/screenshots (git-ignored; CI keeps them as
# artifacts); DESK_SCREENSHOTS=docs/screenshots refreshes the ones the README shows.
SCREENSHOTS = Path(
    os.environ.get("DESK_SCREENSHOTS")
    or Path(__file__).resolve().parents[2] / "var" / "screenshots"
)
SCREENSHOTS.mkdir(parents=True, exist_ok=True)
# Around the clock, so countdowns tick whenever the tests run; first response within
# 30 minutes puts a new ticket on the supervisors' at-risk list (horizon: one hour).
ROUND_THE_CLOCK: dict[str, Any] = {
    "name": "Round the clock",
    "tiers": ["standard", "gold", "platinum"],
    "priorities": ["low", "normal", "high", "urgent"],
    "calendar": "always",
    "targets": {
        "first_response": {"target": "30m", "warn_before": "10m"},
        "resolution": {"target": "8h", "warn_before": "1h"},
    },
}
# What the pages wrote to the browser console about the Content-Security-Policy (a
# blocked script, style or connection): every browser test must end with none.
CSP_PROBLEMS: list[str] = []


def watched(context: BrowserContext) -> BrowserContext:
    """``context`` with its pages' CSP complaints collected into ``CSP_PROBLEMS``."""

    def console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            CSP_PROBLEMS.append(f"{message.location.get('url', '?')}: {message.text}")

    context.on("console", console)
    return context


@pytest.fixture(autouse=True)
def no_csp_problems() -> Iterator[None]:
    CSP_PROBLEMS.clear()
    yield
    assert CSP_PROBLEMS == []


# Frame-to-page times measured by the tests, printed at the end of the run.
POP_LATENCIES_MS: list[tuple[str, float]] = []


def browser_settings(database_url: str, **extra: Any) -> Settings:
    return load_settings(
        environ={},
        overrides={
            "mode": "test",
            "secret_key": TEST_SECRET,
            "database_url": database_url,
            "phone_region": "DE",
            "sla_calendars": {"always": ALWAYS},
            "sla_policies": [ROUND_THE_CLOCK],
            # Recordings replay twice as fast: a 6 s wait becomes 3 s, still a real abandon.
            "cti_short_abandon_seconds": 2,
            **extra,
        },
    )


@pytest.fixture
def settings(database_url: str) -> Settings:
    return browser_settings(database_url)


@dataclass
class FrameLog:
    """When (wall clock, seconds) the simulator wrote each frame."""

    written: list[tuple[float, Frame]] = field(default_factory=list)

    def first(self, event: str, **fields: str) -> float:
        for at, frame in self.written:
            if frame.get("Event") == event and all(frame.get(k) == v for k, v in fields.items()):
                return at
        raise AssertionError(f"the simulator wrote no {event} {fields}")


@dataclass
class LiveDesk:
    e2e: E2E
    frames: FrameLog

    @property
    def url(self) -> str:
        return self.e2e.url.rstrip("/")

    async def play(self, name: str, *, speed: float | None = None) -> None:
        """Replay a recording; return once the desk has recorded all of it."""
        await self.e2e.sim.play(name, speed=speed)
        # The reply to a Ping follows every event sent before it on the same socket.
        with contextlib.suppress(AmiError):
            await self.e2e.link.client.send_action("Ping", reply_timeout=2.0)
        async with asyncio.timeout(10):
            await self.e2e.link.recorder.drained()


@asynccontextmanager
async def live_desk(
    settings: Settings, database: Database, *, port: int = 0
) -> AsyncIterator[LiveDesk]:
    if not (STATIC_DIR / "vendor" / "socket.io.min.js").exists():
        pytest.fail("the socket.io client is missing: run `make setup` (it fetches it from npm)")
    async with running_desk(settings, database, browsers=(), port=port) as e2e:
        frames = FrameLog()
        sim = e2e.sim
        broadcast = sim._broadcast

        def timed(text: str, frame: Frame) -> None:
            broadcast(text, frame)
            frames.written.append((time.time(), frame))

        # The instance attribute wins over the method: every replayed frame is timed.
        sim._broadcast = timed  # type: ignore[method-assign]
        yield LiveDesk(e2e, frames)


@pytest.fixture
async def desk(settings: Settings, database: Database) -> AsyncIterator[LiveDesk]:
    async with live_desk(settings, database) as running:
        yield running


@pytest.fixture
async def mail() -> AsyncIterator[MailServer]:
    server = await MailServer().start()
    yield server
    await server.stop()


@pytest.fixture
async def surveying_desk(
    database_url: str, database: Database, mail: MailServer
) -> AsyncIterator[LiveDesk]:
    """The desk with e-mail to a real local SMTP server and surveys on: a solved
    ticket's survey goes out at once, its links pointing at this desk."""
    port = free_port()
    settings = browser_settings(
        database_url,
        smtp_host="127.0.0.1",
        smtp_port=mail.port,
        smtp_starttls=False,
        smtp_timeout=5,
        mail_from=MAIL_FROM,
        surveys_enabled=True,
        surveys_base_url=f"http://127.0.0.1:{port}",
        surveys_ticket_solved={"delay_minutes": 0},
    )
    async with live_desk(settings, database, port=port) as running:
        yield running


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no chromium at {CHROMIUM}: `apt-get install chromium` (see .ci/run)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        await browser.close()


async def signed_in(
    chromium: Browser,
    desk: LiveDesk,
    who: str,
    *,
    lang: str = "en",
    permissions: tuple[str, ...] = (),
    init_script: str | None = None,
) -> Page:
    """A new browser window in which ``who`` signed in through the sign-in form."""
    context = watched(
        await chromium.new_context(
            locale="zh-CN" if lang == "zh" else "en-GB",
            viewport={"width": 1280, "height": 900},
            permissions=list(permissions),
        )
    )
    if init_script is not None:
        await context.add_init_script(init_script)
    page = await context.new_page()
    await page.goto(f"{desk.url}/desk/sign-in?lang={lang}")
    await page.get_by_label("Username" if lang == "en" else "用户名").fill(who)
    await page.get_by_label("Password" if lang == "en" else "密码").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Sign in" if lang == "en" else "登录").click()
    await page.wait_for_url(lambda url: "/sign-in" not in url)
    # Live: the socket.io connection is up, so no event can be missed from here on.
    await page.locator('#live[data-state="live"]').wait_for()
    return page


async def note_pop_latency(desk: LiveDesk, pop: Locator, *, interface: str) -> None:
    """Remember how long the ``AgentCalled`` frame for ``interface`` took to become ``pop``
    on screen (the page stamps ``data-shown-at``; both clocks are this machine's)."""
    shown_at_ms = float(await pop.get_attribute("data-shown-at") or "nan")
    written = desk.frames.first("AgentCalled", Interface=interface)
    POP_LATENCIES_MS.append((interface, shown_at_ms - written * 1000))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if POP_LATENCIES_MS:
        terminalreporter.section("screen pop: AgentCalled frame written -> pop in the page")
        figures = sorted(ms for _, ms in POP_LATENCIES_MS)
        terminalreporter.write_line(
            f"{len(figures)} pops: median {statistics.median(figures):.1f} ms, "
            f"min {figures[0]:.1f} ms, max {figures[-1]:.1f} ms"
        )


# -- customers ---------------------------------------------------------------------------

ERIKA = "erika.mustermann@mustermann-consulting.example"


async def phone_context(chromium: Browser, *, lang: str = "en") -> BrowserContext:
    """A customer's phone: small screen, touch, JavaScript off (the pages need none)."""
    return watched(
        await chromium.new_context(
            viewport={"width": 390, "height": 844},
            is_mobile=True,
            has_touch=True,
            java_script_enabled=False,
            locale="zh-CN" if lang == "zh" else "en-GB",
        )
    )


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


async def survey_mail(mail: MailServer, to: str) -> EmailMessage:
    async with asyncio.timeout(15):
        while True:
            for received in mail.received:
                if to in received.rcpt_tos:
                    return received.message
            await asyncio.sleep(0.05)


async def solve_a_ticket_for_erika(desk: LiveDesk) -> int:
    e2e = desk.e2e
    opened = await e2e.client.post(
        "/api/v1/tickets",
        json={
            "subject": "Router keeps dropping the line",
            "customer_id": await e2e.customer_id("Erika Mustermann"),
        },
        headers=e2e.auth("alice"),
    )
    assert opened.status == 201, await opened.text()
    ticket_id = int((await opened.json())["id"])
    # The router may assign the new ticket meanwhile: solve the version as it is then.
    for _ in range(5):
        current = await (
            await e2e.client.get(f"/api/v1/tickets/{ticket_id}", headers=e2e.auth("alice"))
        ).json()
        solved = await e2e.client.patch(
            f"/api/v1/tickets/{ticket_id}",
            json={"version": current["version"], "status": "solved"},
            headers=e2e.auth("alice"),
        )
        if solved.status != 409:
            break
    assert solved.status == 200, await solved.text()
    return ticket_id
