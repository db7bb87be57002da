"""The pool cache: TTL, NOTIFY invalidation, one query per slug, stale-but-served on outage."""

from __future__ import annotations

import asyncio

import pytest

from grim.config.pools import Pool
from grim_redirect.pool_cache import PoolCache, PoolUnavailable


class Loader:
    def __init__(self) -> None:
        self.calls = 0
        self.down = False
        self.enabled = True
        self.gate: asyncio.Event | None = None

    async def __call__(self, slug: str) -> Pool | None:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise OSError("connection refused")
        if slug == "missing":
            return None
        return Pool(id=1, slug=slug, name="", enabled=self.enabled, pixel_id=None)


async def test_cached_until_invalidated():
    loader = Loader()
    cache = PoolCache(loader, ttl=60)
    assert (await cache.get("a")).enabled
    loader.enabled = False
    assert (await cache.get("a")).enabled and loader.calls == 1
    cache.invalidate("pid", "grim_config", "pools")
    assert not (await cache.get("a")).enabled and loader.calls == 2


async def test_ttl_expiry_and_negative_caching():
    loader = Loader()
    cache = PoolCache(loader, ttl=0)
    await cache.get("a")
    await cache.get("a")
    assert loader.calls == 2
    long_lived = PoolCache(loader, ttl=60)
    assert await long_lived.get("missing") is None
    assert await long_lived.get("missing") is None
    assert loader.calls == 3


async def test_one_query_for_a_burst_of_visitors():
    loader = Loader()
    loader.gate = asyncio.Event()
    cache = PoolCache(loader, ttl=60)
    waiting = [asyncio.ensure_future(cache.get("a")) for _ in range(50)]
    await asyncio.sleep(0)
    loader.gate.set()
    pools = await asyncio.gather(*waiting)
    assert loader.calls == 1 and {p.slug for p in pools} == {"a"}


async def test_outage_serves_the_expired_entry_or_says_unavailable():
    loader = Loader()
    cache = PoolCache(loader, ttl=0)
    await cache.get("a")
    loader.down = True
    assert (await cache.get("a")).slug == "a"
    with pytest.raises(PoolUnavailable):
        await cache.get("b")


async def test_cache_size_is_bounded():
    loader = Loader()
    cache = PoolCache(loader, ttl=60, max_entries=10)
    for i in range(25):
        await cache.get(f"s{i}")
    assert len(cache._entries) <= 10
