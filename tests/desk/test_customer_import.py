from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from desk.clock import FakeClock
from desk.customer_import import ImportFileError, ImportReport, import_customers
from desk.customers import CustomerDraft, PhoneIn, create_customer, match_phone
from desk.errors import InvalidInput
from desk.events import CustomerCreated, DomainEvent, EventBus, UnitOfWork
from desk.models import Customer

FIXTURES = Path(__file__).parent / "fixtures"
HEADER = "name,kind,tier,language,phones,emails,tags,notes"


async def run_import(
    database: Any, bus: EventBus, clock: FakeClock, source: Any, **kwargs: Any
) -> ImportReport:
    if isinstance(source, str):
        source = source.encode("utf-8")
    return await import_customers(
        source, sessions=database.sessions, bus=bus, region="DE", now=clock.now(), **kwargs
    )


async def customer_names(database: Any) -> list[str]:
    async with database.sessions() as session:
        return list((await session.scalars(select(Customer.name).order_by(Customer.id))).all())


async def customer_count(database: Any) -> int:
    async with database.sessions() as session:
        return await session.scalar(select(func.count()).select_from(Customer)) or 0


@pytest.mark.parametrize(
    ("bad_row", "field"),
    [
        ("Broken Number,person,standard,en,12ab,,,", "phones"),
        (",person,gold,de,030 5550001,,,", "name"),
        ("Wrong Tier,person,diamond,en,030 5550002,,,", "tier"),
        ("Bad Mail,person,standard,en,030 5550003,not-an-address,,", "emails"),
    ],
    ids=["bad phone", "missing name", "bad tier", "bad email"],
)
async def test_a_bad_row_is_reported_with_its_line_and_field_and_the_good_rows_are_imported(
    database: Any, bus: EventBus, clock: FakeClock, bad_row: str, field: str
) -> None:
    csv_text = "\n".join(
        [HEADER, "Anna Alt,,,,030 1111111,,,", bad_row, "Ben Bach,,,,030 2222222,,,"]
    )

    report = await run_import(database, bus, clock, csv_text)

    assert [(issue.line, issue.field) for issue in report.errors] == [(3, field)]
    assert (report.rows_read, report.created, report.failed) == (3, 2, 1)
    assert await customer_names(database) == ["Anna Alt", "Ben Bach"]


async def test_the_sample_file_imports_its_good_rows_and_reports_each_bad_one(
    database: Any, bus: EventBus, clock: FakeClock
) -> None:
    report = await run_import(database, bus, clock, FIXTURES / "customers_mixed.csv")

    assert report.created == 4
    assert [(i.line, i.field) for i in report.errors] == [
        (5, "phones"),
        (6, "name"),
        (7, "tier"),
        (8, "emails"),
    ]
    assert "'12ab' is not a valid phone number" in report.errors[0].message


@pytest.mark.parametrize("delimiter", [";", "\t", ","], ids=["semicolon", "tab", "comma"])
async def test_the_delimiter_is_taken_from_the_header_line(
    database: Any, bus: EventBus, clock: FakeClock, delimiter: str
) -> None:
    rows = [["name", "tier", "phones"], ["Müller, Anna", "gold", "030 1111111"]]
    csv_text = "\n".join(delimiter.join(f'"{cell}"' for cell in row) for row in rows)

    report = await run_import(database, bus, clock, csv_text)

    assert (report.created, report.errors) == (1, [])
    assert await customer_names(database) == ["Müller, Anna"]


async def test_a_utf8_byte_order_mark_does_not_hide_the_name_column(
    database: Any, bus: EventBus, clock: FakeClock
) -> None:
    data = codecs.BOM_UTF8 + "Name;Phones\r\nJürgen Groß;030 1111111\r\n".encode()

    report = await run_import(database, bus, clock, data)

    assert report.created == 1
    assert await customer_names(database) == ["Jürgen Groß"]


async def test_a_windows_1252_file_is_read_with_a_warning(
    database: Any, bus: EventBus, clock: FakeClock
) -> None:
    data = "name;phones\nJürgen Groß;030 1111111\n".encode("cp1252")

    report = await run_import(database, bus, clock, data)

    assert await customer_names(database) == ["Jürgen Groß"]
    assert any("Windows-1252" in warning for warning in report.warnings)


async def test_a_file_in_no_known_encoding_is_refused_with_a_clear_error(
    database: Any, bus: EventBus, clock: FakeClock
) -> None:
    with pytest.raises(ImportFileError, match="neither UTF-8"):
        await run_import(database, bus, clock, b"name\nA\x81\x8d\n")


async def test_a_header_without_a_name_column_is_refused_before_any_row_is_imported(
    database: Any, bus: EventBus, clock: FakeClock
) -> None:
    csv_text = "full_name,phones\nAnna Alt,030 1111111\n"

    with pytest.raises(ImportFileError, match="no name column"):
        await run_import(database, bus, clock, csv_text)
    assert await customer_count(database) == 0


async def test_unknown_columns_are_ignored_with_a_single_warning(
    database: Any, bus: EventBus, clock: FakeClock
) -> None:
    csv_text = "name,shoe size,phones\nAnna Alt,38,030 1111111\nBen Bach,44,030 2222222\n"

    report = await run_import(database, bus, clock, csv_text)

    assert report.created == 2
    assert report.warnings == ["unknown columns ignored: shoe size"]


