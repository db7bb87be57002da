"""asyncpg adapter for dispatcher.ledger (what Meta accepted) and dispatcher.dead_letters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

from .delivery import Key


class Ledger:
    """Needs a pool from `grim.db.create_pool`: its orjson codec encodes json parameters."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def known_among(self, keys: Iterable[Key]) -> tuple[set[Key], set[Key]]:
        """(keys Meta accepted, keys dead-lettered and not yet released by the operator).

        One round trip for both lookups. The keys travel as one JSON array (the pool's
        orjson codec encodes it): asyncpg spends ~10x more CPU encoding three text[]
        arrays element by element, and this runs for every fetched batch.
        """
        keys = list(keys)
        if not keys:
            return set(), set()
        rows = await self.pool.fetch(
            """
            SELECT k.i
                 , l.pixel_id IS NOT NULL AS accepted
            FROM json_array_elements($1::json) WITH ORDINALITY AS e(key, i)
            CROSS JOIN LATERAL (SELECT e.key->>0 AS pixel_id, e.key->>1 AS event_name,
                                       e.key->>2 AS event_id, e.i AS i) AS k
            LEFT JOIN dispatcher.ledger l
                 ON (l.pixel_id, l.event_name, l.event_id)
                  = (k.pixel_id, k.event_name, k.event_id)
            -- EXISTS: a primary-key probe per key, whatever the size of the DLQ.
            WHERE l.pixel_id IS NOT NULL
               OR EXISTS (SELECT 1 FROM dispatcher.dead_letters d
                          WHERE (d.pixel_id, d.event_name, d.event_id)
                              = (k.pixel_id, k.event_name, k.event_id)
                            AND d.retried_at IS NULL)
            """,
            keys,
        )
        accepted: set[Key] = set()
        parked: set[Key] = set()
        for r in rows:
            (accepted if r["accepted"] else parked).add(keys[r["i"] - 1])
        return accepted, parked

    async def record(self, pixel_id: str, events: list[tuple[str, str]], events_received: int,
                     fbtrace_id: str | None) -> None:
        """Record one accepted request's (event_name, event_id) pairs; replays change nothing.

        The pixel, Meta's count and trace id are the same for the whole request, so
        they travel once; the pairs travel as one JSON array (see `known_among`).
        """
        if not events:
            return
        await self.pool.execute(
            """
            INSERT INTO dispatcher.ledger (pixel_id, event_name, event_id, events_received,
                                           fbtrace_id)
            SELECT $1, e.pair->>0, e.pair->>1, $3, $4
            FROM json_array_elements($2::json) AS e(pair)
            ON CONFLICT DO NOTHING
            """,
            pixel_id, events, events_received, fbtrace_id,
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
