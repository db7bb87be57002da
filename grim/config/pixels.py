"""Meta pixels of the seller configuration (table config.pixels).

The CAPI access token is stored encrypted. A pixel whose token Meta refused
(Graph error 190) is flagged for the operator instead of being retried forever.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from grim.crypto import SecretBox

ALL_EVENTS = ("PageView", "ViewContent", "InitiateCheckout", "Purchase")


@dataclass(frozen=True)
class Pixel:
    pixel_id: str
    name: str
    enabled_events: tuple[str, ...]
    test_event_code: str | None
    action_source: str
    has_access_token: bool
    flagged_reason: str | None


@dataclass(frozen=True)
class PixelCredentials:
    pixel: Pixel
    access_token: str | None


_COLUMNS = (
    "pixel_id, name, enabled_events, test_event_code, action_source,"
    " access_token_enc IS NOT NULL AS has_access_token, flagged_reason"
)


def _pixel(row: asyncpg.Record) -> Pixel:
    data = dict(row)
    data.pop("access_token_enc", None)
    data["enabled_events"] = tuple(data["enabled_events"])
    return Pixel(**data)


async def upsert_pixel(
    conn: asyncpg.Connection | asyncpg.Pool,
    box: SecretBox,
    *,
    pixel_id: str,
    name: str = "",
    access_token: str | None = None,
    enabled_events: tuple[str, ...] = ALL_EVENTS,
    test_event_code: str | None = None,
    action_source: str = "website",
) -> Pixel:
    unknown = set(enabled_events) - set(ALL_EVENTS)
    if unknown:
        raise ValueError(f"unknown event names {sorted(unknown)}; allowed: {list(ALL_EVENTS)}")
    row = await conn.fetchrow(
        f"""
        INSERT INTO config.pixels (pixel_id, name, access_token_enc, enabled_events,
                                   test_event_code, action_source)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (pixel_id) DO UPDATE SET name = EXCLUDED.name,
            access_token_enc = coalesce(EXCLUDED.access_token_enc, config.pixels.access_token_enc),
            enabled_events = EXCLUDED.enabled_events, test_event_code = EXCLUDED.test_event_code,
            action_source = EXCLUDED.action_source,
            -- a new token is the operator's answer to a flag
            flagged_reason = CASE WHEN EXCLUDED.access_token_enc IS NULL
                                  THEN config.pixels.flagged_reason END,
            flagged_at = CASE WHEN EXCLUDED.access_token_enc IS NULL
                              THEN config.pixels.flagged_at END,
            updated_at = now()
        RETURNING {_COLUMNS}
        """,
        pixel_id, name, box.encrypt(access_token) if access_token else None,
        list(enabled_events), test_event_code, action_source,
    )
    return _pixel(row)


async def get_pixel(conn: asyncpg.Connection | asyncpg.Pool, pixel_id: str) -> Pixel | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM config.pixels WHERE pixel_id = $1", pixel_id)
    return _pixel(row) if row else None


async def list_pixels(conn: asyncpg.Connection | asyncpg.Pool) -> list[Pixel]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM config.pixels ORDER BY pixel_id")
    return [_pixel(r) for r in rows]


async def get_pixel_credentials(
    conn: asyncpg.Connection | asyncpg.Pool, box: SecretBox, pixel_id: str
) -> PixelCredentials | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS}, access_token_enc FROM config.pixels WHERE pixel_id = $1", pixel_id
    )
    if row is None:
        return None
    token = box.decrypt(row["access_token_enc"]) if row["access_token_enc"] else None
    return PixelCredentials(_pixel(row), token)


async def flag_pixel(conn: asyncpg.Connection | asyncpg.Pool, pixel_id: str, reason: str) -> None:
    await conn.execute(
        "UPDATE config.pixels SET flagged_reason = $2, flagged_at = now(), updated_at = now()"
        " WHERE pixel_id = $1",
        pixel_id, reason[:500],
    )
