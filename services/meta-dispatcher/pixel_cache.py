"""Pixel credentials cached for a few seconds; a NOTIFY on 'grim_config' drops the cache at once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import asyncpg

from grim.config.pixels import PixelCredentials, flag_pixel, get_pixel_credentials
from grim.crypto import SecretBox

log = logging.getLogger(__name__)


class PixelCache:
    def __init__(
        self,
        pool: asyncpg.Pool,
        box: SecretBox,
        ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = pool
        self.box = box
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[str, tuple[float, PixelCredentials | None]] = {}
        self._listener: asyncpg.Connection | None = None

    async def get(self, pixel_id: str) -> PixelCredentials | None:
        hit = self._entries.get(pixel_id)
        if hit is not None and self.clock() - hit[0] < self.ttl:
            return hit[1]
        creds = await get_pixel_credentials(self.pool, self.box, pixel_id)
        self._entries[pixel_id] = (self.clock(), creds)
        return creds

    def invalidate(self, *_: object) -> None:
        self._entries.clear()

    async def flag(self, pixel_id: str, reason: str) -> None:
        await flag_pixel(self.pool, pixel_id, reason)
        self._entries.pop(pixel_id, None)

    async def listen(self) -> None:
        """Drop the cache on every configuration change (the TTL still bounds staleness)."""
        self._listener = await self.pool.acquire()
        await self._listener.add_listener("grim_config", self.invalidate)

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.remove_listener("grim_config", self.invalidate)
            await self.pool.release(self._listener)
            self._listener = None
