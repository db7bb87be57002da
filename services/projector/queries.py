"""Read side of the projection: the questions the issue asks, as SQL over one projection."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg


async def current_projection(conn: asyncpg.Connection | asyncpg.Pool) -> str | None:
    return await conn.fetchval("SELECT name FROM projector.current")


@dataclass(frozen=True)
class Range:
    projection: str
    since: datetime | None = None
    until: datetime | None = None
    pool: str | None = None

    def args(self) -> list[Any]:
        return [self.projection, self.since, self.until, self.pool]


# $1 projection, $2 from, $3 to, $4 pool (slug or id as text); NULL means "any".
_TOKENS_IN_RANGE = """
    t.projection = $1 AND ($2::timestamptz IS NULL OR t.clicked_at >= $2)
    AND ($3::timestamptz IS NULL OR t.clicked_at < $3)
    AND ($4::text IS NULL OR t.pool_slug = $4 OR t.pool_id::text = $4)
"""
_SALES_IN_RANGE = """
    s.projection = $1 AND s.paid_at IS NOT NULL
    AND ($2::timestamptz IS NULL OR s.paid_at >= $2) AND ($3::timestamptz IS NULL OR s.paid_at < $3)
    AND ($4::text IS NULL OR s.pool_slug = $4 OR s.pool_id::text = $4)
