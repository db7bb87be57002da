"""asyncpg adapter for dispatcher.ledger (what Meta accepted) and dispatcher.dead_letters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

from .delivery import Key


class Ledger:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def accepted_among(self, keys: Iterable[Key]) -> set[Key]:
        keys = list(keys)
        if not keys:
            return set()
        rows = await self.pool.fetch(
            """
            SELECT l.pixel_id, l.event_name, l.event_id
            FROM unnest($1::text[], $2::text[], $3::text[]) AS k(pixel_id, event_name, event_id)
            JOIN dispatcher.ledger l USING (pixel_id, event_name, event_id)
            """,
            [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
        )
        return {(r["pixel_id"], r["event_name"], r["event_id"]) for r in rows}

    async def parked_among(self, keys: Iterable[Key]) -> set[Key]:
        """Keys dead-lettered and not yet released by the operator."""
        keys = list(keys)
        if not keys:
            return set()
        rows = await self.pool.fetch(
            """
            SELECT d.pixel_id, d.event_name, d.event_id
            FROM unnest($1::text[], $2::text[], $3::text[]) AS k(pixel_id, event_name, event_id)
            JOIN dispatcher.dead_letters d USING (pixel_id, event_name, event_id)
            WHERE d.retried_at IS NULL
            """,
            [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
        )
        return {(r["pixel_id"], r["event_name"], r["event_id"]) for r in rows}

    async def record(self, rows: list[tuple[Key, int, str | None]]) -> None:
        """Record accepted events (key, events_received, fbtrace_id); replays change nothing."""
        if not rows:
            return
        await self.pool.execute(
            """
            INSERT INTO dispatcher.ledger (pixel_id, event_name, event_id, events_received,
                                           fbtrace_id)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[])
            ON CONFLICT DO NOTHING
            """,
            [r[0][0] for r in rows], [r[0][1] for r in rows], [r[0][2] for r in rows],
            [r[1] for r in rows], [r[2] for r in rows],
        )

    async def park(self, entries: list[dict[str, Any]]) -> None:
        """Mirror DLQ entries (see dlq.entry); a re-parked event becomes pending again."""
        if not entries:
            return
        await self.pool.executemany(
            """
            INSERT INTO dispatcher.dead_letters (pixel_id, event_name, event_id, reason, kind,
                                                 code, subcode, fbtrace_id, conversion)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (pixel_id, event_name, event_id) DO UPDATE SET
                reason = EXCLUDED.reason, kind = EXCLUDED.kind, code = EXCLUDED.code,
                subcode = EXCLUDED.subcode, fbtrace_id = EXCLUDED.fbtrace_id,
                conversion = EXCLUDED.conversion, parked_at = now(), retried_at = NULL
            """,
            [
                (e["pixel_id"], e["event_name"], e["event_id"], e["reason"], e["kind"],
                 e["code"], e["subcode"], e["fbtrace_id"], e["conversion"])
                for e in entries
            ],
        )

    async def pending_dead_letters(self) -> int:
        return int(await self.pool.fetchval(
            "SELECT count(*) FROM dispatcher.dead_letters WHERE retried_at IS NULL"
        ))
