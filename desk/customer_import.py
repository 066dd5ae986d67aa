"""Import customers from a CSV file.

The first non-blank line is the header.  Column names are case-insensitive;
spaces and dashes count as underscores (``External ID`` is ``external_id``).

=============  ========  ====================================================
column         required  content
=============  ========  ====================================================
name           yes       the person's or organisation's name
kind           no        ``person`` (default) or ``organisation``
tier           no        ``standard`` (default), ``gold`` or ``platinum``
language       no        e.g. ``de``, ``en``, ``de-AT`` (default ``en``)
phones         no        numbers in any format, several separated by ``;`` or
                         ``|``; national numbers are read in the desk's region
emails         no        addresses separated by ``;`` (or ``|``)
tags           no        tags separated by ``;`` (or ``|``)
notes          no        free text
external_id    no        the record's id in the system it comes from; the
                         customer has no field for it, so it is kept as the
                         last line of the notes
=============  ========  ====================================================

The delimiter (``,``, ``;`` or tab) is taken from the header line.  A UTF-8 or
UTF-16 byte-order mark is honoured; a file that is not UTF-8 is read as
Windows-1252 (what Excel writes on Western Windows) with a warning.  Blank
lines are skipped, unknown columns are ignored with one warning, and line
numbers in the report are the file's own lines.

Every row is validated with ``CustomerDraft``, the rules the API applies; a bad
row is reported and never stops the good ones.  A row is a *duplicate*, and
skipped, when one of its numbers already belongs to a customer of the same
name (ignoring case and spacing), so importing a file twice creates nothing
the second time.  A file that cannot be read, or has no ``name`` column, raises
``ImportFileError`` before anything is imported.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from desk.customers import CustomerDraft, create_customer
from desk.errors import DeskError
from desk.events import EventBus, UnitOfWork
from desk.models import Customer, CustomerPhone
from desk.phones import read_number

COLUMNS = ("name", "kind", "tier", "language", "phones", "emails", "tags", "notes", "external_id")
REQUIRED = ("name",)
_ALIASES = {"phone": "phones", "email": "emails", "tag": "tags", "note": "notes"}
_KIND_ALIASES = {"organization": "organisation", "company": "organisation"}
_LIST_SEPARATOR = re.compile(r"[;|]")
_DELIMITERS = (",", ";", "\t")
BATCH_SIZE = 500
# Stays well below the bound-parameter limits of SQLite (32766) and asyncpg (32767).
_IN_CHUNK = 5000


class ImportFileError(Exception):
    """The file as a whole cannot be imported; ``str()`` is one line to show."""


@dataclass(frozen=True, slots=True)
class RowIssue:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


@dataclass(slots=True)
class ImportReport:
    rows_read: int = 0
    created: int = 0
    errors: list[RowIssue] = field(default_factory=list)
    duplicates: list[RowIssue] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        """Rows not imported because they were invalid (duplicates not counted)."""
        return len({issue.line for issue in self.errors})

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True, slots=True)
class CsvRow:
    line: int
    values: Mapping[str, str]
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class CsvTable:
    """A parsed file: rows keyed by known column names, plus warnings about the file."""

    rows: tuple[CsvRow, ...]
    warnings: tuple[str, ...] = ()


def _column_name(header: str) -> str:
    name = re.sub(r"[\s\-]+", "_", header.strip().lower())
    return _ALIASES.get(name, name)


def _decode(data: bytes) -> tuple[str, list[str]]:
    for bom, encoding, label in (
        (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
        (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
        (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(encoding), []
            except UnicodeDecodeError as exc:
                raise ImportFileError(
                    f"the file starts with a {label} byte-order mark but byte {exc.start} "
                    f"is not valid {label}"
                ) from None
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as utf8_error:
        where = f"byte 0x{data[utf8_error.start]:02x} at offset {utf8_error.start}"
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise ImportFileError(
                f"the file is neither UTF-8 ({where}) nor Windows-1252; save it as UTF-8 CSV"
            ) from None
        return text, [f"the file is not UTF-8 ({where}); read it as Windows-1252"]


def _sniff_delimiter(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    # Quoted header cells may contain any delimiter; only count what lies outside quotes.
    outside = "".join(first.split('"')[::2])
    counts = {d: outside.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _header(cells: list[str], line: int) -> tuple[list[str | None], list[str]]:
    names: list[str | None] = []
    seen: dict[str, int] = {}
    unknown: list[str] = []
    for position, cell in enumerate(cells, start=1):
        name = _column_name(cell)
        if name in seen:
            raise ImportFileError(
                f"line {line}: column {name!r} appears twice (columns {seen[name]} and {position})"
            )
        if name in COLUMNS:
            seen[name] = position
            names.append(name)
        else:
            unknown.append(cell.strip() or f"(unnamed column {position})")
            names.append(None)
    missing = [name for name in REQUIRED if name not in seen]
    if missing:
        found = ", ".join(c.strip() for c in cells if c.strip()) or "nothing"
        raise ImportFileError(
            f"line {line}: the header has no {', '.join(missing)} column (found: {found}; "
            f"known columns: {', '.join(COLUMNS)})"
        )
    return names, unknown


def parse_csv(data: bytes) -> CsvTable:
    """Decode, sniff and split a CSV file; raise ``ImportFileError`` if it is unusable."""
    text, warnings = _decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text))
    names: list[str | None] | None = None
    rows: list[CsvRow] = []
    last_line = 0
    try:
        for cells in reader:
            # A record may span several physical lines; report the one it starts on.
            line, last_line = last_line + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if names is None:
                names, unknown = _header(cells, line)
                if unknown:
                    warnings.append(f"unknown columns ignored: {', '.join(unknown)}")
                continue
            values = {n: c.strip() for n, c in zip(names, cells, strict=False) if n is not None}
            problem = None
            if any(cell.strip() for cell in cells[len(names) :]):
                # Usually an unquoted delimiter inside a value: every later cell has shifted.
                problem = f"{len(cells)} cells but the header has {len(names)}"
            rows.append(CsvRow(line=line, values=values, problem=problem))
    except csv.Error as exc:
        raise ImportFileError(f"line {reader.line_num}: not valid CSV: {exc}") from None
    if names is None:
        raise ImportFileError("the file is empty; expected a header row with a name column")
    return CsvTable(rows=tuple(rows), warnings=tuple(warnings))


def read_csv(path: Path) -> CsvTable:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_csv(data)


def table_from_mappings(rows: Iterable[Mapping[str, str | None]]) -> CsvTable:
    """Rows already split into columns (say, from a spreadsheet library); line 1 is the header."""
    parsed: list[CsvRow] = []
    unknown: set[str] = set()
    for index, row in enumerate(rows):
        values: dict[str, str] = {}
        for key, value in row.items():
            name = _column_name(key)
            if name in COLUMNS:
                values[name] = (value or "").strip()
            else:
                unknown.add(key)
        if any(values.values()):
            parsed.append(CsvRow(line=index + 2, values=values))
    if parsed and not any(name in row.values for row in parsed for name in REQUIRED):
        raise ImportFileError(f"the rows have no {', '.join(REQUIRED)} column")
    warnings = (f"unknown columns ignored: {', '.join(sorted(unknown))}",) if unknown else ()
    return CsvTable(rows=tuple(parsed), warnings=warnings)


def normalise_name(name: str) -> str:
    return " ".join(name.split()).casefold()


async def phone_owners(
    session: AsyncSession, numbers: Collection[str]
) -> dict[str, list[tuple[int, str]]]:
    """For each E.164 number, the (id, name) of every customer who has it."""
    owners: dict[str, list[tuple[int, str]]] = {}
    wanted = sorted(set(numbers))
    for start in range(0, len(wanted), _IN_CHUNK):
        result = await session.execute(
            select(CustomerPhone.number_e164, Customer.id, Customer.name)
            .join(Customer, Customer.id == CustomerPhone.customer_id)
            .where(CustomerPhone.number_e164.in_(wanted[start : start + _IN_CHUNK]))
        )
        for number, customer_id, name in result:
            owners.setdefault(number, []).append((customer_id, name))
    return owners


def _split(cell: str) -> list[str]:
    return [part.strip() for part in _LIST_SEPARATOR.split(cell) if part.strip()]


def _language(value: str) -> str:
    # CustomerDraft wants "de" or "de-AT"; spreadsheets say "DE" or "de_at".
    base, _, region = value.replace("_", "-").partition("-")
    if not region:
        return base.lower()
    return f"{base.lower()}-{region.upper() if len(region) == 2 else region}"


def _draft_input(values: Mapping[str, str]) -> dict[str, object]:
    data: dict[str, object] = {}
    if values.get("name"):
        data["name"] = values["name"]
    if kind := values.get("kind", "").lower():
        data["kind"] = _KIND_ALIASES.get(kind, kind)
    if tier := values.get("tier", "").lower():
        data["tier"] = tier
    if language := values.get("language"):
        data["language"] = _language(language)
    notes = values.get("notes", "")
    if external_id := values.get("external_id"):
        notes = f"{notes}\nExternal ID: {external_id}" if notes else f"External ID: {external_id}"
    if notes:
        data["notes"] = notes
    data["phones"] = [{"number": number} for number in _split(values.get("phones", ""))]
    data["emails"] = [{"address": address} for address in _split(values.get("emails", ""))]
    data["tags"] = _split(values.get("tags", ""))
    return data


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _validation_issues(line: int, exc: ValidationError) -> list[RowIssue]:
    issues = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "row"
        if error["type"] == "missing":
            message = "is required"
        else:
            message = error["msg"].removeprefix("Value error, ")
            if isinstance(error.get("input"), str):
                message += f" (got {_shown(error['input'])})"
        issues.append(RowIssue(line, name, message))
    return issues


@dataclass(frozen=True, slots=True)
class _Prepared:
    line: int
    draft: CustomerDraft
    numbers: tuple[str, ...]


def _prepare(row: CsvRow, region: str) -> _Prepared | list[RowIssue]:
    """Everything that can be checked without the database."""
    if row.problem is not None:
        return [RowIssue(row.line, "row", row.problem)]
    try:
        draft = CustomerDraft.model_validate(_draft_input(row.values), strict=False)
    except ValidationError as exc:
        return _validation_issues(row.line, exc)
    numbers: list[str] = []
    issues: list[RowIssue] = []
    for phone in draft.phones:
        e164 = read_number(phone.number, region).e164
        if e164 is None:
            issues.append(
                RowIssue(row.line, "phones", f"{phone.number!r} is not a valid phone number")
            )
        elif e164 not in numbers:
            numbers.append(e164)
    return issues or _Prepared(row.line, draft, tuple(numbers))


def _duplicate_of(item: _Prepared, owners: Mapping[str, list[tuple[int, str]]]) -> RowIssue | None:
    wanted = normalise_name(item.draft.name)
    for number in item.numbers:
        for customer_id, name in owners.get(number, ()):
            if normalise_name(name) == wanted:
                return RowIssue(
                    item.line, "phones", f"duplicate of customer {customer_id} ({name}, {number})"
                )
    return None


def _refusal(line: int, exc: Exception) -> list[RowIssue]:
    if isinstance(exc, DeskError):
        fields = exc.fields or {"row": exc.message}
        return [RowIssue(line, key.split(".")[0], message) for key, message in fields.items()]
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    return [RowIssue(line, "row", f"refused by the database: {orig}")]


class _RowRefused(Exception):
    """A row failed in a batch stored without savepoints; the batch must be redone."""


@dataclass(slots=True)
class _Stored:
    created: int = 0
    errors: list[RowIssue] = field(default_factory=list)
    duplicates: list[RowIssue] = field(default_factory=list)


async def _store(
    prepared: list[_Prepared],
    *,
    sessions: async_sessionmaker[AsyncSession],
    bus: EventBus,
    region: str,
    now: datetime,
    savepoints: bool,
) -> _Stored:
    stored = _Stored()
    async with UnitOfWork(sessions=sessions, bus=bus) as uow:
        owners = await phone_owners(uow.session, {n for item in prepared for n in item.numbers})
        for item in prepared:
            if (duplicate := _duplicate_of(item, owners)) is not None:
                stored.duplicates.append(duplicate)
                continue
            try:
                if savepoints:
                    async with uow.session.begin_nested():
                        customer = await create_customer(uow, item.draft, region=region, now=now)
                else:
                    customer = await create_customer(uow, item.draft, region=region, now=now)
            except (DeskError, IntegrityError, DataError) as exc:
                if not savepoints:
                    raise _RowRefused from exc
                stored.errors.extend(_refusal(item.line, exc))
                continue
            stored.created += 1
            for number in item.numbers:
                owners.setdefault(number, []).append((customer.id, customer.name))
        await uow.commit()
    return stored


async def _import_batch(
    rows: Iterable[CsvRow],
    *,
    sessions: async_sessionmaker[AsyncSession],
    bus: EventBus,
    region: str,
    now: datetime,
    report: ImportReport,
) -> None:
    prepared: list[_Prepared] = []
    for row in rows:
        outcome = _prepare(row, region)
        if isinstance(outcome, list):
            report.errors.extend(outcome)
        else:
            prepared.append(outcome)
    if not prepared:
        return
    # Rows are validated already, so the database rarely refuses one.  A savepoint
    # per row would double the cost of every batch; pay it only for a batch that
    # needs it, redoing that batch with each row isolated.
    try:
        stored = await _store(
            prepared, sessions=sessions, bus=bus, region=region, now=now, savepoints=False
        )
    except _RowRefused:
        stored = await _store(
            prepared, sessions=sessions, bus=bus, region=region, now=now, savepoints=True
        )
    # Counted only once committed, so a failing commit never over-reports.
    report.created += stored.created
    report.errors.extend(stored.errors)
    report.duplicates.extend(stored.duplicates)


async def import_customers(
    source: Path | bytes | CsvTable | Iterable[Mapping[str, str | None]],
    *,
    sessions: async_sessionmaker[AsyncSession],
    bus: EventBus,
    region: str,
    now: datetime,
    on_progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Import every row of ``source`` that is valid; see the module docstring.

    ``on_progress`` is called after each committed batch with the number of rows
    handled so far.  Database failures other than a refused row propagate; the
    batches committed before them stay imported.
    """
    if isinstance(source, Path):
        table = read_csv(source)
    elif isinstance(source, bytes):
        table = parse_csv(source)
    elif isinstance(source, CsvTable):
        table = source
    else:
        table = table_from_mappings(source)
    report = ImportReport(rows_read=len(table.rows), warnings=list(table.warnings))
    for start in range(0, len(table.rows), batch_size):
        batch = table.rows[start : start + batch_size]
        await _import_batch(
            batch, sessions=sessions, bus=bus, region=region, now=now, report=report
        )
        if on_progress is not None:
            on_progress(start + len(batch))
    report.errors.sort(key=lambda issue: issue.line)
    report.duplicates.sort(key=lambda issue: issue.line)
    return report