async def test_blank_lines_are_skipped_and_errors_keep_the_files_line_numbers(
    database: Any, bus: EventBus, clock: FakeClock
) -> None:
    csv_text = "\nname,tier\n\nAnna Alt,gold\n\n,gold\n"

    report = await run_import(database, bus, clock, csv_text)

    assert (report.rows_read, report.created) == (2, 1)
    assert [(issue.line, issue.field) for issue in report.errors] == [(6, "name")]


async def test_a_row_with_more_cells_than_the_header_is_refused(
    database: Any, bus: EventBus, clock: FakeClock
) -> None:
    csv_text = "name,phones\nAlt, Anna,030 1111111\n"

    report = await run_import(database, bus, clock, csv_text)

    assert report.created == 0
    assert [(issue.line, issue.field) for issue in report.errors] == [(2, "row")]


async def test_a_row_whose_number_belongs_to_a_customer_of_that_name_is_skipped_as_duplicate(
    database: Any, bus: EventBus, clock: FakeClock
) -> None:
    async with UnitOfWork(sessions=database.sessions, bus=bus) as uow:
        draft = CustomerDraft(name="Anna Alt", phones=[PhoneIn(number="+49 30 1111111")])
        existing = await create_customer(uow, draft, region="DE", now=clock.now())
        await uow.commit()
    csv_text = "name,phones\nanna  ALT,030-111 1111\nBen Bach,030 1111111\n"

    report = await run_import(database, bus, clock, csv_text)

    assert [(issue.line, issue.field) for issue in report.duplicates] == [(2, "phones")]
    assert f"customer {existing.id}" in report.duplicates[0].message
    assert (report.created, report.errors) == (1, [])


async def test_importing_the_same_file_twice_creates_nothing_the_second_time(
    database: Any, bus: EventBus, clock: FakeClock
) -> None:
    await run_import(database, bus, clock, FIXTURES / "customers_mixed.csv")

    again = await run_import(database, bus, clock, FIXTURES / "customers_mixed.csv")

    assert (again.created, len(again.duplicates)) == (0, 4)
    assert await customer_count(database) == 4


async def test_the_progress_callback_hears_the_rows_done_after_each_batch(
    database: Any, bus: EventBus, clock: FakeClock
) -> None:
    rows = [f"Person {n},030 {1000000 + n}" for n in range(5)]
    seen: list[int] = []

    await run_import(
        database,
        bus,
        clock,
        "\n".join(["name,phones", *rows]),
        batch_size=2,
        on_progress=seen.append,
    )

    assert seen == [2, 4, 5]


async def test_phones_are_stored_in_e164_and_found_in_any_format(
    database: Any, bus: EventBus, clock: FakeClock
) -> None:
    csv_text = 'name,phones\nAnna Alt,"(030) 123-4567 | +1 (415) 555-0100"\n'

    await run_import(database, bus, clock, csv_text)

    async with database.sessions() as session:
        customer = await session.scalar(select(Customer))
        assert customer is not None
        assert [phone.number_e164 for phone in customer.phones] == ["+49301234567", "+14155550100"]
        for dialled in ("+49301234567", "0049 30 1234567", "030 1234567", "001 415 555 0100"):
            match = await match_phone(session, dialled, region="DE")
            assert [c.name for c in match.candidates] == ["Anna Alt"], dialled


async def test_kind_tier_language_tags_and_external_id_are_taken_over(
    database: Any, bus: EventBus, clock: FakeClock
) -> None:
    csv_text = (
        "Name,Kind,Tier,Language,Tags,Notes,External ID\n"
        "ACME,Organization,GOLD,de_at,B2B; vip,Big one,X-7\n"
    )

    await run_import(database, bus, clock, csv_text)

    async with database.sessions() as session:
        acme = await session.scalar(select(Customer))
        assert acme is not None
        assert (acme.kind, acme.tier, acme.language) == ("organisation", "gold", "de-AT")
        assert [tag.tag for tag in acme.tags] == ["b2b", "vip"]
        assert acme.notes == "Big one\nExternal ID: X-7"


async def test_rows_given_as_mappings_are_imported_like_a_file(
    database: Any, bus: EventBus, clock: FakeClock
) -> None:
    rows = [{"Name": "Anna Alt", "Phones": "030 1111111"}, {"Name": "", "Phones": "030 2"}]

    report = await run_import(database, bus, clock, rows)

    assert report.created == 1
    assert [(issue.line, issue.field) for issue in report.errors] == [(3, "name")]


async def test_a_customer_created_event_is_published_for_each_imported_row(
    database: Any, bus: EventBus, clock: FakeClock
) -> None:
    heard: list[DomainEvent] = []

    async def listen(event: DomainEvent) -> None:
        heard.append(event)

    bus.subscribe(CustomerCreated, listen)

    report = await run_import(database, bus, clock, FIXTURES / "customers_mixed.csv")

    assert len(heard) == report.created == 4


async def test_a_row_refused_late_is_rolled_back_alone(
    database: Any, bus: EventBus, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import desk.customer_import as module

    real_create = create_customer

    async def refuse_after_flush(uow: UnitOfWork, draft: CustomerDraft, **kwargs: Any) -> Customer:
        customer = await real_create(uow, draft, **kwargs)
        if draft.name == "Refused":
            raise InvalidInput("refused", fields={"name": "refused late"})
        return customer

    monkeypatch.setattr(module, "create_customer", refuse_after_flush)
    csv_text = "name,phones\nAnna Alt,030 1111111\nRefused,030 2222222\nBen Bach,030 3333333\n"

    report = await run_import(database, bus, clock, csv_text)

    assert [(issue.line, issue.field) for issue in report.errors] == [(3, "name")]
    assert await customer_names(database) == ["Anna Alt", "Ben Bach"]
