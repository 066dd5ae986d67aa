"""The mail sender delivers the outbox to a real SMTP server (aiosmtpd on
localhost): every message once, retried with backoff while the server is away,
given up (and kept) after its last attempt; it runs as an owned task that a
poke wakes, and bad SMTP settings stop start-up with one clear line."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest

from desk.clock import FakeClock, SystemClock
from desk.db import create_engine, session_factory
from desk.mail_sender import MailSender, SmtpRelay
from desk.models import OutboxMessage
from desk.outbox import Backoff, enqueue_mail, outbox_messages
from desk.settings import SettingsError, load_settings
from tests.conftest import TEST_SECRET, Database
from tests.desk.mail_support import MAIL_FROM, MailServer, relay_to

SECONDS = timedelta(seconds=1)


@pytest.fixture
async def mail_server() -> AsyncIterator[MailServer]:
    server = await MailServer().start()
    yield server
    await server.stop()


@pytest.fixture
async def senders() -> AsyncIterator[list[MailSender]]:
    """Senders a test starts; stopped (task cancelled and awaited) at the end."""
    started: list[MailSender] = []
    yield started
    for sender in started:
        await sender.stop()


def sender_for(
    database: Database, clock: FakeClock | SystemClock, port: int, **options: object
) -> MailSender:
    return MailSender(
        sessions=database.sessions,
        clock=clock,
        relay=relay_to(port),
        jitter=lambda: 0.0,
        **options,  # type: ignore[arg-type]
    )


async def enqueue(
    database: Database,
    clock: FakeClock | SystemClock,
    key: str = "escalation:7:resolution:0:2",
    to: tuple[str, ...] = ("Tom Lead <tom@example.com>", "sam@example.com"),
) -> None:
    async with database.sessions() as session, session.begin():
        await enqueue_mail(
            session,
            dedupe_key=key,
            to=to,
            subject="Ticket #7 escalated (level 2): resolution",
            body="Ticket #7: resolution under policy 'Standard' is late.\n",
            now=clock.now(),
        )


async def stored(database: Database) -> list[OutboxMessage]:
    async with database.sessions() as session:
        return await outbox_messages(session)


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_due_message_is_delivered_with_its_headers_recipients_and_body(
    database: Database, clock: FakeClock, mail_server: MailServer
) -> None:
    await enqueue(database, clock)
    assert await sender_for(database, clock, mail_server.port).send_due() == 1

    (mail,) = mail_server.received
    assert mail.mail_from == "desk@example.com"
    assert mail.rcpt_tos == ["tom@example.com", "sam@example.com"]
    message = mail.message
    assert message["From"] == MAIL_FROM
    assert message["To"] == "Tom Lead <tom@example.com>, sam@example.com"
    assert message["Subject"] == "Ticket #7 escalated (level 2): resolution"
    assert parsedate_to_datetime(message["Date"]) == clock.now()
    assert message["Message-ID"].endswith("@example.com>")
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content() == "Ticket #7: resolution under policy 'Standard' is late.\n"
    (row,) = await stored(database)
    assert (row.sent_at, row.attempts, row.next_attempt_at, row.last_error) == (
        clock.now(),
        1,
        None,
        None,
    )


async def test_while_the_server_is_down_the_message_is_retried_with_backoff_and_sent_once_it_is_up(
    database: Database, clock: FakeClock
) -> None:
    server = MailServer()  # not listening yet
    sender = sender_for(database, clock, server.port, backoff=Backoff(first=60 * SECONDS))
    await enqueue(database, clock)
    start = clock.now()

    assert await sender.send_due() == 0
    assert await sender.send_due() == 0
    clock.advance(30)  # the first wait is half of 60 s with no jitter
    assert await sender.send_due() == 0
    (row,) = await stored(database)
    assert row.attempts == 2 and row.sent_at is None
    assert row.next_attempt_at == start + 30 * SECONDS + 60 * SECONDS
    assert row.last_error is not None and row.last_error.startswith("attempt 2: SMTPConnect")

    await server.start()
    try:
        clock.advance(59)
        assert await sender.send_due() == 0  # not due yet
        assert server.received == []
        clock.advance(1)
        assert await sender.send_due() == 1
        assert await sender.send_due() == 0
    finally:
        await server.stop()
    assert len(server.received) == 1
    (row,) = await stored(database)
    assert (row.attempts, row.sent_at) == (3, clock.now())


async def test_a_message_that_keeps_failing_is_given_up_after_its_last_attempt_and_kept(
    database: Database, clock: FakeClock
) -> None:
    sender = sender_for(database, clock, MailServer().port, max_attempts=3)
    await enqueue(database, clock)
    for _ in range(5):
        await sender.send_due()
        clock.advance(timedelta(hours=1))
    (row,) = await stored(database)
    assert row.attempts == 3
    assert row.sent_at is None and row.next_attempt_at is None
    assert row.failed_at is not None
    assert row.last_error is not None and "attempt 3" in row.last_error


async def test_a_message_every_recipient_of_which_is_refused_for_good_fails_at_once(
    database: Database, clock: FakeClock, mail_server: MailServer
) -> None:
    mail_server.refuse = {"nobody@example.com"}
    await enqueue(database, clock, to=("nobody@example.com",))
    assert await sender_for(database, clock, mail_server.port).send_due() == 0
    (row,) = await stored(database)
    assert (row.attempts, row.failed_at, row.next_attempt_at) == (1, clock.now(), None)
    assert row.last_error is not None and "550" in row.last_error


async def test_a_message_some_recipients_of_which_are_refused_goes_to_the_others(
    database: Database, clock: FakeClock, mail_server: MailServer
) -> None:
    mail_server.refuse = {"sam@example.com"}
    await enqueue(database, clock)
    assert await sender_for(database, clock, mail_server.port).send_due() == 1
    assert [mail.rcpt_tos for mail in mail_server.received] == [["tom@example.com"]]
    (row,) = await stored(database)
    assert row.sent_at == clock.now()
    assert row.last_error is not None and "refused sam@example.com: 550" in row.last_error


async def test_two_senders_on_one_database_deliver_each_message_once(
    database: Database, clock: FakeClock, mail_server: MailServer
) -> None:
    for n in range(24):
        await enqueue(database, clock, key=f"survey:{n}", to=(f"customer{n}@example.com",))
    engines = [create_engine(database.url) for _ in range(2)]
    try:
        one, two = (
            MailSender(
                sessions=session_factory(engine),
                clock=clock,
                relay=relay_to(mail_server.port),
                batch=3,
            )
            for engine in engines
        )
        counts = await asyncio.gather(one.send_due(), two.send_due())
    finally:
        for engine in engines:
            await engine.dispose()
    assert sum(counts) == 24
    recipients = [mail.rcpt_tos[0] for mail in mail_server.received]
    assert sorted(recipients) == sorted(f"customer{n}@example.com" for n in range(24))
    assert all(row.sent_at is not None and row.attempts == 1 for row in await stored(database))


class HeldMailServer(MailServer):
    """Takes each message only once ``release`` is set, so a batch can be caught
    half sent."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.holding = False

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.holding = True
        await self.release.wait()
        return await super().handle_DATA(server, session, envelope)


