"""The envelope every Grim event carries.

Events are immutable facts: frozen models, unknown fields ignored so an older
consumer keeps working when a newer producer adds a field.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator

TOKEN_PATTERN = r"^[0-9a-f]{32}$"


def _to_ms_iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


UtcDatetime = Annotated[datetime, PlainSerializer(_to_ms_iso, return_type=str, when_used="json")]
"""A timezone-aware UTC instant serialised as ISO-8601 with millisecond precision."""


def utcnow() -> datetime:
    """Now, in UTC, truncated to the millisecond like every event timestamp."""
    now = datetime.now(UTC)
    return now.replace(microsecond=(now.microsecond // 1000) * 1000)


_RANDOM = threading.local()  # per thread: two threads must never take the same bytes
# A forked child must not reuse the parent's unused bytes (same ids in both processes).
os.register_at_fork(after_in_child=lambda: _RANDOM.__dict__.clear())


def new_event_id() -> str:
    """A random UUID (version 4) as 32 lowercase hex digits; also the tracking token's form."""
    # uuid.uuid4().hex without a UUID object or a getrandom() call per id (several per
    # request): the bytes come from os.urandom 4 KiB at a time.
    pool = _RANDOM.__dict__
    buffer: bytes = pool.get("buffer", b"")
    at: int = pool.get("at", 0)
    if at + 16 > len(buffer):
        buffer, at = os.urandom(4096), 0
        pool["buffer"] = buffer
    pool["at"] = at + 16
    raw = bytearray(buffer[at:at + 16])
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


class Event(BaseModel):
    """Envelope fields shared by every event type."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: str = Field(default_factory=new_event_id, min_length=1, max_length=200)
    type: str
    schema_version: int = Field(default=1, ge=1)
    occurred_at: UtcDatetime = Field(default_factory=utcnow)
    producer: str = Field(min_length=1, max_length=64)

    @field_validator("occurred_at")
    @classmethod
    def _must_be_aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("occurred_at must carry a timezone (UTC)")
        value = value.astimezone(UTC)
        return value.replace(microsecond=(value.microsecond // 1000) * 1000)
