from grim_dispatcher.pixel_cache import PixelCache

from grim.crypto import SecretBox


class CountingPool:
    """Answers like config.pixels holding no such pixel, and counts the queries."""

    def __init__(self) -> None:
        self.queries = 0

    async def fetchrow(self, *_: object):  # type: ignore[no-untyped-def]
        self.queries += 1


async def test_cache_expires_after_ttl_and_on_notify() -> None:
    now = [0.0]
    pool = CountingPool()
    cache = PixelCache(pool, SecretBox("x" * 20), ttl=5, clock=lambda: now[0])  # type: ignore[arg-type]
    assert await cache.get("1") is None
    assert await cache.get("1") is None
    assert pool.queries == 1
    now[0] = 5.1
    await cache.get("1")
    assert pool.queries == 2
    cache.invalidate(None, 0, "grim_config", "pixels")
    await cache.get("1")
    assert pool.queries == 3