async def test_a_round_asked_for_while_the_sender_holds_a_batch_returns_once_that_mail_is_out(
    database: Database, clock: FakeClock
) -> None:
    server = await HeldMailServer().start()
    try:
        await enqueue(database, clock)
        sender = sender_for(database, clock, server.port)
        first = asyncio.create_task(sender.send_due())
        await until(lambda: server.holding)

        async def second_round() -> int:
            await sender.send_due()
            return len(server.received)

        second = asyncio.create_task(second_round())
        await asyncio.wait({second}, timeout=0.5)
        server.release.set()

        assert await second == 1
        assert await first == 1
    finally:
        server.release.set()
        await server.stop()


async def test_a_poke_after_the_commit_that_enqueued_mail_wakes_the_running_sender(
    database: Database, mail_server: MailServer, senders: list[MailSender]
) -> None:
    clock = SystemClock()
    sender = sender_for(database, clock, mail_server.port, interval=60)
    senders.append(sender)
    sender.start()
    await until(lambda: sender.rounds >= 1)  # asleep for up to 60 s now
    await enqueue(database, clock)
    sender.poke()
    await until(lambda: len(mail_server.received) == 1, timeout=3)
    assert sender.rounds == 2


async def test_the_running_sender_wakes_by_itself_when_a_retry_falls_due(
    database: Database, senders: list[MailSender]
) -> None:
    clock = SystemClock()
    server = MailServer()
    sender = sender_for(database, clock, server.port, backoff=Backoff(first=0.4 * SECONDS))
    senders.append(sender)
    await enqueue(database, clock)
    sender.start()
    async with asyncio.timeout(3):
        while (await stored(database))[0].last_error is None:  # the first try failed
            await asyncio.sleep(0.01)
    await server.start()
    try:
        await until(lambda: sender.sent == 1, timeout=3)
        await sender.stop()  # lets the send it is in finish and be recorded
    finally:
        await server.stop()
    assert len(server.received) == 1
    (row,) = await stored(database)
    assert row.attempts == 2 and row.sent_at is not None


