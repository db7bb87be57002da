"""Millisecond timestamps, the unit every decision in the projector compares."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_to_ms(value: str | datetime) -> int:
    """Epoch milliseconds of an ISO-8601 instant as events serialise it (`...Z`)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # operators type UTC times without an offset
    return (value - _EPOCH) // timedelta(milliseconds=1)


def ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def now_ms() -> int:
    return int(time.time() * 1000)


def ms_to_iso(ms: int) -> str:
    """The event wire format: ISO-8601, UTC, milliseconds, `Z`."""
    return ms_to_dt(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")
