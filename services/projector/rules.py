"""Attribution rules: which tracking token a bot user's stage fact belongs to.

Rules are pure functions with a version number. A new rule is a new version,
never an edit of an old one: `grim replay --rules <v>` rebuilds the projection
with it side by side and diffs the result against the live one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

DAY_MS = 24 * 3600 * 1000
CLICK_WINDOW_MS = 7 * DAY_MS


@dataclass(frozen=True, order=True)
class Touch:
    """A `/start` with a tracking token, at `at_ms` (epoch milliseconds)."""

    at_ms: int
    token: str


@dataclass(frozen=True)
class Decision:
    """The token a fact belongs to, and why (`start`, `fallback`)."""

    token: str
    reason: str


Rule = Callable[[Sequence[Touch], int, str | None], Decision | None]


def _in_window(touch: Touch, fact_ms: int) -> bool:
    # Inclusive at both edges: a start in the same millisecond as the fact counts,
    # and so does one exactly seven days before it.
    return 0 <= fact_ms - touch.at_ms <= CLICK_WINDOW_MS


def last_touch(touches: Sequence[Touch], fact_ms: int, fallback: str | None) -> Decision | None:
    """v1: the last tokened /start at or before the fact within the 7-day click window;
    else the token the funnel recorded (pix_generated/paid); else undecided (None)."""
    eligible = [t for t in touches if _in_window(t, fact_ms)]
    if eligible:
        # max() over (at_ms, token) breaks same-millisecond ties deterministically.
        return Decision(max(eligible).token, "start")
    if fallback:
        return Decision(fallback, "fallback")
    return None


def first_touch(touches: Sequence[Touch], fact_ms: int, fallback: str | None) -> Decision | None:
    """v2: the first tokened /start within the 7-day click window (credit the ad that
    brought the user in); same fallback as v1."""
    eligible = [t for t in touches if _in_window(t, fact_ms)]
    if eligible:
        return Decision(min(eligible).token, "start")
    if fallback:
        return Decision(fallback, "fallback")
    return None


RULES: dict[int, Rule] = {1: last_touch, 2: first_touch}
LATEST_RULE_VERSION = max(RULES)


def rule_for(version: int) -> Rule:
    try:
        return RULES[version]
    except KeyError:
        known = ", ".join(str(v) for v in sorted(RULES))
        raise ValueError(f"unknown rule version {version} (known: {known})") from None
