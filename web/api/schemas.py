"""Response shapes of the API (request shapes are the domain's drafts and patches)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from desk.models import Customer, CustomerKind, Role, Tier, TimelineEntry, User


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class SkillOut(Out):
    name: str
    level: int


class AgentOut(Out):
    id: int
    extension: str
    interface: str
    team_id: int | None
    skills: list[SkillOut]


class UserOut(Out):
    id: int
    username: str
    display_name: str
    email: str | None
    role: Role
    language: str
    active: bool
    agent: AgentOut | None


class UserPageOut(BaseModel):
    items: list[UserOut]
    total: int


class TeamOut(Out):
    id: int
    name: str
    lead_user_id: int | None


class TeamListOut(BaseModel):
    items: list[TeamOut]


class PhoneOut(Out):
    number_e164: str
    number_raw: str
    label: str


class EmailOut(Out):
    address: str
    label: str


class CustomerOut(BaseModel):
    id: int
    kind: CustomerKind
    name: str
    organisation_id: int | None
    tier: Tier
    language: str
    notes: str
    phones: list[PhoneOut]
    emails: list[EmailOut]
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    version: int


class CustomerPageOut(BaseModel):
    items: list[CustomerOut]
    total: int
    limit: int
    offset: int


class TimelineEntryOut(Out):
    id: int
    kind: str
    ref_id: int | None
    occurred_at: datetime
    summary: str
    data: dict[str, object]


class TimelineOut(BaseModel):
    items: list[TimelineEntryOut]


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class LoginOut(BaseModel):
    token: str
    expires_at: datetime
    user: UserOut


class CustomerQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    q: Annotated[str, StringConstraints(max_length=200)] | None = None
    phone: Annotated[str, StringConstraints(max_length=64)] | None = None
    tier: Tier | None = None
    tag: Annotated[str, StringConstraints(max_length=64)] | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: Annotated[int, Field(ge=1, le=200)] = 100
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


class HealthOut(BaseModel):
    """Liveness: the process answers.  Nothing here waits for the database or Redis
    (that is readiness, ``ReadyOut``); ``ami`` is the link's state as last seen."""

    status: str
    version: str
    ami: dict[str, object]


class CheckOut(BaseModel):
    ok: bool
    error: str | None = None


class ReadyOut(BaseModel):
    """Readiness: each check by name (``database``; ``redis`` and ``ami`` when
    configured) and ``ready`` only when every one passed."""

    status: str
    version: str
    checks: dict[str, CheckOut]


def customer_out(customer: Customer) -> CustomerOut:
    return CustomerOut(
        id=customer.id,
        kind=CustomerKind(customer.kind),
        name=customer.name,
        organisation_id=customer.organisation_id,
        tier=Tier(customer.tier),
        language=customer.language,
        notes=customer.notes,
        phones=[PhoneOut.model_validate(p) for p in customer.phones],
        emails=[EmailOut.model_validate(e) for e in customer.emails],
        tags=[t.tag for t in customer.tags],
        created_at=customer.created_at,
        updated_at=customer.updated_at,
        version=customer.version,
    )


def user_out(user: User) -> UserOut:
    agent = None
    if user.agent is not None:
        agent = AgentOut(
            id=user.agent.id,
            extension=user.agent.extension,
            interface=user.agent.interface,
            team_id=user.agent.team_id,
            skills=[SkillOut(name=s.skill.name, level=s.level) for s in user.agent.skills],
        )
    return UserOut(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        email=user.email,
        role=Role(user.role),
        language=user.language,
        active=user.active,
        agent=agent,
    )


def timeline_out(entries: list[TimelineEntry]) -> TimelineOut:
    return TimelineOut(items=[TimelineEntryOut.model_validate(e) for e in entries])
