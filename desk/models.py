"""SQLAlchemy models of the core records.  Alembic migrations own the schema."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from desk.db import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class CustomerKind(StrEnum):
    PERSON = "person"
    ORGANISATION = "organisation"


class Tier(StrEnum):
    STANDARD = "standard"
    GOLD = "gold"
    PLATINUM = "platinum"


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    lead_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]


class Skill(Base):
    __tablename__ = "skills"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(10), default="en")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    agent: Mapped[Agent | None] = relationship(
        back_populates="user", uselist=False, lazy="selectin", cascade="all, delete-orphan"
    )


class Agent(Base):
    """A user's identity on the PBX: the phone they answer and their queue skills."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    extension: Mapped[str] = mapped_column(String(32), unique=True)
    interface: Mapped[str] = mapped_column(String(80), unique=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))

    user: Mapped[User] = relationship(back_populates="agent")
    skills: Mapped[list[AgentSkill]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="AgentSkill.skill_id"
    )


class AgentSkill(Base):
    __tablename__ = "agent_skills"

    agent_id: Mapped[int] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    skill_id: Mapped[int] = mapped_column(
        ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True
    )
    level: Mapped[int] = mapped_column(Integer, default=1)

    skill: Mapped[Skill] = relationship(lazy="selectin")


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    # Case-folded copy for search: SQLite's lower() only folds ASCII (Müller, ÉLISE).
    search_name: Mapped[str] = mapped_column(String(200), index=True)
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL")
    )
    tier: Mapped[str] = mapped_column(String(20), default=Tier.STANDARD.value)
    language: Mapped[str] = mapped_column(String(10), default="en")
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Optimistic lock: a stale write is refused instead of silently overwriting.
    version: Mapped[int] = mapped_column(Integer, default=1)

    phones: Mapped[list[CustomerPhone]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="CustomerPhone.id"
    )
    emails: Mapped[list[CustomerEmail]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="CustomerEmail.id"
    )
    tags: Mapped[list[CustomerTag]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="CustomerTag.tag"
    )

    __mapper_args__ = {"version_id_col": version}


class CustomerPhone(Base):
    __tablename__ = "customer_phones"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    number_e164: Mapped[str] = mapped_column(String(20), index=True)
    number_raw: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(32), default="")

    __table_args__ = (UniqueConstraint("customer_id", "number_e164"),)


class CustomerEmail(Base):
    __tablename__ = "customer_emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(320), index=True)
    label: Mapped[str] = mapped_column(String(32), default="")

    __table_args__ = (UniqueConstraint("customer_id", "address"),)


class CustomerTag(Base):
    __tablename__ = "customer_tags"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class TimelineEntry(Base):
    """One interaction with a customer: a call, a ticket, a survey answer, ..."""

    __tablename__ = "timeline_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    ref_id: Mapped[int | None]
    occurred_at: Mapped[datetime]
    summary: Mapped[str] = mapped_column(String(500))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_timeline_customer_time", "customer_id", "occurred_at"),)


class AuthSession(Base):
    """A signed-in browser or API client; only the token's hash is stored."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class CallDirection(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


class CallOutcome(StrEnum):
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    MISSED = "missed"
    TRANSFERRED = "transferred"


class Call(Base):
    """The call log: every call once, keyed by the PBX's call id (Linkedid)."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), unique=True)
    direction: Mapped[str] = mapped_column(String(16))
    caller_raw: Mapped[str] = mapped_column(String(64))
    caller_e164: Mapped[str | None] = mapped_column(String(20), index=True)
    caller_name: Mapped[str] = mapped_column(String(200), default="")
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    queue: Mapped[str | None] = mapped_column(String(80))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    agents: Mapped[list[int]] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime] = mapped_column(index=True)
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    wait_seconds: Mapped[float | None]
    talk_seconds: Mapped[float | None]
    outcome: Mapped[str | None] = mapped_column(String(16))

    # After every PBX resync the log closes the calls still open that the PBX no longer
    # lists: a handful of rows, found without reading the whole log.
    __table_args__ = (
        Index(
            "ix_calls_open",
            "started_at",
            postgresql_where=text("ended_at IS NULL"),
            sqlite_where=text("ended_at IS NULL"),
        ),
    )


class ScreenPop(Base):
    """A pop sent to an agent; the unique key makes each (call, agent, phase) pop once,
    across AMI reconnects, duplicate events and several processes."""

    __tablename__ = "screen_pops"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64))
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    phase: Mapped[str] = mapped_column(String(16))
    sent_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("call_id", "agent_id", "phase"),)