async def test_stopping_the_sender_cancels_and_awaits_its_task(
    database: Database, clock: FakeClock, mail_server: MailServer
) -> None:
    sender = sender_for(database, clock, mail_server.port)
    sender.start()
    await until(lambda: sender.rounds >= 1)
    assert sender.running
    await sender.stop()
    assert not sender.running


@pytest.mark.parametrize(
    ("env", "named", "problem"),
    [
        ({"DESK_SMTP_PORT": "70000"}, "DESK_SMTP_PORT", "less than or equal to 65535"),
        ({"DESK_SMTP_PORT": "submission"}, "DESK_SMTP_PORT", "valid integer"),
        ({"DESK_SMTP_HOST": "smtp://mail.example.com"}, "DESK_SMTP_HOST", "not a URL"),
        ({"DESK_MAIL_FROM": ""}, "DESK_MAIL_FROM", "required when smtp_host is set"),
        ({"DESK_MAIL_FROM": "calldesk"}, "DESK_MAIL_FROM", "must be an e-mail address"),
        ({"DESK_SMTP_USERNAME": "desk"}, "smtp_password", "required when smtp_username"),
        ({"DESK_SMTP_STARTTLS": "perhaps"}, "DESK_SMTP_STARTTLS", "valid boolean"),
        ({"DESK_SMTP_TIMEOUT": "600"}, "DESK_SMTP_TIMEOUT", "less than or equal to 120"),
        ({"DESK_MAIL_MAX_ATTEMPTS": "0"}, "DESK_MAIL_MAX_ATTEMPTS", "greater than or equal"),
    ],
)
def test_bad_smtp_settings_stop_start_up_with_one_line_naming_the_setting(
    env: dict[str, str], named: str, problem: str
) -> None:
    good = {
        "DESK_SECRET_KEY": TEST_SECRET,
        "DESK_SMTP_HOST": "mail.example.com",
        "DESK_MAIL_FROM": MAIL_FROM,
    }
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={**good, **env})
    message = str(caught.value)
    assert "\n" not in message
    assert named in message
    assert problem in message


def test_by_default_e_mail_is_off_and_no_relay_can_be_built() -> None:
    settings = load_settings(environ={"DESK_SECRET_KEY": TEST_SECRET})
    assert not settings.mail_enabled
    with pytest.raises(ValueError, match="smtp_host is empty"):
        SmtpRelay.from_settings(settings)


def test_smtp_settings_from_the_environment_describe_the_relay() -> None:
    settings = load_settings(
        environ={
            "DESK_SECRET_KEY": TEST_SECRET,
            "DESK_SMTP_HOST": "mail.example.com",
            "DESK_SMTP_PORT": "465",
            "DESK_SMTP_TLS": "true",
            "DESK_SMTP_USERNAME": "desk",
            "DESK_SMTP_PASSWORD": "hunter2",
            "DESK_MAIL_FROM": MAIL_FROM,
        }
    )
    relay = SmtpRelay.from_settings(settings)
    assert (relay.host, relay.port, relay.tls, relay.username) == (
        "mail.example.com",
        465,
        True,
        "desk",
    )
    assert relay.password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(relay)
