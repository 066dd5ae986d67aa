"""Whom to survey, when, and why not: the survey policy from the settings and the
one pure decision (``decide``) every trigger goes through."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from desk.models import Ticket
from desk.settings import Settings, SurveyTriggerSettings
from desk.survey_questions import LowScoreRule

EMAIL = "email"


class Trigger(StrEnum):
    TICKET_SOLVED = "ticket_solved"
    CALL_ANSWERED = "call_answered"
    MANUAL = "manual"


class Skip(StrEnum):
    """Why no survey was sent."""

    TRIGGER_OFF = "trigger_off"
    NO_CUSTOMER = "no_customer"
    OPTED_OUT = "opted_out"
    RECENTLY_SURVEYED = "recently_surveyed"
    EXCLUDED_TICKET = "excluded_ticket"
    UNREACHABLE = "unreachable"
    SHORT_CALL = "short_call"


@dataclass(frozen=True, kw_only=True)
class TriggerPolicy:
    enabled: bool
    delay: timedelta
    channels: tuple[str, ...]
    min_talk_seconds: float = 0

    @classmethod
    def from_settings(cls, trigger: SurveyTriggerSettings) -> TriggerPolicy:
        return cls(
            enabled=trigger.enabled,
            delay=timedelta(minutes=trigger.delay_minutes),
            channels=tuple(trigger.channels),
            min_talk_seconds=trigger.min_talk_seconds,
        )


MANUAL_POLICY = TriggerPolicy(enabled=True, delay=timedelta(0), channels=(EMAIL,))


@dataclass(frozen=True, kw_only=True)
class SurveyPolicy:
    ticket_solved: TriggerPolicy
    call_answered: TriggerPolicy
    period: timedelta
    lifetime: timedelta
    excluded_tags: frozenset[str]
    # Channels we can deliver on now (e-mail needs an SMTP server).
    channels_available: frozenset[str]
    link_base: str

    def excludes(self, ticket: Ticket) -> bool:
        """Spam, duplicates (by their tags): never surveyed."""
        return bool(self.excluded_tags & {tag.lower() for tag in ticket.tags or []})

    @classmethod
    def from_settings(cls, settings: Settings) -> SurveyPolicy:
        return cls(
            ticket_solved=TriggerPolicy.from_settings(settings.surveys_ticket_solved),
            call_answered=TriggerPolicy.from_settings(settings.surveys_call_answered),
            period=timedelta(days=settings.surveys_period_days),
            lifetime=timedelta(days=settings.surveys_expire_days),
            excluded_tags=frozenset(tag.lower() for tag in settings.surveys_excluded_tags),
            channels_available=frozenset({EMAIL} if settings.mail_enabled else ()),
            link_base=settings.survey_link_base,
        )


@dataclass(frozen=True, kw_only=True)
class Recipient:
    channel: str
    address: str


def decide(
    *,
    trigger: TriggerPolicy,
    available: frozenset[str],
    opted_out: bool,
    last_survey_at: datetime | None,
    period: timedelta,
    excluded: bool,
    emails: tuple[str, ...],
    now: datetime,
    ignore_period: bool = False,
) -> Recipient | Skip:
    """Send to whom, or why not (pure)."""
    if not trigger.enabled:
        return Skip.TRIGGER_OFF
    if excluded:
        return Skip.EXCLUDED_TICKET
    if opted_out:
        return Skip.OPTED_OUT
    if not ignore_period and last_survey_at is not None and now - last_survey_at < period:
        return Skip.RECENTLY_SURVEYED
    for channel in trigger.channels:
        if channel == EMAIL and channel in available and emails:
            return Recipient(channel=EMAIL, address=emails[0])
    return Skip.UNREACHABLE


def low_score_rule(settings: Settings) -> LowScoreRule:
    """The ``[surveys] low_*`` thresholds; -1 (TOML has no null) switches a scale off."""

    def limit(value: int) -> int | None:
        return value if value >= 0 else None

    return LowScoreRule(
        csat_at_most=limit(settings.surveys_low_csat),
        nps_at_most=limit(settings.surveys_low_nps),
        ces_at_most=limit(settings.surveys_low_ces),
    )
