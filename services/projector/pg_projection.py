"""asyncpg adapter: idempotent upserts of one projection's rows, one statement per table
per batch.

Each table's rows are sent as column arrays to one `INSERT ... SELECT FROM unnest(...)
ON CONFLICT DO UPDATE` (a round trip and a plan per table instead of per row). One
such statement may not touch a row twice, so the rows of a batch are first folded
per key exactly as the same upserts applied one after another would fold them
(`fold_*`): the result in the database is the same, whatever was there before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from .journeys import Effects

Row = dict[str, Any]
_TOKEN_COLS = {
    "tracking_token": "text", "pool_id": "integer", "pool_slug": "text", "bot_id": "bigint",
    "bot_username": "text", "pixel_id": "text", "clicked_at": "timestamptz",
    "is_crawler": "boolean", "fbclid": "text", "fbc": "text", "fbp": "text",
    "fbc_origin": "text", "utm_source": "text", "utm_medium": "text", "utm_campaign": "text",
    "utm_content": "text", "utm_term": "text", "campaign_params": "jsonb", "client_ip": "text",
    "user_agent": "text", "landing_url": "text"}
_COOKIE_COLS = {"tracking_token": "text", "cookie_fbc": "text", "cookie_fbp": "text"}
_FACT_COLS = {
    "source_event_id": "text", "stage": "text", "tracking_token": "text", "attribution": "text",
    "bot_id": "bigint", "telegram_user_id": "bigint", "payment_id": "text",
    "occurred_at": "timestamptz", "amount_cents": "bigint", "decided_at": "timestamptz"}
_PAY_MERGED = ("bot_id", "telegram_user_id", "product_id", "amount_cents", "pix_at", "paid_at",
               "refunded_at", "refunded_cents", "expired_at", "delivered_at")
_PAY_COLS = {
    "payment_id": "text", "bot_id": "bigint", "telegram_user_id": "bigint",
    "tracking_token": "text", "attribution": "text", "product_id": "bigint",
    "amount_cents": "bigint", "pix_at": "timestamptz", "paid_at": "timestamptz",
    "refunded_at": "timestamptz", "refunded_cents": "bigint", "expired_at": "timestamptz",
    "delivered_at": "timestamptz", "decided_at": "timestamptz"}
_CONV_COLS = {"pixel_id": "text", "event_name": "text", "event_id": "text",
              "tracking_token": "text", "event_time": "timestamptz", "payload": "jsonb"}


def _upsert(table: str, cols: dict[str, str], conflict: str, update: str) -> str:
    # jsonb travels as text (already-encoded JSON) and is cast on the server.
    arrays = ", ".join(f"${i}::{'text' if t == 'jsonb' else t}[]"
                       for i, t in enumerate(cols.values(), start=4))
    picked = ", ".join(f"u.{c}::jsonb" if t == "jsonb" else f"u.{c}" for c, t in cols.items())
    names = ", ".join(cols)
    return (f"INSERT INTO projector.{table} (projection, {names}, app_version, rule_version) "
            f"SELECT $1, {picked}, $2, $3 FROM unnest({arrays}) AS u({names}) "
            f"ON CONFLICT ({conflict}) DO UPDATE SET {update}")


_TOKENS_SQL = _upsert(
    "tokens", _TOKEN_COLS, "projection, tracking_token",
    ", ".join(f"{c} = EXCLUDED.{c}" for c in list(_TOKEN_COLS)[1:]) + ", updated_at = now()")
_COOKIES_SQL = _upsert(
    "tokens", _COOKIE_COLS, "projection, tracking_token",
    "cookie_fbc = COALESCE(EXCLUDED.cookie_fbc, tokens.cookie_fbc), "
    "cookie_fbp = COALESCE(EXCLUDED.cookie_fbp, tokens.cookie_fbp), updated_at = now()")
# A re-decision (a late /start moved the fact to another token) may be written after
# the decision it replaces when the two travel through different partitions:
# decided_at keeps the newest.
_FACTS_SQL = _upsert(
    "facts", _FACT_COLS, "projection, source_event_id",
    "tracking_token = EXCLUDED.tracking_token, attribution = EXCLUDED.attribution, "
    "decided_at = EXCLUDED.decided_at WHERE EXCLUDED.decided_at >= facts.decided_at")
_NEWER = "EXCLUDED.decided_at >= payments.decided_at"
_PAYMENTS_SQL = _upsert(
    "payments", _PAY_COLS, "projection, payment_id",
    f"tracking_token = CASE WHEN {_NEWER} THEN EXCLUDED.tracking_token "
    "ELSE payments.tracking_token END, "
    f"attribution = CASE WHEN {_NEWER} THEN EXCLUDED.attribution ELSE payments.attribution END, "
    "decided_at = GREATEST(EXCLUDED.decided_at, payments.decided_at), "
    + ", ".join(f"{c} = COALESCE(EXCLUDED.{c}, payments.{c})" for c in _PAY_MERGED))
_CONVERSIONS_SQL = _upsert("conversions", _CONV_COLS,
                           "projection, pixel_id, event_name, event_id",
                           "payload = conversions.payload")


def _time(value: Any) -> Any:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _times(row: Row, cols: Sequence[str]) -> Row:
    return {**row, **{c: _time(row.get(c)) for c in cols}}


def fold_last(rows: list[Row], key: str) -> list[Row]:
    """A full overwrite per key: the last row wins."""
    return list({r[key]: r for r in rows}.values())


def fold_cookies(rows: list[Row]) -> list[Row]:
    """COALESCE(new, old) per column: the last non-null value wins."""
    out: dict[str, Row] = {}
    for r in rows:
        cur = out.setdefault(r["tracking_token"], dict(r))
        for c in ("cookie_fbc", "cookie_fbp"):
            cur[c] = r[c] if r[c] is not None else cur[c]
    return list(out.values())


def fold_facts(rows: list[Row]) -> list[Row]:
    """The first row's columns; the decision of the last row with the newest decided_at."""
    out: dict[str, Row] = {}
    for r in (_times(r, ("occurred_at", "decided_at")) for r in rows):
        cur = out.get(r["source_event_id"])
        if cur is None:
            out[r["source_event_id"]] = r
        elif r["decided_at"] >= cur["decided_at"]:
            cur.update(tracking_token=r["tracking_token"], attribution=r["attribution"],
                       decided_at=r["decided_at"])
    return list(out.values())


