"""The public form: a customer opens a ticket with no account and no JavaScript."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from desk.customers import CustomerDraft, EmailIn, PhoneIn, create_customer
from desk.events import UnitOfWork
from desk.models import Customer, Ticket, TicketClock, TimelineEntry
from tests.web.conftest import Desk
from web.pages.public_ticket import form_token, token_is_valid

SECRET = "s" * 40
NOW = datetime(2026, 1, 5, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("token", "at", "valid"),
    [
        (form_token(SECRET, NOW), NOW, True),
        (form_token(SECRET, NOW), NOW + timedelta(hours=3, minutes=59), True),
        (form_token(SECRET, NOW), NOW + timedelta(hours=4, seconds=1), False),
        (form_token(SECRET, NOW + timedelta(minutes=5)), NOW, False),  # from the future
        (form_token("another secret" * 3, NOW), NOW, False),
        ("1767603600.deadbeef", NOW, False),
        ("", NOW, False),
        ("not-a-token", NOW, False),
    ],
)
def test_form_tokens_are_signed_and_expire(token: str, at: datetime, valid: bool) -> None:
    assert token_is_valid(SECRET, token, at) is valid


async def _token(desk: Desk, headers: dict[str, str] | None = None) -> tuple[str, str]:
    response = await desk.client.get("/help/tickets/new", headers=headers or {})
    assert response.status == 200
    page = await response.text()
    found = re.search(r'name="form_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1), page


def _form(token: str, **fields: str) -> dict[str, str]:
    return {
        "form_token": token,
        "name": "Erika Mustermann",
        "email": "erika@example.org",
        "phone": "",
        "subject": "Invoice twice",
        "description": "I was charged twice for November.",
        **fields,
    }


async def _post(desk: Desk, data: dict[str, str]) -> Any:
    return await desk.client.post("/help/tickets", data=data, allow_redirects=False)


async def _count(desk: Desk, model: Any) -> int:
    async with desk.database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_the_form_asks_for_name_email_phone_subject_and_description(desk: Desk) -> None:
    _, page = await _token(desk)
    for field in ("name", "email", "phone", "subject", "description"):
        assert f'name="{field}"' in page
    assert "<script" not in page  # works without JavaScript


async def test_the_form_speaks_chinese_to_a_browser_that_prefers_it(desk: Desk) -> None:
    _, page = await _token(desk, {"Accept-Language": "fr;q=0.9, zh-CN, en;q=0.5"})
    assert "联系我们" in page and 'lang="zh"' in page


async def test_a_new_customer_opens_a_web_ticket_and_sees_its_number(desk: Desk) -> None:
    token, _ = await _token(desk)
    response = await _post(desk, _form(token, phone="030 1234567"))
    assert response.status == 303
    location = response.headers["Location"]
    assert location.startswith("/help/tickets/sent?ticket=")
    page = await (await desk.client.get(location)).text()
    number = location.rsplit("=", 1)[1]
    assert f"#{number}" in page
    async with desk.database.sessions() as session:
        ticket = await session.get(Ticket, int(number))
        assert ticket is not None and ticket.channel == "web" and ticket.status == "new"
        customer = await session.get(Customer, ticket.customer_id)
        assert customer is not None and customer.name == "Erika Mustermann"
        clocks = await session.scalar(
            select(func.count()).where(TicketClock.ticket_id == ticket.id)
        )
        on_timeline = await session.scalar(
            select(func.count()).where(
                TimelineEntry.customer_id == customer.id, TimelineEntry.kind == "ticket"
            )
        )
    assert clocks and on_timeline == 1


async def _existing_customer(desk: Desk) -> int:
    async with UnitOfWork(sessions=desk.database.sessions, bus=desk.bus) as uow:
        customer = await create_customer(
            uow,
            CustomerDraft(
                name="Erika M.",
                emails=[EmailIn(address="erika@example.org")],
                phones=[PhoneIn(number="+49 30 1234567")],
            ),
            region="DE",
            now=desk.clock.now(),
        )
        await uow.commit()
    return customer.id


async def test_a_known_customer_is_found_by_email_whatever_its_case(desk: Desk) -> None:
    known = await _existing_customer(desk)
    token, _ = await _token(desk)
    response = await _post(desk, _form(token, email="Erika@Example.ORG"))
    assert response.status == 303
    async with desk.database.sessions() as session:
        ticket = await session.scalar(select(Ticket).order_by(Ticket.id.desc()))
    assert ticket is not None and ticket.customer_id == known
    assert await _count(desk, Customer) == 1


async def test_a_known_customer_is_found_by_phone_when_the_email_is_new(desk: Desk) -> None:
    known = await _existing_customer(desk)
    token, _ = await _token(desk)
    response = await _post(desk, _form(token, email="new@example.org", phone="030/1234567"))
    assert response.status == 303
    async with desk.database.sessions() as session:
        ticket = await session.scalar(select(Ticket).order_by(Ticket.id.desc()))
    assert ticket is not None and ticket.customer_id == known


async def test_a_bad_email_shows_the_form_again_with_everything_kept(desk: Desk) -> None:
    token, _ = await _token(desk)
    response = await _post(
        desk, _form(token, email="not-an-address", subject="<script>alert(1)</script>")
    )
    assert response.status == 422
    page = await response.text()
    assert 'id="email-problem"' in page and 'value="not-an-address"' in page
    assert "I was charged twice for November." in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert await _count(desk, Ticket) == 0 and await _count(desk, Customer) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", ""), ("subject", "   "), ("description", ""), ("phone", "call me maybe")],
)
async def test_each_missing_or_bad_field_is_named_and_nothing_is_saved(
    desk: Desk, field: str, value: str
) -> None:
    token, _ = await _token(desk)
    response = await _post(desk, _form(token, **{field: value}))
    assert response.status == 422
    assert f'id="{field}-problem"' in await response.text()
    assert await _count(desk, Ticket) == 0 and await _count(desk, Customer) == 0


async def test_a_forged_or_stale_form_is_refused_and_nothing_is_saved(desk: Desk) -> None:
    token, _ = await _token(desk)
    desk.clock.advance(timedelta(hours=5))
    stale = await _post(desk, _form(token))
    forged = await _post(desk, _form("123.abc"))
    assert stale.status == forged.status == 400
    assert await _count(desk, Ticket) == 0


async def test_a_robot_filling_the_hidden_field_is_told_nothing_and_saves_nothing(
    desk: Desk,
) -> None:
    token, _ = await _token(desk)
    response = await _post(desk, _form(token, website="http://spam.example"))
    assert response.status == 303 and response.headers["Location"] == "/help/tickets/sent"
    assert await _count(desk, Ticket) == 0