"""


async def funnel(conn: Any, rng: Range) -> dict[str, Any]:
    """click -> start -> pix -> paid for clicks in the range (crawlers excluded)."""
    row = await conn.fetchrow(f"""
        SELECT count(*) AS clicks,
               count(*) FILTER (WHERE started_at IS NOT NULL) AS starts,
               count(*) FILTER (WHERE pix_at IS NOT NULL) AS pix,
               count(*) FILTER (WHERE paid_at IS NOT NULL) AS paid
        FROM projector.funnel t WHERE NOT t.is_crawler AND {_TOKENS_IN_RANGE}""", *rng.args())
    data = dict(row)
    clicks = data["clicks"] or 0
    data["start_rate"] = data["starts"] / clicks if clicks else 0.0
    data["pix_rate"] = data["pix"] / data["starts"] if data["starts"] else 0.0
    data["paid_rate"] = data["paid"] / data["pix"] if data["pix"] else 0.0
    return data


async def sales_by(conn: Any, rng: Range) -> list[dict[str, Any]]:
    """Sales and revenue per day, pool, campaign, ad (utm_content) and bot."""
    rows = await conn.fetch(f"""
        SELECT date(s.paid_at) AS day, coalesce(s.pool_slug, '-') AS pool,
               coalesce(s.utm_campaign, '-') AS campaign, coalesce(s.utm_content, '-') AS ad,
               s.bot_id, count(*) AS sales, sum(s.amount_cents) AS revenue_cents
        FROM projector.sales s WHERE {_SALES_IN_RANGE}
        GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5""", *rng.args())
    return [dict(r) for r in rows]


async def attribution_summary(conn: Any, rng: Range) -> list[dict[str, Any]]:
    """Paid sales by attribution (token / organic / unattributed), refunds, time to purchase."""
    rows = await conn.fetch(f"""
        SELECT s.attribution, count(*) AS sales, sum(s.amount_cents) AS revenue_cents,
               count(*) FILTER (WHERE s.refunded_at IS NOT NULL) AS refunds,
               percentile_cont(0.5) WITHIN GROUP (
                   ORDER BY extract(epoch FROM s.time_to_purchase)) AS median_ttp_s
        FROM projector.sales s WHERE {_SALES_IN_RANGE}
        GROUP BY 1 ORDER BY 1""", *rng.args())
    return [dict(r) for r in rows]


@dataclass
class Diff:
    base: str
    replay: str
    changed: list[dict[str, Any]] = field(default_factory=list)  # token A -> token B
    newly_attributed: list[dict[str, Any]] = field(default_factory=list)  # none -> token
    lost: list[dict[str, Any]] = field(default_factory=list)  # token -> none
    added: list[dict[str, Any]] = field(default_factory=list)  # payment only in the replay
    removed: list[dict[str, Any]] = field(default_factory=list)  # payment only in the base
    per_pool: list[dict[str, Any]] = field(default_factory=list)
    conversions_changed: int = 0
    conversions_new: int = 0

    @property
    def changed_payment_ids(self) -> set[str]:
        return {r["payment_id"] for r in self.changed + self.newly_attributed + self.lost}


async def diff(conn: Any, base: str, replay: str) -> Diff:
    rows = await conn.fetch("""
        WITH o AS (SELECT * FROM projector.sales WHERE projection = $1),
             n AS (SELECT * FROM projector.sales WHERE projection = $2)
        SELECT coalesce(n.payment_id, o.payment_id) AS payment_id,
               o.payment_id IS NOT NULL AS in_base, n.payment_id IS NOT NULL AS in_replay,
               o.tracking_token AS old_token, o.attribution AS old_attribution,
               n.tracking_token AS new_token, n.attribution AS new_attribution,
               coalesce(n.pool_slug, o.pool_slug, '-') AS pool,
               coalesce(n.paid_at, o.paid_at) IS NOT NULL AS paid,
               coalesce(n.amount_cents, o.amount_cents) AS amount_cents
        FROM o FULL JOIN n ON n.payment_id = o.payment_id
        WHERE o.payment_id IS NULL OR n.payment_id IS NULL
           OR o.tracking_token IS DISTINCT FROM n.tracking_token
           OR o.attribution IS DISTINCT FROM n.attribution
        ORDER BY 1""", base, replay)
    out = Diff(base, replay)
    pools: dict[str, dict[str, Any]] = {}
    for r in map(dict, rows):
        if not r["in_base"]:
            bucket = out.added
        elif not r["in_replay"]:
            bucket = out.removed
        elif r["old_token"] and r["new_token"]:
            bucket = out.changed
        elif r["new_token"]:
            bucket = out.newly_attributed
        else:
            bucket = out.lost
        bucket.append(r)
        entry = pools.setdefault(r["pool"], {"pool": r["pool"], "payments": 0, "paid": 0})
        entry["payments"] += 1
        entry["paid"] += int(r["paid"])
    out.per_pool = [pools[k] for k in sorted(pools)]
    conv = await conn.fetchrow("""
        SELECT count(*) FILTER (WHERE o.event_id IS NOT NULL
                                AND o.tracking_token IS DISTINCT FROM n.tracking_token) AS changed,
               count(*) FILTER (WHERE o.event_id IS NULL) AS new
        FROM (SELECT * FROM projector.conversions WHERE projection = $2) n
        LEFT JOIN (SELECT * FROM projector.conversions WHERE projection = $1) o
          USING (pixel_id, event_name, event_id)""", base, replay)
    out.conversions_changed, out.conversions_new = conv["changed"], conv["new"]
    return out


async def snapshot(conn: Any, projection: str) -> dict[str, list[tuple[Any, ...]]]:
    """A projection's content without what legitimately differs between builds
    (names, versions, decision and write times): equal snapshots = identical projections."""
    facts = await conn.fetch("""
        SELECT source_event_id, stage, tracking_token, attribution, bot_id, telegram_user_id,
               payment_id, occurred_at, amount_cents
        FROM projector.facts WHERE projection = $1 ORDER BY 1""", projection)
    payments = await conn.fetch("""
        SELECT payment_id, bot_id, telegram_user_id, tracking_token, attribution, product_id,
               amount_cents, pix_at, paid_at, refunded_at, refunded_cents, expired_at,
               delivered_at
        FROM projector.payments WHERE projection = $1 ORDER BY 1""", projection)
    tokens = await conn.fetch("""
        SELECT tracking_token, pool_id, bot_id, pixel_id, clicked_at, is_crawler, fbc, fbp,
               utm_campaign, utm_content, cookie_fbc, cookie_fbp
        FROM projector.tokens WHERE projection = $1 ORDER BY 1""", projection)
    conversions = await conn.fetch("""
        SELECT pixel_id, event_name, event_id FROM projector.conversions
        WHERE projection = $1 ORDER BY 1, 2, 3""", projection)
    return {name: [tuple(r) for r in rows] for name, rows in (
        ("facts", facts), ("payments", payments), ("tokens", tokens),
        ("conversions", conversions))}
