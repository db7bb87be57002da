"""Dead-letter and retry-topic records (pure): what is parked, why, and when to retry."""

from __future__ import annotations

import time
from typing import Any

from grim_schemas.base import utcnow
from grim_schemas.events import ConversionRequested

from .classify import Outcome

NOT_BEFORE = "not_before_ms"
ATTEMPT = "attempt"
OPERATOR_RETRY = "dlq_retry"


def entry(
    conversion: ConversionRequested,
    *,
    reason: str,
    kind: str,
    outcome: Outcome | None = None,
) -> dict[str, Any]:
    """One capi-dlq record: the conversion, the pixel, the reason and Meta's error details."""
    return {
        "pixel_id": conversion.pixel_id,
        "event_name": conversion.event_name,
        "event_id": conversion.event_id,
        "reason": reason,
        "kind": kind,
        "code": outcome.code if outcome else None,
        "subcode": outcome.subcode if outcome else None,
        "fbtrace_id": outcome.fbtrace_id if outcome else None,
        "http_status": outcome.status if outcome else None,
        "parked_at": utcnow().isoformat(),
        "conversion": conversion.model_dump(mode="json"),
    }


def kind_of(outcome: Outcome) -> str:
    return outcome.verdict.value


def retry_delay(retry_number: int, delays: list[float]) -> float:
    """Delay before the n-th pass through the retry topic (1-based; the last delay repeats)."""
    if not delays:
        return 0.0
    return delays[min(retry_number, len(delays)) - 1]


def retry_headers(attempt: int, delay_seconds: float, now_ms: int | None = None) -> list[
        tuple[str, bytes]]:
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    return [
        (NOT_BEFORE, str(now_ms + int(delay_seconds * 1000)).encode()),
        (ATTEMPT, str(attempt).encode()),
    ]


def read_headers(headers: Any) -> tuple[int, int]:
    """(not_before_ms, attempt) of a record; records of the main topic have neither."""
    found = {k: v for k, v in (headers or ())}
    try:
        not_before = int(found.get(NOT_BEFORE, b"0"))
        attempt = int(found.get(ATTEMPT, b"0"))
    except ValueError:
        return 0, 0
    return not_before, attempt


def is_operator_retry(headers: Any) -> bool:
    """Published again by `grim dlq retry`: send it even though the DLQ still lists it."""
    return any(k == OPERATOR_RETRY for k, _ in (headers or ()))
