"""The survey link's token: names one survey, expires, and only we can make one.

``<payload><mac>`` in URL-safe base64 without padding: the payload is the
survey id (8 bytes), the expiry in Unix seconds (5 bytes) and the id of the
template version the survey asks (4 bytes, so a submitted form is checked
without reading the survey first: the answer path stays one statement); the MAC is the
first 16 bytes of HMAC-SHA256 under a key derived from the secret key for this
purpose only (a token of another feature never passes here).  Checking needs
no database: forged, truncated and expired tokens are turned away before any
query.  The survey row has the last word (withdrawn, already answered).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

_ID_BYTES, _EXPIRY_BYTES, _VERSION_BYTES, _MAC_BYTES = 8, 5, 4, 16
_PAYLOAD = _ID_BYTES + _EXPIRY_BYTES + _VERSION_BYTES
_LENGTH = _PAYLOAD + _MAC_BYTES
TOKEN_CHARS = (_LENGTH * 8 + 5) // 6  # 44: base64 of 33 bytes, no padding


class TokenProblem(StrEnum):
    MALFORMED = "malformed"  # not ours in shape: truncated, padded, foreign characters
    FORGED = "forged"  # the right shape, but we did not sign it (or it was changed)
    EXPIRED = "expired"


class BadToken(ValueError):
    def __init__(self, problem: TokenProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(frozen=True)
class TokenKey:
    """The signing key, derived once from the secret key."""

    key: bytes

    @classmethod
    def from_secret(cls, secret: str) -> TokenKey:
        if not secret:
            raise ValueError("survey tokens need the secret key")
        return cls(hmac.new(secret.encode(), b"calldesk survey token v1", hashlib.sha256).digest())

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self.key, payload, hashlib.sha256).digest()[:_MAC_BYTES]


@dataclass(frozen=True)
class TokenClaims:
    survey_id: int
    questions_id: int  # the survey's template version


def make_token(key: TokenKey, *, survey_id: int, expires_at: datetime, questions_id: int) -> str:
    if survey_id < 1 or questions_id < 1:
        raise ValueError("survey and template version ids are positive")
    payload = (
        survey_id.to_bytes(_ID_BYTES, "big")
        + int(expires_at.timestamp()).to_bytes(_EXPIRY_BYTES, "big")
        + questions_id.to_bytes(_VERSION_BYTES, "big")
    )
    raw = payload + key._mac(payload)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def read_token(
    key: TokenKey, token: str, *, now: datetime, allow_expired: bool = False
) -> TokenClaims:
    """The survey the token names, or ``BadToken`` saying why not.
    ``allow_expired``: only the signature counts (opting out works forever)."""
    if len(token) != TOKEN_CHARS or not token.isascii():
        raise BadToken(TokenProblem.MALFORMED)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise BadToken(TokenProblem.MALFORMED) from None
    # b64decode ignores stray characters; re-encoding catches any that slipped in.
    if len(raw) != _LENGTH or base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != token:
        raise BadToken(TokenProblem.MALFORMED)
    payload, mac = raw[:_PAYLOAD], raw[_PAYLOAD:]
    if not hmac.compare_digest(mac, key._mac(payload)):
        raise BadToken(TokenProblem.FORGED)
    expires = int.from_bytes(payload[_ID_BYTES : _ID_BYTES + _EXPIRY_BYTES], "big")
    if not allow_expired and now >= datetime.fromtimestamp(expires, UTC):
        raise BadToken(TokenProblem.EXPIRED)
    return TokenClaims(
        survey_id=int.from_bytes(payload[:_ID_BYTES], "big"),
        questions_id=int.from_bytes(payload[_ID_BYTES + _EXPIRY_BYTES :], "big"),
    )
