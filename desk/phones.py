"""Reading phone numbers the way a PBX sends them.

The same customer must be found whether the trunk sends ``+4930123456789``,
``004930123456789``, ``030123456789`` or ``030 1234-56789``; numbers are stored
in E.164 and every incoming number is brought to E.164 with the desk's default
region before the look-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import phonenumbers

# What Asterisk and carriers put in the caller ID when the caller hides it.
WITHHELD_MARKERS = frozenset(
    {
        "",
        "anonymous",
        "unknown",
        "<unknown>",
        "restricted",
        "private",
        "withheld",
        "unavailable",
        "blocked",
        "s",
    }
)
_SEPARATORS = re.compile(r"[\s\-./()\[\]]")
_DIALLABLE = re.compile(r"^\+?[0-9*#]+$")


class NumberStatus(StrEnum):
    VALID = "valid"
    WITHHELD = "withheld"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class CallerNumber:
    raw: str
    status: NumberStatus
    e164: str | None = None


def read_number(raw: str | None, region: str) -> CallerNumber:
    """Classify and normalise one number as given by a PBX, a form or an import."""
    text = (raw or "").strip()
    if text.lower() in WITHHELD_MARKERS:
        return CallerNumber(raw=text, status=NumberStatus.WITHHELD)
    compact = _SEPARATORS.sub("", text)
    if not compact or len(compact) > 32 or not _DIALLABLE.match(compact):
        return CallerNumber(raw=text, status=NumberStatus.INVALID)
    try:
        parsed = phonenumbers.parse(compact, region)
    except phonenumbers.NumberParseException:
        return CallerNumber(raw=text, status=NumberStatus.INVALID)
    explicit_country = compact.startswith(("+", "00"))
    # Metadata lags behind new number ranges, so a number that names its country
    # is accepted when merely possible; a short national one (an extension such
    # as 1001) must be valid or it would match a stranger.
    acceptable = phonenumbers.is_valid_number(parsed) or (
        explicit_country and phonenumbers.is_possible_number(parsed)
    )
    if not acceptable:
        return CallerNumber(raw=text, status=NumberStatus.INVALID)
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return CallerNumber(raw=text, status=NumberStatus.VALID, e164=e164)


def to_e164(raw: str, region: str) -> str | None:
    return read_number(raw, region).e164
