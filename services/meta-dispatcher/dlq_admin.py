"""Operator actions on parked conversions: list, show, re-send after fixing the cause."""

from __future__ import annotations

from typing import Any

import asyncpg
from grim_schemas import encode
from grim_schemas.events import ConversionRequested
from grim_schemas.topics import key_for, topic_for

from grim.kafka import EventPublisher

from .dlq import OPERATOR_RETRY

_FIELDS = ("pixel_id, event_name, event_id, reason, kind, code, subcode, fbtrace_id,"
           " parked_at, retried_at")


async def list_entries(pool: asyncpg.Pool, *, pixel_id: str | None = None,
                       kind: str | None = None, include_retried: bool = False,
                       limit: int = 100) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        f"""
        SELECT {_FIELDS} FROM dispatcher.dead_letters
        WHERE ($1::text IS NULL OR pixel_id = $1) AND ($2::text IS NULL OR kind = $2)
          AND ($3 OR retried_at IS NULL)
        ORDER BY parked_at DESC LIMIT $4
        """,
        pixel_id, kind, include_retried, limit,
    )
    return [dict(r) for r in rows]


async def show_entries(pool: asyncpg.Pool, event_id: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        f"SELECT {_FIELDS}, conversion FROM dispatcher.dead_letters WHERE event_id = $1"
        " ORDER BY pixel_id, event_name",
        event_id,
    )
    return [dict(r) for r in rows]


async def retry_entries(
    pool: asyncpg.Pool,
    publisher: EventPublisher,
    *,
    event_id: str | None = None,
    pixel_id: str | None = None,
    kind: str | None = None,
) -> int:
    """Publish the parked conversions again to the conversions topic and mark them retried.

    Publishing comes first: if marking fails, the entry stays pending and a second
    retry is harmless (the ledger skips what Meta already accepted).
    """
    if event_id is None and pixel_id is None and kind is None:
        raise ValueError("name an event id, a pixel or a kind (or --all-pending)")
    rows = await pool.fetch(
        """
        SELECT pixel_id, event_name, event_id, conversion FROM dispatcher.dead_letters
        WHERE retried_at IS NULL AND ($1::text IS NULL OR event_id = $1)
          AND ($2::text IS NULL OR pixel_id = $2) AND ($3::text IS NULL OR kind = $3)
        """,
        event_id, pixel_id, None if kind == "*" else kind,
    )
    if not rows:
        return 0
    topic = topic_for(ConversionRequested, publisher.namespace)
    pending = []
    for r in rows:
        conversion = ConversionRequested.model_validate(r["conversion"])
        pending.append(await publisher.producer.send(
            topic, encode(conversion), key=key_for(conversion),
            headers=[(OPERATOR_RETRY, b"1")],
        ))
    for fut in pending:
        await fut
    await pool.executemany(
        "UPDATE dispatcher.dead_letters SET retried_at = now()"
        " WHERE pixel_id = $1 AND event_name = $2 AND event_id = $3",
        [(r["pixel_id"], r["event_name"], r["event_id"]) for r in rows],
    )
    return len(rows)
