"""asyncpg pool with orjson codecs for json/jsonb."""

from __future__ import annotations

import asyncio

import asyncpg
import orjson


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename,
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, command_timeout=30
    )
    assert pool is not None
    return pool


async def close_pool(pool: asyncpg.Pool, timeout: float = 5.0) -> None:
    """Close gracefully; past `timeout`, terminate the connections still held.

    A shutdown can cancel a task while asyncpg is still releasing its connection;
    `Pool.close` would then wait forever for that release.
    """
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except asyncio.TimeoutError:
        pool.terminate()
