"""Delivers the outbox's e-mail over SMTP (aiosmtplib); one owned task per process.

``MailSender`` sleeps until the earliest message is due, or until ``poke()`` (a
commit enqueued mail), and wakes at least every ``interval`` seconds so other
processes' mail and a jumped clock are noticed.  Each round claims due messages
in batches (``desk.outbox.claim_due``), sends a batch's messages side by side,
each on its own connection, and records each outcome in its own transaction.
A claimed batch is finished even when the sender is being stopped, so a stop
waits at most the SMTP timeout and never leaves a half-known send behind.

``compose`` builds the message (pure); ``SmtpRelay`` is the one place that
talks to the mail server.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import aiosmtplib
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from desk.background import PokedLoop
from desk.clock import Clock
from desk.outbox import (
    CLAIM_LEASE,
    Backoff,
    ClaimedMessage,
    claim_due,
    error_text,
    next_due,
    record_failure,
    record_sent,
    retry_at,
)
from desk.settings import Settings

log = logging.getLogger(__name__)
# When something is due but another sender holds it, look again this soon.
RETRY_SECONDS = 0.5


class MailNotSendable(ValueError):
    """The message itself is broken (an address, a header): sending it again won't help."""


def compose(message: ClaimedMessage, *, mail_from: str) -> EmailMessage:
    """The e-mail for an outbox message.  Its Message-ID is derived from the
    message, so a repeated send (see ``desk.outbox``) can be recognised."""
    _, sender = parseaddr(mail_from)
    domain = sender.rpartition("@")[2] or "localhost"
    digest = hashlib.sha256(message.dedupe_key.encode()).hexdigest()[:20]
    email = EmailMessage()
    try:
        email["From"] = mail_from
        email["To"] = [_address(to) for to in message.to]
        email["Subject"] = " ".join(message.subject.split())
    except (ValueError, IndexError, MessageError) as error:
        raise MailNotSendable(str(error)) from None
    email["Date"] = format_datetime(message.created_at)
    email["Message-ID"] = f"<outbox.{message.id}.{digest}@{domain}>"
    # RFC 3834: a notification, not a person writing; vacation replies stay away.
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(message.body)
    if message.html is not None:
        email.add_alternative(message.html, subtype="html")
    return email


def _address(text: str) -> Address:
    name, address = parseaddr(text)
    if "@" not in address or any(c.isspace() for c in address):
        raise MailNotSendable(f"not an e-mail address: {text!r}")
    return Address(display_name=name, addr_spec=address)


def refused_for_good(error: BaseException) -> bool:
    """The server refused this message itself (5xx to every recipient, or to its
    content): retrying will not help.  Everything else — the server is away,
    busy (4xx), or refuses us (sign-in, sender) until someone fixes the settings
    — is worth retrying."""
    if isinstance(error, MailNotSendable):
        return True
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return all(refusal.code >= 500 for refusal in error.recipients)
    return isinstance(error, aiosmtplib.SMTPDataError) and error.code >= 500


@dataclass(frozen=True, kw_only=True)
class SmtpRelay:
    """The mail server we hand messages to, as the settings describe it."""

    host: str
    port: int
    mail_from: str
    username: str = ""
    password: SecretStr = field(default_factory=lambda: SecretStr(""))
    starttls: bool = True
    tls: bool = False  # implicit TLS (port 465); STARTTLS is then not used
    timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpRelay:
        if not settings.mail_enabled:
            raise ValueError("e-mail is off: smtp_host is empty")
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            mail_from=settings.mail_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            tls=settings.smtp_tls,
            timeout=settings.smtp_timeout,
        )

    async def deliver(self, email: EmailMessage, *, recipients: Sequence[str]) -> dict[str, str]:
        """Hand the message over; the recipients the server refused (others got it).
        The whole exchange ends within ``timeout`` seconds."""
        async with asyncio.timeout(self.timeout):
            refused, _ = await aiosmtplib.send(
                email,
                sender=parseaddr(self.mail_from)[1],
                recipients=[parseaddr(to)[1] for to in recipients],
                hostname=self.host,
                port=self.port,
                username=self.username or None,
                password=self.password.get_secret_value() or None,
                use_tls=self.tls,
                start_tls=False if self.tls else self.starttls,
                timeout=self.timeout,
            )
        return {to: f"{response.code} {response.message}" for to, response in refused.items()}


@dataclass(frozen=True)
class _Outcome:
    message: ClaimedMessage
    at: datetime
    sent: bool
    text: str | None = None
    retry: datetime | None = None


