"""Delivering one pixel's events: in-process retries with jittered backoff, bisect on refusal.

The algorithm only needs a `send(events) -> Outcome` callable, so it is tested
without HTTP; the Graph adapter provides the real one.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from grim_schemas.events import ConversionRequested

from .classify import Outcome, Verdict

Send = Callable[[list[dict[str, Any]]], Awaitable[Outcome]]
Key = tuple[str, str, str]


class Item(NamedTuple):
    """One event on its way: the conversion, its CAPI form and how often the retry topic saw it.

    A NamedTuple rather than a frozen dataclass: one is built per event on the hot path.
    """

    conversion: ConversionRequested
    payload: dict[str, Any]
    attempt: int = 0

    @property
    def key(self) -> Key:
        c = self.conversion
        return (c.pixel_id, c.event_name, c.event_id)


@dataclass
class Report:
    accepted: list[tuple[Item, Outcome]] = field(default_factory=list)
    dead: list[tuple[Item, Outcome]] = field(default_factory=list)
    later: list[tuple[Item, Outcome]] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    token_refused: Outcome | None = None

    def merge(self, other: Report) -> None:
        self.accepted += other.accepted
        self.dead += other.dead
        self.later += other.later
        self.requests += other.requests
        self.retries += other.retries
        self.token_refused = self.token_refused or other.token_refused


def backoff(attempt: int, *, base: float, cap: float, throttled: bool, rand: float) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2^attempt)]; throttling waits longer."""
    ceiling = min(cap, base * (2**attempt) * (4 if throttled else 1))
    return ceiling * rand


class Deliverer:
    def __init__(
        self,
        send: Send,
        *,
        attempts: int = 4,
        backoff_base: float = 0.2,
        backoff_cap: float = 5.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.send = send
        self.attempts = attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.sleep = sleep
        self.rand = rand

    async def deliver(self, items: list[Item]) -> Report:
        """Send one chunk (<= 1,000 events of one pixel) until each event is decided."""
        report = Report()
        if not items:
            return report
        outcome: Outcome | None = None
        for attempt in range(self.attempts):
            if attempt:
                report.retries += 1
                await self.sleep(backoff(
                    attempt - 1, base=self.backoff_base, cap=self.backoff_cap,
                    throttled=bool(outcome and outcome.throttled), rand=self.rand(),
                ))
            outcome = await self.send([item.payload for item in items])
            report.requests += 1
            if outcome.verdict is Verdict.ACCEPTED:
                report.accepted = [(item, outcome) for item in items]
                return report
            if outcome.verdict is Verdict.TRANSIENT:
                continue
            if outcome.verdict is Verdict.INVALID_EVENTS:
                if len(items) == 1:
                    report.dead = [(items[0], outcome)]
                    return report
                middle = len(items) // 2
                report.merge(await self.deliver(items[:middle]))
                report.merge(await self.deliver(items[middle:]))
                return report
            # The token or the permissions are wrong: no event of this pixel can pass.
            report.dead = [(item, outcome) for item in items]
            if outcome.verdict is Verdict.INVALID_TOKEN:
                report.token_refused = outcome
            return report
        assert outcome is not None
        report.later = [(item, outcome) for item in items]
        return report
