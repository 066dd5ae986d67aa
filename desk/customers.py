"""Customers: who they are, how to reach them, and finding them by phone number."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from desk.errors import InvalidInput, NotFound, StaleWrite
from desk.events import CustomerCreated, CustomerDeleted, CustomerUpdated, UnitOfWork
from desk.models import (
    Customer,
    CustomerEmail,
    CustomerKind,
    CustomerPhone,
    CustomerTag,
    Tier,
    TimelineEntry,
)
from desk.phones import CallerNumber, NumberStatus, read_number

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Tag = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=64)
]
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[A-Za-z]{2,4})?$")]


class PhoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    number: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    label: Annotated[str, StringConstraints(max_length=32)] = ""


class EmailIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    address: Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, max_length=320)]
    label: Annotated[str, StringConstraints(max_length=32)] = ""

    @field_validator("address")
    @classmethod
    def _looks_like_email(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError("not an e-mail address")
        return value


class CustomerDraft(BaseModel):
    """A new customer as an agent, the API or an import describes it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: Name
    kind: CustomerKind = CustomerKind.PERSON
    organisation_id: int | None = None
    tier: Tier = Tier.STANDARD
    language: Language = "en"
    notes: Annotated[str, StringConstraints(max_length=5000)] = ""
    phones: Annotated[list[PhoneIn], Field(max_length=20)] = []
    emails: Annotated[list[EmailIn], Field(max_length=20)] = []
    tags: Annotated[list[Tag], Field(max_length=50)] = []


