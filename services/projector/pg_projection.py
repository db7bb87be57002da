"""asyncpg adapter: batched idempotent upserts of one projection's rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import orjson

from .journeys import Effects

_TOKEN_COLS = ("tracking_token", "pool_id", "pool_slug", "bot_id", "bot_username", "pixel_id",
               "clicked_at", "is_crawler", "fbclid", "fbc", "fbp", "fbc_origin", "utm_source",
               "utm_medium", "utm_campaign", "utm_content", "utm_term", "campaign_params",
               "client_ip", "user_agent", "landing_url")
_TIME_COLS = {"clicked_at", "occurred_at", "decided_at", "pix_at", "paid_at", "refunded_at",
              "expired_at", "delivered_at", "event_time"}


def _value(column: str, value: Any) -> Any:
    if column in _TIME_COLS and isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def _insert(table: str, cols: tuple[str, ...], conflict: str, update: str) -> str:
    names = ", ".join(("projection", *cols, "app_version", "rule_version"))
    params = ", ".join(f"${i}" for i in range(1, len(cols) + 4))
    return (f"INSERT INTO projector.{table} ({names}) VALUES ({params}) "
            f"ON CONFLICT ({conflict}) DO UPDATE SET {update}")


_TOKENS_SQL = _insert(
    "tokens", _TOKEN_COLS, "projection, tracking_token",
    ", ".join(f"{c} = EXCLUDED.{c}" for c in _TOKEN_COLS[1:]) + ", updated_at = now()")
_COOKIES_SQL = """
INSERT INTO projector.tokens (projection, tracking_token, cookie_fbc, cookie_fbp, app_version,
                              rule_version)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (projection, tracking_token) DO UPDATE SET
    cookie_fbc = COALESCE(EXCLUDED.cookie_fbc, tokens.cookie_fbc),
    cookie_fbp = COALESCE(EXCLUDED.cookie_fbp, tokens.cookie_fbp), updated_at = now()
"""
_FACT_COLS = ("source_event_id", "stage", "tracking_token", "attribution", "bot_id",
              "telegram_user_id", "payment_id", "occurred_at", "amount_cents", "decided_at")
# A re-decision (a late /start moved the fact to another token) may be written after
# the decision it replaces when the two travel through different partitions:
# decided_at keeps the newest.
_FACTS_SQL = _insert(
    "facts", _FACT_COLS, "projection, source_event_id",
    "tracking_token = EXCLUDED.tracking_token, attribution = EXCLUDED.attribution, "
    "decided_at = EXCLUDED.decided_at WHERE EXCLUDED.decided_at >= facts.decided_at")
_PAY_COLS = ("payment_id", "bot_id", "telegram_user_id", "tracking_token", "attribution",
             "product_id", "amount_cents", "pix_at", "paid_at", "refunded_at", "refunded_cents",
             "expired_at", "delivered_at", "decided_at")
_NEWER = "EXCLUDED.decided_at >= payments.decided_at"
_PAYMENTS_SQL = _insert(
    "payments", _PAY_COLS, "projection, payment_id",
    f"tracking_token = CASE WHEN {_NEWER} THEN EXCLUDED.tracking_token "
    "ELSE payments.tracking_token END, "
    f"attribution = CASE WHEN {_NEWER} THEN EXCLUDED.attribution ELSE payments.attribution END, "
    "decided_at = GREATEST(EXCLUDED.decided_at, payments.decided_at), "
    + ", ".join(f"{c} = COALESCE(EXCLUDED.{c}, payments.{c})"
                for c in ("bot_id", "telegram_user_id", "product_id", "amount_cents", "pix_at",
                          "paid_at", "refunded_at", "refunded_cents", "expired_at",
                          "delivered_at")))
_CONV_COLS = ("pixel_id", "event_name", "event_id", "tracking_token", "event_time", "payload")
_CONVERSIONS_SQL = _insert("conversions", _CONV_COLS, "projection, pixel_id, event_name, event_id",
                           "payload = conversions.payload")


class PgProjection:
    """Writes one projection (`name`) for one app version and rule version."""

    def __init__(self, pool: asyncpg.Pool, name: str, app_version: str, rule_version: int) -> None:
        self.pool = pool
        self.name = name
        self.app_version = app_version
        self.rule_version = rule_version

    def _rows(self, cols: tuple[str, ...], rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [(self.name, *(_value(c, r.get(c)) for c in cols), self.app_version,
                 self.rule_version) for r in rows]

    async def register(self, from_time: datetime | None = None) -> None:
        """Record this projection; the first one ever becomes the one readers use."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO projector.projections (name, rule_version, app_id, from_time) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
                self.name, self.rule_version, self.app_version, from_time)
            await conn.execute(
                "INSERT INTO projector.current (name) VALUES ($1) ON CONFLICT DO NOTHING",
                self.name)

    async def write(self, fx: Effects) -> None:
        """One transaction per batch; every statement is an idempotent upsert."""
        async with self.pool.acquire() as conn, conn.transaction():
            if fx.token_rows:
                await conn.executemany(_TOKENS_SQL, self._rows(_TOKEN_COLS, fx.token_rows))
            if fx.cookie_rows:
                await conn.executemany(_COOKIES_SQL, [
                    (self.name, r["tracking_token"], r["cookie_fbc"], r["cookie_fbp"],
                     self.app_version, self.rule_version) for r in fx.cookie_rows])
            if fx.fact_rows:
                await conn.executemany(_FACTS_SQL, self._rows(_FACT_COLS, fx.fact_rows))
            if fx.payment_rows:
                await conn.executemany(_PAYMENTS_SQL, self._rows(_PAY_COLS, fx.payment_rows))
            if fx.conversions:
                rows = [{"pixel_id": c.pixel_id, "event_name": c.event_name,
                         "event_id": c.event_id, "tracking_token": c.tracking_token,
                         "event_time": c.event_time,
                         "payload": orjson.loads(c.model_dump_json())} for c in fx.conversions]
                await conn.executemany(_CONVERSIONS_SQL, self._rows(_CONV_COLS, rows))
