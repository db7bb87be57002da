"""Cached view of bots (token, webhook secret) and funnels.

The webhook needs a bot's secret on every request; reading and decrypting it
each time would cost more than the rest of the request. Entries expire after a
TTL and are dropped at once when the config tables NOTIFY 'grim_config'.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from grim_bot_gateway import store
from grim_bot_gateway.funnel import FunnelConfig

from grim.config.bots import get_bot, get_bot_secrets
from grim.crypto import SecretBox

log = logging.getLogger(__name__)
CONFIG_CHANNEL = "grim_config"


@dataclass(frozen=True)
class BotEntry:
    id: int
    username: str
    enabled: bool
    token: str
    webhook_secret: str

    def __repr__(self) -> str:  # secrets stay out of logs and tracebacks
        return f"BotEntry(id={self.id}, username={self.username!r})"


class BotDirectory:
    def __init__(
        self,
        pool: asyncpg.Pool,
        box: SecretBox,
        ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = pool
        self.box = box
        self.ttl = ttl
        self.clock = clock
        self._bots: dict[int, tuple[float, BotEntry | None]] = {}
        self._funnels: dict[int, tuple[float, FunnelConfig]] = {}
        self._listener: asyncpg.Connection | None = None

    def invalidate(self, *_: object) -> None:
        self._bots.clear()
        self._funnels.clear()

    async def listen(self) -> None:
        self._listener = await self.pool.acquire()
        await self._listener.add_listener(CONFIG_CHANNEL, self.invalidate)

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.remove_listener(CONFIG_CHANNEL, self.invalidate)
            await self.pool.release(self._listener)
            self._listener = None

    async def bot(self, bot_id: int) -> BotEntry | None:
        now = self.clock()
        cached = self._bots.get(bot_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        entry = await self._load_bot(bot_id)
        if len(self._bots) > 10_000:
            self._bots.clear()
        self._bots[bot_id] = (now + self.ttl, entry)
        return entry

    async def _load_bot(self, bot_id: int) -> BotEntry | None:
        bot = await get_bot(self.pool, bot_id)
        if bot is None:
            return None
        secrets = await get_bot_secrets(self.pool, self.box, bot_id)
        if secrets is None:
            return None
        return BotEntry(bot.id, bot.username, bot.enabled, secrets.token, secrets.webhook_secret)

    async def funnel(self, bot_id: int) -> FunnelConfig:
        """The bot's funnel, or a plain welcome when none is configured yet."""
        now = self.clock()
        cached = self._funnels.get(bot_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        config = await store.get_funnel(self.pool, bot_id) or FunnelConfig()
        self._funnels[bot_id] = (now + self.ttl, config)
        return config
