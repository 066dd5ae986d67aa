"""The phone matcher's table: every form a PBX sends reads as one E.164 number."""

from __future__ import annotations

import pytest

from desk.phones import NumberStatus, read_number

VALID = [
    ("+4930123456789", "DE", "+4930123456789"),
    ("004930123456789", "DE", "+4930123456789"),
    ("030123456789", "DE", "+4930123456789"),
    ("030 1234-56789", "DE", "+4930123456789"),
    ("(030) 123.456.789", "DE", "+4930123456789"),
    ("0049 (0)30 123456789".replace("(0)", ""), "DE", "+4930123456789"),
    ("03099887766", "DE", "+493099887766"),
    ("+1 (415) 555-0100", "DE", "+14155550100"),
    ("001 415 555 0100", "DE", "+14155550100"),
    ("(415) 555-0100", "US", "+14155550100"),
    ("011 49 30 123456789", "US", "+4930123456789"),
    ("+33 1 42 68 53 00", "DE", "+33142685300"),
    ("020 7946 0958", "GB", "+442079460958"),
    ("+86 10 6552 9988", "DE", "+861065529988"),
    ("  +4940987654  ", "DE", "+4940987654"),
]


@pytest.mark.parametrize(("raw", "region", "e164"), VALID)
def test_a_number_in_any_format_reads_as_e164(raw: str, region: str, e164: str) -> None:
    number = read_number(raw, region)
    assert number.status is NumberStatus.VALID
    assert number.e164 == e164


@pytest.mark.parametrize(
    "raw",
    [None, "", "   ", "anonymous", "Anonymous", "<unknown>", "unknown", "Restricted", "private"],
)
def test_a_withheld_number_reads_as_withheld_with_no_number(raw: str | None) -> None:
    number = read_number(raw, "DE")
    assert number.status is NumberStatus.WITHHELD
    assert number.e164 is None


@pytest.mark.parametrize(
    "raw", ["1001", "12", "abc", "030-ABC-DEF", "+49", "0" * 40, "+49 30 1234567890123456", "☎"]
)
def test_an_invalid_number_or_an_extension_reads_as_invalid(raw: str) -> None:
    number = read_number(raw, "DE")
    assert number.status is NumberStatus.INVALID
    assert number.e164 is None