def fold_payments(rows: list[Row]) -> list[Row]:
    """Attribution of the newest decision; every other column: the last non-null value."""
    out: dict[str, Row] = {}
    times = ("pix_at", "paid_at", "refunded_at", "expired_at", "delivered_at", "decided_at")
    for r in (_times(r, times) for r in rows):
        cur = out.get(r["payment_id"])
        if cur is None:
            out[r["payment_id"]] = r
            continue
        if r["decided_at"] >= cur["decided_at"]:
            cur.update(tracking_token=r["tracking_token"], attribution=r["attribution"],
                       decided_at=r["decided_at"])
        for c in _PAY_MERGED:
            if r.get(c) is not None:
                cur[c] = r[c]
    return list(out.values())


def fold_first(rows: list[Row], key: Callable[[Row], Any]) -> list[Row]:
    """DO UPDATE that keeps what is there: the first row wins."""
    out: dict[Any, Row] = {}
    for r in rows:
        out.setdefault(key(r), r)
    return list(out.values())


class PgProjection:
    """Writes one projection (`name`) for one app version and rule version."""

    def __init__(self, pool: asyncpg.Pool, name: str, app_version: str, rule_version: int) -> None:
        self.pool = pool
        self.name = name
        self.app_version = app_version
        self.rule_version = rule_version

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
        tokens = [_times(r, ("clicked_at",)) | {"campaign_params": orjson.dumps(
            r.get("campaign_params") or {}).decode()} for r in fold_last(fx.token_rows,
                                                                         "tracking_token")]
        conversions = fold_first([
            {"pixel_id": c["pixel_id"], "event_name": c["event_name"], "event_id": c["event_id"],
             "tracking_token": c["tracking_token"], "event_time": _time(c["event_time"]),
             "payload": payload.decode()}
            for c, payload in zip(fx.conversions, fx.payloads(), strict=True)],
            lambda r: (r["pixel_id"], r["event_name"], r["event_id"]))
        statements = ((_TOKENS_SQL, _TOKEN_COLS, tokens),
                      (_COOKIES_SQL, _COOKIE_COLS, fold_cookies(fx.cookie_rows)),
                      (_FACTS_SQL, _FACT_COLS, fold_facts(fx.fact_rows)),
                      (_PAYMENTS_SQL, _PAY_COLS, fold_payments(fx.payment_rows)),
                      (_CONVERSIONS_SQL, _CONV_COLS, conversions))
        async with self.pool.acquire() as conn, conn.transaction():
            for sql, cols, rows in statements:
                if rows:
                    await conn.execute(sql, self.name, self.app_version, self.rule_version,
                                       *([r.get(c) for r in rows] for c in cols))
