"""How to react to a Telegram Bot API answer. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Verdict = Literal["ok", "retry", "blocked", "failed"]

# 403 descriptions that mean this user will not receive messages until they act.
_BLOCKED_HINTS = (
    "bot was blocked by the user", "user is deactivated", "bot was kicked",
    "bot can't initiate conversation", "bot is not a member",
)


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    delay: float = 0.0
    reason: str = ""


def classify_response(status: int, body: Any, attempt: int, backoff: float) -> Decision:
    """`attempt` counts from 1; `backoff` is the first retry delay for 5xx (doubles each time)."""
    description = body.get("description", "") if isinstance(body, dict) else ""
    if status == 200 and isinstance(body, dict) and body.get("ok") is True:
        return Decision("ok")
    if status == 429:
        params = body.get("parameters") if isinstance(body, dict) else None
        retry_after = params.get("retry_after") if isinstance(params, dict) else None
        delay = float(retry_after) if isinstance(retry_after, int | float) else backoff
        return Decision("retry", max(delay, 0.0), f"429 {description}".strip())
    if status >= 500:
        return Decision("retry", backoff_delay(attempt, backoff), f"{status} {description}")
    if status == 403 and any(h in description.lower() for h in _BLOCKED_HINTS):
        return Decision("blocked", reason=description)
    # 400/401/403/404 and anything unexpected: the same call would fail the same way.
    return Decision("failed", reason=f"{status} {description}".strip())


def classify_network_error(attempt: int, backoff: float) -> Decision:
    return Decision("retry", backoff_delay(attempt, backoff), "network error")


def backoff_delay(attempt: int, base: float, cap: float = 30.0) -> float:
    return min(cap, base * 2 ** max(0, attempt - 1))
