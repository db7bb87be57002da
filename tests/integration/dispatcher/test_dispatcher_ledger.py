"""The ledger adapter against the real Postgres: one round trip per lookup and per accepted request."""

from __future__ import annotations

import asyncpg
from grim_dispatcher.ledger import Ledger

from .conftest import new_pixel_id


async def test_a_redelivered_request_changes_nothing(pg_pool: asyncpg.Pool) -> None:
    ledger, pixel = Ledger(pg_pool), new_pixel_id()
    events = [("Purchase", f"purchase_{i}") for i in range(1000)]
    await ledger.record(pixel, events, 1000, "trace-1")
    # The same request again (a crash before the commit), plus one new event.
    await ledger.record(pixel, [*events[:500], ("PageView", "evt_new")], 501, "trace-2")
    rows = await pg_pool.fetch(
        "SELECT event_name, event_id, events_received, fbtrace_id FROM dispatcher.ledger"
        " WHERE pixel_id = $1", pixel)
    assert len(rows) == 1001
    first = {(r["event_name"], r["event_id"]): (r["events_received"], r["fbtrace_id"])
             for r in rows}
    assert first[("Purchase", "purchase_0")] == (1000, "trace-1")
    assert first[("PageView", "evt_new")] == (501, "trace-2")


async def test_known_among_tells_accepted_from_pending_dead_letters(
        pg_pool: asyncpg.Pool) -> None:
    ledger, pixel = Ledger(pg_pool), new_pixel_id()
    await ledger.record(pixel, [("Purchase", "accepted")], 1, None)
    await ledger.park([
        {"pixel_id": pixel, "event_name": "Purchase", "event_id": name, "reason": "r",
         "kind": "invalid_events", "code": 100, "subcode": 2804001, "fbtrace_id": None,
         "conversion": {"event_id": name}}
        for name in ("parked", "released")
    ])
    await pg_pool.execute(
        "UPDATE dispatcher.dead_letters SET retried_at = now()"
        " WHERE pixel_id = $1 AND event_id = 'released'", pixel)
    keys = [(pixel, "Purchase", name) for name in ("accepted", "parked", "released", "new")]
    # PageView of the accepted id is another key: event_name is part of it.
    keys.append((pixel, "PageView", "accepted"))
    accepted, parked = await ledger.known_among(keys)
    assert accepted == {(pixel, "Purchase", "accepted")}
    assert parked == {(pixel, "Purchase", "parked")}
    assert await ledger.known_among([]) == (set(), set())