class TicketStatus(StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    ON_HOLD = "on_hold"
    SOLVED = "solved"
    CLOSED = "closed"


class TicketPriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class TicketChannel(StrEnum):
    PHONE = "phone"
    WEB = "web"
    EMAIL = "email"
    API = "api"


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), index=True)
    priority: Mapped[str] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    # Lower-case labels, sorted, each once (agents and automation rules set them).
    tags: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    solved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class MessageKind(StrEnum):
    PUBLIC_REPLY = "public_reply"
    INTERNAL_NOTE = "internal_note"
    CUSTOMER_MESSAGE = "customer_message"


class TicketMessage(Base):
    """A reply the customer sees, an internal note they never see, or their own message."""

    __tablename__ = "ticket_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class TicketCall(Base):
    """A call that belongs to a ticket (the call it came from, callbacks, follow-ups)."""

    __tablename__ = "ticket_calls"

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    call_id: Mapped[int] = mapped_column(
        ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class TicketChange(Base):
    """The audit trail: who changed what on a ticket, when, from what to what."""

    __tablename__ = "ticket_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    field: Mapped[str] = mapped_column(String(32))
    old: Mapped[str | None] = mapped_column(Text)
    new: Mapped[str | None] = mapped_column(Text)


class TicketClock(Base):
    """One SLA clock of a ticket: its policy, its state (``routing.sla.ClockState``
    as JSON) and the due times derived from it, kept for queries and the board."""

    __tablename__ = "ticket_clocks"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    clock: Mapped[str] = mapped_column(String(32))
    policy: Mapped[str] = mapped_column(String(100))
    # How often the clock has started afresh (next response: once per customer message).
    cycle: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    warn_at: Mapped[datetime | None]
    breached_at: Mapped[datetime | None]
    escalated_level: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("ticket_id", "clock"),)


class SlaTimer(Base):
    """A moment an SLA clock must be acted on: its warning, its breach, an escalation
    level.  ``fired_at`` is set once, when a watcher claims the timer."""

    __tablename__ = "sla_timers"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    clock: Mapped[str] = mapped_column(String(32))
    cycle: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(16))
    level: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime]
    fired_at: Mapped[datetime | None]

    # "Earliest unfired" and "due now" both read the fired_at IS NULL prefix in due order.
    __table_args__ = (
        Index("ix_sla_timers_pending", "fired_at", "due_at"),
        # "When is the next unfired timer due" must not scan the fired ones: with a
        # million tickets PostgreSQL otherwise reads the whole table (~0.5 s).
        Index(
            "ix_sla_timers_unfired",
            "due_at",
            "level",
            "id",
            postgresql_where=text("fired_at IS NULL"),
            sqlite_where=text("fired_at IS NULL"),
        ),
    )


