"""Telegram's send limits: about one message per second per chat, 30 per second per bot.

Slots are reserved up front, so concurrent senders queue fairly instead of all
waking at once and tripping a 429. A chat waiting for its own slot does not hold
up other chats: the bot-wide spacing fits each send into the first free gap.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Callable

from prometheus_client import Counter

WAITS = Counter(
    "grim_bot_gateway_rate_limit_waits_total", "Sends delayed by the local rate limits", ["scope"]
)
WAITED = Counter(
    "grim_bot_gateway_rate_limit_wait_seconds_total", "Seconds spent waiting for a send slot"
)


class RateLimiter:
    def __init__(
        self,
        per_chat_interval: float,
        per_bot_rate: float,
        clock: Callable[[], float] = time.monotonic,
        max_chats: int = 100_000,
    ) -> None:
        self.per_chat_interval = per_chat_interval
        self.bot_interval = 1.0 / per_bot_rate if per_bot_rate > 0 else 0.0
        self.clock = clock
        self.max_chats = max_chats
        self._chat_next: dict[tuple[int, int], float] = {}
        self._bot_slots: dict[int, list[float]] = {}
        self._bot_paused: dict[int, float] = {}

    def _bot_slot(self, bot_id: int, earliest: float, now: float) -> float:
        slots = self._bot_slots.setdefault(bot_id, [])
        del slots[:bisect.bisect_left(slots, now - self.bot_interval)]
        at = max(earliest, self._bot_paused.get(bot_id, 0.0))
        for slot in slots[bisect.bisect_left(slots, at - self.bot_interval):]:
            if at <= slot - self.bot_interval:
                break
            at = max(at, slot + self.bot_interval)
        if self.bot_interval:
            bisect.insort(slots, at)
        return at

    def reserve(self, bot_id: int, chat_id: int | None) -> float:
        """Reserve the next slot; returns how long to wait before sending."""
        now = self.clock()
        if len(self._chat_next) > self.max_chats:
            self._chat_next = {k: v for k, v in self._chat_next.items() if v > now}
        chat_at = now
        if chat_id is not None:
            chat_at = max(now, self._chat_next.get((bot_id, chat_id), now))
        at = self._bot_slot(bot_id, chat_at, now)
        if chat_id is not None:
            self._chat_next[(bot_id, chat_id)] = at + self.per_chat_interval
        if at > now:
            WAITS.labels("chat" if chat_at >= at else "bot").inc()
            WAITED.inc(at - now)
        return at - now

    def push_back(self, bot_id: int, chat_id: int | None, seconds: float) -> None:
        """Telegram said 429: nothing else goes to this chat (or bot) before `seconds`."""
        until = self.clock() + seconds
        if chat_id is not None:
            key = (bot_id, chat_id)
            self._chat_next[key] = max(self._chat_next.get(key, 0.0), until)
        else:
            self._bot_paused[bot_id] = max(self._bot_paused.get(bot_id, 0.0), until)

    async def acquire(self, bot_id: int, chat_id: int | None) -> None:
        delay = self.reserve(bot_id, chat_id)
        if delay > 0:
            await asyncio.sleep(delay)
