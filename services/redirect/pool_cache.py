"""Pools by slug, cached in memory for `ttl` seconds.

PostgreSQL's NOTIFY 'grim_config' (sent by triggers on every config table)
clears the cache at once; the TTL bounds staleness if the listener connection
is lost. Unknown slugs are cached too, so a flood of bad links costs one query
per TTL. When PostgreSQL is unreachable, an expired entry is served rather
than refusing visitors.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg

from grim.config.pools import Pool, get_pool

log = logging.getLogger(__name__)

CHANNEL = "grim_config"
Loader = Callable[[str], Awaitable[Pool | None]]


class PoolUnavailable(RuntimeError):
    """The pool is not cached and the database cannot be reached."""


class PoolCache:
    def __init__(self, loader: Loader, ttl: float = 5.0, max_entries: int = 10_000) -> None:
        self._load = loader
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Pool | None]] = {}
        self._inflight: dict[str, asyncio.Future[Pool | None]] = {}

    @classmethod
    def from_db(cls, pool: asyncpg.Pool, ttl: float) -> PoolCache:
        async def load(slug: str) -> Pool | None:
            return await get_pool(pool, slug)

        return cls(load, ttl)

    def invalidate(self, *_: object) -> None:
        self._entries.clear()

    async def get(self, slug: str) -> Pool | None:
        entry = self._entries.get(slug)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        # One query per slug at a time, however many visitors arrive together.
        inflight = self._inflight.get(slug)
        if inflight is None:
            inflight = asyncio.ensure_future(self._refresh(slug, entry))
            self._inflight[slug] = inflight
            inflight.add_done_callback(lambda _: self._inflight.pop(slug, None))
        return await asyncio.shield(inflight)

    async def _refresh(self, slug: str, stale: tuple[float, Pool | None] | None) -> Pool | None:
        try:
            pool = await asyncio.wait_for(self._load(slug), timeout=2.0)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if stale is not None:
                log.warning("config unreachable (%s); serving cached pool %s", exc, slug)
                return stale[1]
            raise PoolUnavailable(str(exc)) from exc
        if len(self._entries) >= self.max_entries:
            # Unknown slugs are cached too; a flood of distinct ones must not grow memory.
            self._entries.clear()
        self._entries[slug] = (time.monotonic() + self.ttl, pool)
        return pool


async def listen_for_changes(dsn: str, cache: PoolCache, retry_seconds: float = 2.0) -> None:
    """Keep a LISTEN connection open; runs until cancelled, reconnecting on failure."""
    while True:
        try:
            conn = await asyncpg.connect(dsn)
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            log.warning("config listener cannot connect (%s); relying on the TTL", exc)
            await asyncio.sleep(retry_seconds)
            continue
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _c, lost=lost: lost.set())
        try:
            await conn.add_listener(CHANNEL, cache.invalidate)
            # Changes made while we were not listening are unknown: start clean.
            cache.invalidate()
            while not lost.is_set():
                try:
                    await asyncio.wait_for(lost.wait(), timeout=30)
                except TimeoutError:
                    # A silently dropped connection is only noticed by using it.
                    await conn.execute("SELECT 1")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("config listener lost (%s)", exc)
        finally:
            if not conn.is_closed():
                await conn.close()
        await asyncio.sleep(retry_seconds)
