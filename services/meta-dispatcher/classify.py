"""Graph API answers -> what to do with the batch (pure; DESIGN.md invariant 5)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

TRANSIENT_CODES = frozenset({1, 2, 4, 17, 341, 368, 613})
THROTTLE_CODES = frozenset({4, 17, 613})
INVALID_TOKEN_CODE = 190
PERMISSION_CODES = frozenset({10, *range(200, 300)})


class Verdict(enum.Enum):
    ACCEPTED = "accepted"
    TRANSIENT = "transient"  # retry the same batch later
    INVALID_EVENTS = "invalid_events"  # some event is bad: isolate it by bisecting
    INVALID_TOKEN = "invalid_token"  # the pixel's token is dead: flag it, park the batch
    FORBIDDEN = "forbidden"  # permissions: park the batch


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    status: int | None = None
    code: int | None = None
    subcode: int | None = None
    message: str = ""
    fbtrace_id: str | None = None
    events_received: int | None = None
    throttled: bool = False

    @property
    def reason(self) -> str:
        parts = [self.message or self.verdict.value]
        if self.code is not None:
            parts.append(f"code {self.code}" + (f"/{self.subcode}" if self.subcode else ""))
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        return " - ".join(parts)


def classify_response(status: int, body: Any) -> Outcome:
    """Decide from an HTTP status and the decoded JSON body (None when not JSON)."""
    error = body.get("error") if isinstance(body, dict) else None
    if 200 <= status < 300 and isinstance(body, dict) and "events_received" in body:
        return Outcome(
            Verdict.ACCEPTED,
            status=status,
            events_received=int(body["events_received"]),
            fbtrace_id=body.get("fbtrace_id"),
        )
    if not isinstance(error, dict):
        # 2xx without events_received, 5xx pages, proxies' HTML: nothing says the events
        # were refused, so try again.
        return Outcome(Verdict.TRANSIENT, status=status, message="unexpected answer")
    code = _int(error.get("code"))
    subcode = _int(error.get("error_subcode"))
    message = str(error.get("error_user_msg") or error.get("message") or "")[:500]
    common = {
        "status": status,
        "code": code,
        "subcode": subcode,
        "message": message,
        "fbtrace_id": error.get("fbtrace_id"),
    }
    if code in TRANSIENT_CODES or error.get("is_transient") is True or status >= 500:
        return Outcome(Verdict.TRANSIENT, throttled=code in THROTTLE_CODES or status == 429,
                       **common)
    if status == 429:
        return Outcome(Verdict.TRANSIENT, throttled=True, **common)
    if code == INVALID_TOKEN_CODE:
        return Outcome(Verdict.INVALID_TOKEN, **common)
    if code in PERMISSION_CODES:
        return Outcome(Verdict.FORBIDDEN, **common)
    # Code 100 (2804xxx) and any other refusal: one event may be the cause, and
    # bisecting finds it without sinking the valid ones.
    return Outcome(Verdict.INVALID_EVENTS, **common)


def classify_exception(exc: BaseException) -> Outcome:
    """Network errors and timeouts: Meta may or may not have the batch; resend (dedup by id)."""
    return Outcome(Verdict.TRANSIENT, message=f"{type(exc).__name__}: {exc}"[:300])


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
