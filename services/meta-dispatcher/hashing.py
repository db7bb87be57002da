"""Meta's normalisation and SHA-256 hashing of customer information (pure).

Rules follow Meta's "customer information parameters" page; where the official
SDK's `Normalize` agrees, the unit tests compare against it. Deliberate
differences: Brazilian phones without a country code get 55 (the SDK leaves
them alone) and a Brazilian CEP keeps all 8 digits (the SDK keeps the part
before a dash, a US ZIP+4 habit).
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata

from grim_schemas.events import ConversionUserData

HASHED_FIELDS = ("em", "ph", "fn", "ln", "ct", "st", "zp", "country", "external_id")
PLAIN_FIELDS = ("client_ip_address", "client_user_agent", "fbc", "fbp")

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_NON_DIGIT = re.compile(r"\D")
_COUNTRY_NAMES = {"brasil": "br", "brazil": "br"}


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _letters_only(value: str) -> str:
    # Unicode letters stay (Meta wants UTF-8 "special characters" kept).
    return "".join(ch for ch in value if unicodedata.category(ch).startswith("L"))


def normalize_email(value: str) -> str | None:
    value = value.strip().lower()
    return value if _EMAIL.match(value) else None


def normalize_phone(value: str, default_country_code: str = "55") -> str | None:
    """Digits only, with the country code; a Brazilian number without one gets 55."""
    raw = value.strip()
    digits = _NON_DIGIT.sub("", raw)
    if raw.startswith("00"):
        digits = digits[2:]
    elif not raw.startswith("+"):
        digits = digits.lstrip("0")
        # DDD (2 digits) + 8 or 9 digit subscriber number: a national Brazilian number.
        if len(digits) in (10, 11) and default_country_code == "55":
            digits = "55" + digits
    if not 8 <= len(digits) <= 15 or digits.startswith("0"):
        return None
    return digits


def normalize_name(value: str) -> str | None:
    value = value.strip().lower()
    value = "".join(ch for ch in value if not unicodedata.category(ch).startswith("P"))
    value = " ".join(value.split())
    return value or None


def normalize_city(value: str) -> str | None:
    return _letters_only(value.strip().lower()) or None


def normalize_state(value: str) -> str | None:
    return _letters_only(value.strip().lower()) or None


def normalize_zip(value: str) -> str | None:
    value = re.sub(r"[\s\-.]", "", value.strip().lower())
    return value or None


def normalize_country(value: str) -> str | None:
    value = value.strip().lower()
    value = _COUNTRY_NAMES.get(value, value)
    value = re.sub(r"[^a-z]", "", value)
    return value if len(value) == 2 else None


def normalize_external_id(value: str) -> str | None:
    # Case is kept: an external id is an opaque identifier.
    return value.strip() or None


_NORMALIZERS = {
    "em": normalize_email,
    "ph": normalize_phone,
    "fn": normalize_name,
    "ln": normalize_name,
    "ct": normalize_city,
    "st": normalize_state,
    "zp": normalize_zip,
    "country": normalize_country,
    "external_id": normalize_external_id,
}


@functools.lru_cache(maxsize=65536)
def normalize_and_hash(field: str, value: str | None) -> str | None:
    """The value Meta expects for a hashed field, or None when it cannot be used.

    A value that already is a lowercase SHA-256 is passed through unchanged.
    """
    if value is None or not value.strip():
        return None
    lowered = value.strip().lower()
    if _SHA256.match(lowered):
        return lowered
    normalized = _NORMALIZERS[field](value)
    return sha256(normalized) if normalized else None


def build_user_data(user: ConversionUserData) -> dict[str, str]:
    """CAPI `user_data`: hashed customer fields plus the browser identifiers as captured."""
    out: dict[str, str] = {}
    for field in PLAIN_FIELDS:
        value = getattr(user, field)
        if value:
            out[field] = value
    for field in HASHED_FIELDS:
        value = getattr(user, field)
        # Most fields are absent: skip the cache lookup for them.
        if value:
            hashed = normalize_and_hash(field, value)
            if hashed:
                out[field] = hashed
    return out
