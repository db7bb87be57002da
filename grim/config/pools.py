"""Pools of Telegram bots behind one ad link (tables config.pools and config.pool_bots).

A pool is what `/go/{slug}` resolves; its bots share the pool's traffic by
weight. A member is usable when it is enabled in the pool and the bot itself
is enabled and healthy (bot-gateway clears `healthy` when Telegram refuses it).
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

_UNSET = object()


class PoolError(ValueError):
    """A change the configuration refuses (unknown pool, bot or pixel, duplicate slug)."""


@dataclass(frozen=True)
class PoolBot:
    bot_id: int
    username: str
    weight: int
    enabled: bool
    bot_enabled: bool
    bot_healthy: bool

    @property
    def usable(self) -> bool:
        return self.enabled and self.bot_enabled and self.bot_healthy


@dataclass(frozen=True)
class Pool:
    id: int
    slug: str
    name: str
    enabled: bool
    pixel_id: str | None
    bots: tuple[PoolBot, ...] = ()

    @property
    def usable_bots(self) -> tuple[PoolBot, ...]:
        return tuple(b for b in self.bots if b.usable)


_POOL_COLUMNS = "id, slug, name, enabled, pixel_id"
_MEMBERS = """
    SELECT pb.pool_id, pb.bot_id, b.username, pb.weight, pb.enabled,
           b.enabled AS bot_enabled, b.healthy AS bot_healthy
    FROM config.pool_bots pb JOIN config.bots b ON b.id = pb.bot_id
    WHERE pb.pool_id = ANY($1::bigint[]) ORDER BY pb.pool_id, pb.bot_id
"""


async def _with_members(conn: asyncpg.Connection | asyncpg.Pool, rows: list) -> list[Pool]:
    if not rows:
        return []
    members: dict[int, list[PoolBot]] = {}
    for m in await conn.fetch(_MEMBERS, [r["id"] for r in rows]):
        data = dict(m)
        members.setdefault(data.pop("pool_id"), []).append(PoolBot(**data))
    return [Pool(**dict(r), bots=tuple(members.get(r["id"], ()))) for r in rows]


async def get_pool(conn: asyncpg.Connection | asyncpg.Pool, slug: str) -> Pool | None:
    """The pool behind `slug` with all its members (usable or not)."""
    row = await conn.fetchrow(f"SELECT {_POOL_COLUMNS} FROM config.pools WHERE slug = $1", slug)
    if row is None:
        return None
    return (await _with_members(conn, [row]))[0]


async def list_pools(conn: asyncpg.Connection | asyncpg.Pool) -> list[Pool]:
    rows = await conn.fetch(f"SELECT {_POOL_COLUMNS} FROM config.pools ORDER BY slug")
    return await _with_members(conn, rows)


async def create_pool(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    slug: str,
    name: str = "",
    enabled: bool = True,
    pixel_id: str | None = None,
) -> Pool:
    try:
        await conn.execute(
            "INSERT INTO config.pools (slug, name, enabled, pixel_id) VALUES ($1, $2, $3, $4)",
            slug, name, enabled, pixel_id,
        )
    except asyncpg.UniqueViolationError as exc:
        raise PoolError(f"a pool with slug {slug!r} already exists") from exc
    except asyncpg.ForeignKeyViolationError as exc:
        raise PoolError(f"unknown pixel {pixel_id!r}: create it first") from exc
    except asyncpg.CheckViolationError as exc:
        raise PoolError(
            f"invalid slug {slug!r}: lowercase letters, digits and '-', 1-63 chars"
        ) from exc
    pool = await get_pool(conn, slug)
    assert pool is not None
    return pool


async def update_pool(
    conn: asyncpg.Connection | asyncpg.Pool,
    slug: str,
    *,
    name: str | None = None,
    enabled: bool | None = None,
    pixel_id: object = _UNSET,
) -> Pool | None:
    """Change the given fields; `pixel_id=None` detaches the pixel, omitting it keeps it."""
    keep_pixel = pixel_id is _UNSET
    try:
        status = await conn.execute(
            """
            UPDATE config.pools SET name = coalesce($2, name), enabled = coalesce($3, enabled),
                pixel_id = CASE WHEN $4 THEN pixel_id ELSE $5 END, updated_at = now()
            WHERE slug = $1
            """,
            slug, name, enabled, keep_pixel, None if keep_pixel else pixel_id,
        )
    except asyncpg.ForeignKeyViolationError as exc:
        raise PoolError(f"unknown pixel {pixel_id!r}: create it first") from exc
    if status.endswith(" 0"):
        return None
    return await get_pool(conn, slug)


async def set_pool_bot(
    conn: asyncpg.Connection | asyncpg.Pool,
    slug: str,
    bot_id: int,
    *,
    weight: int | None = None,
    enabled: bool | None = None,
) -> Pool:
    """Add a bot to a pool or change its weight/enabled flag (weight 1-1000)."""
    if weight is not None and not 1 <= weight <= 1000:
        raise PoolError("weight must be between 1 and 1000")
    try:
        status = await conn.execute(
            """
            INSERT INTO config.pool_bots (pool_id, bot_id, weight, enabled)
            SELECT id, $2, coalesce($3, 1), coalesce($4, true) FROM config.pools WHERE slug = $1
            ON CONFLICT (pool_id, bot_id) DO UPDATE
                SET weight = coalesce($3, config.pool_bots.weight),
                    enabled = coalesce($4, config.pool_bots.enabled)
            """,
            slug, bot_id, weight, enabled,
        )
    except asyncpg.ForeignKeyViolationError as exc:
        raise PoolError(f"unknown bot {bot_id}: register it first (bot-gateway)") from exc
    if status.endswith(" 0"):
        raise PoolError(f"unknown pool {slug!r}")
    pool = await get_pool(conn, slug)
    assert pool is not None
    return pool


async def remove_pool_bot(conn: asyncpg.Connection | asyncpg.Pool, slug: str, bot_id: int) -> bool:
    status = await conn.execute(
        "DELETE FROM config.pool_bots pb USING config.pools p"
        " WHERE pb.pool_id = p.id AND p.slug = $1 AND pb.bot_id = $2",
        slug, bot_id,
    )
    return not status.endswith(" 0")
