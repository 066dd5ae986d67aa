"""A real SMTP server for tests: aiosmtpd's SMTP protocol listening on localhost
in the test's own event loop, keeping every message it accepts."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, cast

from aiosmtpd.smtp import SMTP, Envelope, Session

from desk.mail_sender import SmtpRelay
from desk.settings import Settings, load_settings
from tests.conftest import TEST_SECRET

MAIL_FROM = "Calldesk <desk@example.com>"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class MailServer:
    """Start and stop it at will; ``port`` stays the same, so a sender configured
    for it sees the server go away and come back."""

    port: int = field(default_factory=free_port)
    # Recipients answered with "550 no such user".
    refuse: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    _server: asyncio.Server | None = None

    async def start(self) -> MailServer:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="mail.test"), "127.0.0.1", self.port, reuse_address=True
        )
        return self

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode()
        raw = raw.replace(b"\r\n", b"\n")  # as a mail client reads it off the wire
        self.received.append(
            Received(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                message=cast(EmailMessage, message_from_bytes(raw, policy=policy.default)),
            )
        )
        return "250 OK"

    def subjects(self) -> list[str]:
        return [str(mail.message["Subject"]) for mail in self.received]


def mail_settings(port: int, **overrides: Any) -> Settings:
    """Test settings with e-mail on, to a plain (no TLS) server on localhost."""
    return load_settings(
        environ={},
        overrides={
            "mode": "test",
            "secret_key": TEST_SECRET,
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_starttls": False,
            "smtp_timeout": 5,
            "mail_from": MAIL_FROM,
            **overrides,
        },
    )


def relay_to(port: int) -> SmtpRelay:
    return SmtpRelay.from_settings(mail_settings(port))