class CustomerPatch(BaseModel):
    """A change to a customer; only the fields given are changed.

    ``version`` is the version the writer last read: a stale write is refused.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    version: int
    name: Name | None = None
    kind: CustomerKind | None = None
    organisation_id: int | None = None
    tier: Tier | None = None
    language: Language | None = None
    notes: Annotated[str, StringConstraints(max_length=5000)] | None = None
    phones: Annotated[list[PhoneIn], Field(max_length=20)] | None = None
    emails: Annotated[list[EmailIn], Field(max_length=20)] | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] | None = None


@dataclass(frozen=True, slots=True)
class PhoneMatch:
    """The customers a number belongs to: none, one, or several candidates."""

    number: CallerNumber
    candidates: tuple[Customer, ...]


def _phone_rows(phones: list[PhoneIn], region: str) -> list[CustomerPhone]:
    rows: dict[str, CustomerPhone] = {}
    errors: dict[str, str] = {}
    for index, phone in enumerate(phones):
        number = read_number(phone.number, region)
        if number.e164 is None:
            errors[f"phones.{index}.number"] = f"{phone.number!r} is not a valid phone number"
            continue
        # The same number twice (in two formats) is one number.
        rows.setdefault(
            number.e164,
            CustomerPhone(number_e164=number.e164, number_raw=phone.number, label=phone.label),
        )
    if errors:
        raise InvalidInput("invalid phone number", fields=errors)
    return list(rows.values())


def _email_rows(emails: list[EmailIn]) -> list[CustomerEmail]:
    unique = {email.address: email for email in emails}
    return [CustomerEmail(address=e.address, label=e.label) for e in unique.values()]


def _tag_rows(tags: list[str]) -> list[CustomerTag]:
    return [CustomerTag(tag=tag) for tag in sorted(set(tags))]


async def _check_organisation(session: AsyncSession, organisation_id: int | None) -> None:
    if organisation_id is None:
        return
    org = await session.get(Customer, organisation_id)
    if org is None or org.kind != CustomerKind.ORGANISATION:
        raise InvalidInput(
            "organisation not found",
            fields={"organisation_id": f"no organisation with id {organisation_id}"},
        )


async def create_customer(
    uow: UnitOfWork, draft: CustomerDraft, *, region: str, now: datetime
) -> Customer:
    session = uow.session
    await _check_organisation(session, draft.organisation_id)
    customer = Customer(
        kind=draft.kind.value,
        name=draft.name,
        search_name=draft.name.casefold(),
        organisation_id=draft.organisation_id,
        tier=draft.tier.value,
        language=draft.language,
        notes=draft.notes,
        created_at=now,
        updated_at=now,
        phones=_phone_rows(draft.phones, region),
        emails=_email_rows(draft.emails),
        tags=_tag_rows(draft.tags),
    )
    session.add(customer)
    await session.flush()
    uow.record(
        CustomerCreated(occurred_at=now, customer_id=customer.id, display_name=customer.name)
    )
    return customer


async def get_customer(session: AsyncSession, customer_id: int) -> Customer:
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} not found")
    return customer


async def update_customer(
    uow: UnitOfWork, customer_id: int, patch: CustomerPatch, *, region: str, now: datetime
) -> Customer:
    session = uow.session
    customer = await get_customer(session, customer_id)
    if customer.version != patch.version:
        raise StaleWrite(
            f"customer {customer_id} was changed by someone else "
            f"(version {customer.version}, you sent {patch.version}); reload and retry",
            fields={"version": f"current version is {customer.version}"},
        )
    given = patch.model_fields_set
    if "organisation_id" in given:
        await _check_organisation(session, patch.organisation_id)
        customer.organisation_id = patch.organisation_id
    if patch.name is not None:
        customer.name = patch.name
        customer.search_name = patch.name.casefold()
    if patch.language is not None:
        customer.language = patch.language
    if patch.notes is not None:
        customer.notes = patch.notes
    if patch.kind is not None:
        customer.kind = patch.kind.value
    if patch.tier is not None:
        customer.tier = patch.tier.value
    if patch.phones is not None:
        customer.phones = _phone_rows(patch.phones, region)
    if patch.emails is not None:
        customer.emails = _email_rows(patch.emails)
    if patch.tags is not None:
        customer.tags = _tag_rows(patch.tags)
    customer.updated_at = now
    await session.flush()
    uow.record(
        CustomerUpdated(occurred_at=now, customer_id=customer.id, display_name=customer.name)
    )
    return customer


async def delete_customer(uow: UnitOfWork, customer_id: int, *, now: datetime) -> None:
    customer = await get_customer(uow.session, customer_id)
    await uow.session.delete(customer)
    await uow.session.flush()
    uow.record(
        CustomerDeleted(occurred_at=now, customer_id=customer_id, display_name=customer.name)
    )


async def match_phone(session: AsyncSession, raw: str | None, *, region: str) -> PhoneMatch:
    """Every customer the number belongs to; none for withheld or invalid numbers."""
    number = read_number(raw, region)
    if number.status is not NumberStatus.VALID:
        return PhoneMatch(number=number, candidates=())
    query = (
        select(Customer)
        .join(CustomerPhone, CustomerPhone.customer_id == Customer.id)
        .where(CustomerPhone.number_e164 == number.e164)
        .order_by(Customer.id)
        .distinct()
    )
    customers = (await session.scalars(query)).all()
    return PhoneMatch(number=number, candidates=tuple(customers))


@dataclass(frozen=True, slots=True)
class CustomerPage:
    items: tuple[Customer, ...]
    total: int


async def search_customers(
    session: AsyncSession,
    *,
    region: str,
    q: str | None = None,
    phone: str | None = None,
    tier: Tier | None = None,
    tag: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> CustomerPage:
    query = select(Customer)
    if phone is not None:
        number = read_number(phone, region)
        if number.e164 is None:
            return CustomerPage(items=(), total=0)
        query = query.where(
            Customer.id.in_(
                select(CustomerPhone.customer_id).where(CustomerPhone.number_e164 == number.e164)
            )
        )
    if q:
        pattern = f"%{_escape_like(q.strip().casefold())}%"
        query = query.where(
            or_(
                Customer.search_name.like(pattern, escape="\\"),
                Customer.id.in_(
                    select(CustomerEmail.customer_id).where(
                        CustomerEmail.address.like(pattern, escape="\\")
                    )
                ),
            )
        )
    if tier is not None:
        query = query.where(Customer.tier == tier.value)
    if tag:
        query = query.where(
            Customer.id.in_(select(CustomerTag.customer_id).where(CustomerTag.tag == tag.lower()))
        )
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.scalars(
        query.order_by(Customer.name, Customer.id).limit(limit).offset(offset)
    )
    return CustomerPage(items=tuple(rows.all()), total=total)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def timeline(
    session: AsyncSession, customer_id: int, *, limit: int = 100
) -> list[TimelineEntry]:
    await get_customer(session, customer_id)
    rows = await session.scalars(
        select(TimelineEntry)
        .where(TimelineEntry.customer_id == customer_id)
        .order_by(TimelineEntry.occurred_at.desc(), TimelineEntry.id.desc())
        .limit(limit)
    )
    return list(rows.all())


def add_to_timeline(
    session: AsyncSession,
    *,
    customer_id: int,
    kind: str,
    ref_id: int | None,
    occurred_at: datetime,
    summary: str,
    data: dict[str, object] | None = None,
) -> TimelineEntry:
    """Other parts (calls, tickets, surveys) put their interactions on the timeline."""
    entry = TimelineEntry(
        customer_id=customer_id,
        kind=kind,
        ref_id=ref_id,
        occurred_at=occurred_at,
        summary=summary[:500],
        data=dict(data or {}),
    )
    session.add(entry)
    return entry