class MailSender:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        reads: async_sessionmaker[AsyncSession] | None = None,
        clock: Clock,
        relay: SmtpRelay,
        max_attempts: int = 10,
        backoff: Backoff | None = None,
        batch: int = 10,
        interval: float = 60.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if interval <= 0 or batch < 1 or max_attempts < 1:
            raise ValueError("the mail sender needs a positive interval, batch and attempts")
        if timedelta(seconds=2 * relay.timeout) >= CLAIM_LEASE:
            raise ValueError(f"the SMTP timeout must be well under the claim lease {CLAIM_LEASE}")
        self._sessions, self._reads = sessions, reads or sessions
        self._clock = clock
        self._relay = relay
        self._max_attempts = max_attempts
        self._backoff = backoff or Backoff()
        self._batch = batch
        self._interval = interval
        self._jitter = jitter
        # One round at a time in this process: a caller of send_due that arrives while
        # the loop (poked by a commit) holds a batch waits for that batch to be sent
        # and recorded rather than returning early with the mail still on its way.
        self._sending = asyncio.Lock()
        self._loop = PokedLoop("mail-sender", self._round, retry=interval)
        # Outcomes the database did not take (it was away); written next round.
        self._unrecorded: list[_Outcome] = []
        self.sent = 0  # messages this sender delivered

    # --- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    @property
    def running(self) -> bool:
        return self._loop.running

    @property
    def rounds(self) -> int:
        return self._loop.rounds

    def poke(self) -> None:
        """Mail was enqueued (a commit): look now instead of at the old wake time."""
        self._loop.poke()

    async def _round(self) -> float:
        due = await self._next_due()
        if self._unrecorded or (due is not None and due <= self._clock.now()):
            await self.send_due()
        return await self._delay()

    async def _next_due(self) -> datetime | None:
        async with self._reads() as session:
            return await next_due(session)

    async def _delay(self) -> float:
        due = await self._next_due()
        if due is None:
            return self._interval
        seconds = (due - self._clock.now()).total_seconds()
        if seconds <= 0:  # due, but another sender holds it
            return min(RETRY_SECONDS, self._interval)
        return min(seconds, self._interval)

    # --- sending ------------------------------------------------------------------

    async def send_due(self) -> int:
        """Send every message due by now, batch by batch; how many were delivered."""
        async with self._sending:
            return await self._send_due()

    async def _send_due(self) -> int:
        await self._record_again()
        delivered = 0
        while True:
            async with self._sessions() as session, session.begin():
                claimed = await claim_due(session, now=self._clock.now(), limit=self._batch)
            if not claimed:  # nothing due, or all of it held by another sender
                return delivered
            # Once claimed, a batch is sent and recorded even if the sender is being
            # stopped: cancelling mid-send would leave unknown whether it went out.
            finish = asyncio.ensure_future(self._send_batch(claimed))
            try:
                delivered += await asyncio.shield(finish)
            except asyncio.CancelledError:
                await finish
                raise

    async def _send_batch(self, claimed: list[ClaimedMessage]) -> int:
        sent = await asyncio.gather(*(self._send_one(message) for message in claimed))
        return sum(sent)

    async def _send_one(self, message: ClaimedMessage) -> bool:
        try:
            email = compose(message, mail_from=self._relay.mail_from)
            refused = await self._relay.deliver(email, recipients=message.to)
        except Exception as error:  # the server, the network or the message: recorded
            outcome = self._failed(message, error)
        else:
            note = "; ".join(f"refused {to}: {why}" for to, why in refused.items()) or None
            outcome = _Outcome(message, self._clock.now(), sent=True, text=note)
            self.sent += 1
        await self._record(outcome)
        return outcome.sent

    def _failed(self, message: ClaimedMessage, error: Exception) -> _Outcome:
        now = self._clock.now()
        retry = retry_at(
            attempts=message.attempts,
            max_attempts=self._max_attempts,
            now=now,
            backoff=self._backoff,
            jitter=self._jitter(),
            permanent=refused_for_good(error),
        )
        text = error_text(error, message.attempts)
        if retry is None:
            log.error("mail %s (%s) failed for good: %s", message.id, message.dedupe_key, text)
        else:
            log.warning("mail %s failed, next try at %s: %s", message.id, retry.isoformat(), text)
        return _Outcome(message, now, sent=False, text=text, retry=retry)

    async def _record(self, outcome: _Outcome) -> None:
        try:
            async with self._sessions() as session, session.begin():
                if outcome.sent:
                    current = await record_sent(
                        session, outcome.message, now=outcome.at, note=outcome.text
                    )
                else:
                    current = await record_failure(
                        session,
                        outcome.message,
                        now=outcome.at,
                        error=outcome.text or "",
                        retry=outcome.retry,
                    )
        except Exception:
            log.exception("could not record mail %s; trying again", outcome.message.id)
            self._unrecorded.append(outcome)
            return
        if not current:
            log.warning(
                "mail %s: its claim lapsed before the outcome was recorded", outcome.message.id
            )

    async def _record_again(self) -> None:
        pending, self._unrecorded = self._unrecorded, []
        for outcome in pending:
            await self._record(outcome)