class OutboxMessage(Base):
    """A message to send once the transaction that wrote it has committed (the
    outbox): written with the change that causes it, delivered later by its
    sender, kept after it is sent or given up on.  ``next_attempt_at`` is when
    it is due (or, while a sender holds it, when that claim lapses); it is
    empty once the message is sent or failed.  ``attempts`` counts claims, and
    the claim that is still current is the one whose count matches."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # the channel: "mail"
    # What the message is about, e.g. "escalation:<ticket>:<clock>:<cycle>:<level>":
    # enqueueing the same key again is a no-op.
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    to: Mapped[list[str]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    # An HTML alternative to the plain-text body (surveys: their faces are links).
    html_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    sent_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class SlaConfigRevision(Base):
    """SLA calendars, policies and escalation as an admin saved them through the API.

    The newest revision wins over config/sla.toml; older ones stay as the record of
    who changed the service levels, when, and why.  ``config`` has the shape of the
    file's ``[sla]`` tables: ``calendars``, ``policies``, ``escalation``.
    """

    __tablename__ = "sla_config_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(String(500), default="")
    changed_at: Mapped[datetime]
    changed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class SurveyTemplate(Base):
    """The questions a survey asks, chosen per team and/or channel.  Editing one
    writes a new ``SurveyTemplateVersion``: a sent survey keeps the version it
    was sent with, so old answers keep their meaning."""

    __tablename__ = "survey_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # Empty team and channel: the fallback for everything no other template covers.
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    channel: Mapped[str | None] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SurveyTemplateVersion(Base):
    __tablename__ = "survey_template_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("survey_templates.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    # [{"key", "kind" (csat, nps, ces, yes_no, text), "required", "label": {lang: text}}]
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    __table_args__ = (UniqueConstraint("template_id", "version"),)


class Survey(Base):
    """One survey sent to one customer about one ticket or call, and its answer.

    Who and what it was about (agent, team, queue, tier, channel) is copied in
    when it is sent, so reports keep what was true then.  The answer lives on
    the same row: the first submit sets ``answered_at`` (one response per survey)."""

    __tablename__ = "surveys"

    id: Mapped[int] = mapped_column(primary_key=True)
    template_version_id: Mapped[int] = mapped_column(
        ForeignKey("survey_template_versions.id", ondelete="RESTRICT")
    )
    trigger: Mapped[str] = mapped_column(String(16))  # ticket_solved, call_answered, manual
    channel: Mapped[str] = mapped_column(String(16))  # how it is delivered: email
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    recipient: Mapped[str] = mapped_column(String(320))
    language: Mapped[str] = mapped_column(String(10))
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), index=True
    )
    call_id: Mapped[int | None] = mapped_column(
        ForeignKey("calls.id", ondelete="SET NULL"), index=True
    )
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    queue: Mapped[str | None] = mapped_column(String(80))
    # The ticket's channel (phone, web, email …) or "phone" for a call: reports group by it.
    source_channel: Mapped[str] = mapped_column(String(16))
    tier: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(index=True)
    send_at: Mapped[datetime] = mapped_column(index=True)  # reports: surveys sent in a window
    expires_at: Mapped[datetime]
    withdrawn_at: Mapped[datetime | None]
    withdrawn_reason: Mapped[str | None] = mapped_column(String(64))
    answered_at: Mapped[datetime | None] = mapped_column(index=True)
    changed_at: Mapped[datetime | None]
    csat: Mapped[int | None] = mapped_column(Integer)
    nps: Mapped[int | None] = mapped_column(Integer)
    ces: Mapped[int | None] = mapped_column(Integer)
    # The other questions' answers by question key (yes/no, free text).
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    comment: Mapped[str | None] = mapped_column(Text)
    may_contact: Mapped[bool | None] = mapped_column(Boolean)

    __table_args__ = (
        # Fatigue ("one survey per customer per period") and the caller card's
        # "last satisfaction" both read a customer's newest surveys.
        Index("ix_surveys_customer_created", "customer_id", "created_at"),
        Index("ix_surveys_customer_answered", "customer_id", "answered_at"),
    )


class SurveyFollowUp(Base):
    """A low score someone must look at: on the board until acknowledged with a note."""

    __tablename__ = "survey_follow_ups"

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(
        ForeignKey("surveys.id", ondelete="CASCADE"), unique=True
    )
    raised_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(200))
    reopened_ticket: Mapped[bool] = mapped_column(Boolean, default=False)
    lead_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(index=True)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(Text)


class SurveyOptOut(Base):
    """A customer who asked not to be surveyed (from a survey page or by an agent)."""

    __tablename__ = "survey_opt_outs"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    opted_out_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(32))


class LoginFailures(Base):
    """Recent failed sign-ins under one username as typed (case-folded), whether or
    not such a user exists, and the lock they caused (``desk.lockout``).  Keyed by
    the name rather than the user so an unknown name costs the same write and is
    locked the same way: neither reveals which accounts exist."""

    __tablename__ = "login_failures"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    # When the failures still inside the counting window happened (ISO 8601 UTC).
    failed_at: Mapped[list[str]] = mapped_column(JSON, default=list)
    locked_until: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(index=True)


class CustomerAuditEntry(Base):
    """Who read or changed which customer, when, how and from where.

    No foreign keys: the entry outlives the customer (a deletion is audited too)
    and the user (the name and role are copied in)."""

    __tablename__ = "customer_audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int]
    at: Mapped[datetime]
    user_id: Mapped[int | None]
    username: Mapped[str] = mapped_column(String(64), default="")
    role: Mapped[str] = mapped_column(String(20), default="")
    action: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    request_id: Mapped[str] = mapped_column(String(64), default="")
    address: Mapped[str] = mapped_column(String(64), default="")

    __table_args__ = (Index("ix_customer_audit_customer_at", "customer_id", "at"),)


class CustomerErasure(Base):
    """A customer whose personal data was erased (``desk.customer_privacy``): the
    record stays, anonymised, so statistics keep counting it."""

    __tablename__ = "customer_erasures"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    erased_at: Mapped[datetime]
    erased_by: Mapped[int | None]
